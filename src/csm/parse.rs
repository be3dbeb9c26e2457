//! Datagram bytes to [`CsmEvent`], with a typed error for everything that is not a CSM event.

use serde::de::DeserializeSeed;

use super::event::{CsmEvent, EventSeed};

pub use crate::limits::MAX_EVENT_BYTES;

/// Why a datagram was not accepted as a CSM event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("datagram of {size} bytes exceeds the {MAX_EVENT_BYTES}-byte CSM event limit")]
    Oversized { size: usize },
    #[error("empty datagram")]
    Empty,
    #[error("datagram is not a CSM event: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Parses one datagram. `SessionToken` is skipped during parsing and never stored; `AccessKey` is left
/// out when `drop_access_key` is set.
pub fn parse_datagram(bytes: &[u8], drop_access_key: bool) -> Result<CsmEvent<'_>, ParseError> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(ParseError::Oversized { size: bytes.len() });
    }
    parse_event(bytes, drop_access_key)
}

/// Parses an event of any size: a record's stored JSON, which was a datagram or its repair.
pub fn parse_event(bytes: &[u8], drop_access_key: bool) -> Result<CsmEvent<'_>, ParseError> {
    if bytes.is_empty() {
        return Err(ParseError::Empty);
    }
    let seed = EventSeed { drop_access_key };
    match std::str::from_utf8(bytes) {
        // The common case: checked as UTF-8 once here, so strings need no check of their own.
        Ok(text) => {
            let mut event = deserialize(seed, serde_json::Deserializer::from_str(text))?;
            if !event.altered && is_single_line_object(text) {
                event.source_json = Some(text);
            }
            Ok(event)
        }
        // Invalid UTF-8 parses only inside a value the parser skips (a session token); such an
        // event is altered and never copied verbatim.
        Err(_) => deserialize(seed, serde_json::Deserializer::from_slice(bytes)),
    }
}

fn deserialize<'a, R: serde_json::de::Read<'a>>(
    seed: EventSeed,
    mut deserializer: serde_json::Deserializer<R>,
) -> Result<CsmEvent<'a>, ParseError> {
    let event = seed.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(event)
}

/// One JSON object on one line: what a record must be to be stored as the datagram's own text.
fn is_single_line_object(text: &str) -> bool {
    text.starts_with('{')
        && text.ends_with('}')
        && memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_none()
}

/// Replaces `\uXXXX` escapes of unpaired UTF-16 surrogates with `\uFFFD`, or returns `None` when
/// there are none. aws-sdk v2 cuts messages to 512 UTF-16 code units and can split an emoji in half;
/// `JSON.stringify` then writes the lone half, which strict JSON parsers reject.
pub fn repair_lone_surrogates(bytes: &[u8]) -> Option<Vec<u8>> {
    fn escape_at(bytes: &[u8], at: usize) -> Option<u16> {
        let hex = bytes.get(at..at + 6)?;
        if hex[0] != b'\\' || hex[1] != b'u' {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    }
    let is_high = |u: u16| (0xD800..0xDC00).contains(&u);
    let is_low = |u: u16| (0xDC00..0xE000).contains(&u);
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        match escape_at(bytes, i) {
            Some(unit) if is_high(unit) && escape_at(bytes, i + 6).is_some_and(is_low) => i += 12,
            Some(unit) if is_high(unit) || is_low(unit) => {
                let repaired = out.get_or_insert_with(|| bytes.to_vec());
                repaired[i..i + 6].copy_from_slice(b"\\ufffd");
                i += 6;
            }
            // Any other escape, `\\` included, is two bytes or a whole `\uXXXX`; skip it.
            Some(_) => i += 6,
            None => i += 2,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csm::EventType;

    #[test]
    fn drops_session_token_and_keeps_unknown_fields() {
        let event = parse_datagram(
            br#"{"Type":"ApiCallAttempt","SessionToken":"SECRET","Service":"STS","NewField":{"a":[1,2]}}"#,
            false,
        )
        .unwrap();
        assert_eq!(event.event_type, EventType::ApiCallAttempt);
        assert_eq!(event.service.as_deref(), Some("STS"));
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"Type":"ApiCallAttempt","Service":"STS","NewField":{"a":[1,2]}}"#
        );
    }

    #[test]
    fn fields_named_like_the_recorders_or_a_known_one_in_other_case_are_dropped() {
        let event = parse_datagram(
            br#"{"Type":"ApiCall","phase":"x","RecordedAt":1,"service":"s3","Service":"S3","Custom":1}"#,
            false,
        )
        .unwrap();
        assert!(event.altered);
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"Type":"ApiCall","Service":"S3","Custom":1}"#
        );
    }

    #[test]
    fn access_key_can_be_dropped() {
        let bytes = br#"{"Type":"ApiCallAttempt","AccessKey":"AKIAEXAMPLE"}"#;
        assert_eq!(
            parse_datagram(bytes, false).unwrap().access_key.as_deref(),
            Some("AKIAEXAMPLE")
        );
        assert_eq!(parse_datagram(bytes, true).unwrap().access_key, None);
    }

    #[test]
    fn escaped_and_raw_unicode_parse_to_the_same_text() {
        let escaped = parse_datagram(
            br#"{"Type":"ApiCall","FinalAwsExceptionMessage":"f\u00fcr \u2713"}"#,
            false,
        )
        .unwrap();
        let raw = parse_datagram(
            "{\"Type\":\"ApiCall\",\"FinalAwsExceptionMessage\":\"für ✓\"}".as_bytes(),
            false,
        )
        .unwrap();
        assert_eq!(
            escaped.final_aws_exception_message,
            raw.final_aws_exception_message
        );
        assert_eq!(raw.final_aws_exception_message.as_deref(), Some("für ✓"));
    }

    #[test]
    fn only_a_faithful_single_line_datagram_is_its_own_record_text() {
        let clean = br#"{"Type":"ApiCall","Service":"S3","Custom":"x"}"#;
        let event = parse_datagram(clean, false).unwrap();
        assert_eq!(event.source_json().map(str::as_bytes), Some(&clean[..]));
        for rewritten in [
            &br#"{"Type":"ApiCall","SessionToken":"t","Service":"S3"}"#[..],
            b"{\"Type\":\"ApiCall\",\n\"Service\":\"S3\"}",
            b" {\"Type\":\"ApiCall\"}",
            br#"{"Type":"ApiCall","Service":"S3","Service":"S3"}"#,
        ] {
            let event = parse_datagram(rewritten, false).unwrap();
            assert_eq!(
                event.source_json(),
                None,
                "{:?}",
                String::from_utf8_lossy(rewritten)
            );
        }
        // Bytes that are not UTF-8 are accepted only inside a skipped session token.
        let token = b"{\"Type\":\"ApiCall\",\"SessionToken\":\"\xff\",\"Service\":\"S3\"}";
        let event = parse_datagram(token, false).unwrap();
        assert_eq!(event.source_json(), None);
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"Type":"ApiCall","Service":"S3"}"#
        );
        assert!(parse_datagram(b"{\"Type\":\"ApiCall\",\"Service\":\"\xff\"}", false).is_err());
    }

    #[test]
    fn multi_line_unknown_values_are_compacted() {
        let event =
            parse_datagram(b"{\"Type\":\"ApiCall\",\"X\":{\n \"a\" : 1\n}}", false).unwrap();
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"Type":"ApiCall","X":{"a":1}}"#
        );
    }

    #[test]
    fn rejects_what_is_not_a_csm_event() {
        for bad in [
            &b""[..],
            b"not json",
            b"[1,2]",
            b"\"ApiCall\"",
            b"{}",
            b"{\"Type\":\"ApiCall\",\"Latency\":\"slow\"}",
            b"{\"Type\":\"ApiCall\",\"Service\":42}",
            b"{\"Type\":\"ApiCall\",\"Latency\":1e400}",
            b"{\"Type\":\"ApiCall\",\"Unknown\":1e400}",
            b"{\"Type\":\"ApiCall\",\"Unknown\":[-1e999]}",
            b"{\"Type\":\"ApiCall\",\"Latency\":18446744073709551616}",
            b"{\"Type\":\"ApiCall\"} trailing",
            b"{\"Type\":\"Api\xffCall\"}",
        ] {
            assert!(
                parse_datagram(bad, false).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let oversized = vec![b' '; MAX_EVENT_BYTES + 1];
        assert!(matches!(
            parse_datagram(&oversized, false),
            Err(ParseError::Oversized { .. })
        ));
    }

    #[test]
    fn lone_surrogates_are_replaced_and_pairs_kept() {
        let cut = br#"{"Type":"ApiCall","FinalAwsExceptionMessage":"cut \ud83d","X":"\\ud83d \ud83d\ude00 \ude00"}"#;
        assert!(parse_datagram(cut, false).is_err());
        let repaired = repair_lone_surrogates(cut).unwrap();
        let event = parse_datagram(&repaired, false).unwrap();
        assert_eq!(
            event.final_aws_exception_message.as_deref(),
            Some("cut \u{fffd}")
        );
        let json = serde_json::to_string(&event).unwrap();
        assert!(
            json.contains(r#""X":"\\ud83d \ud83d\ude00 \ufffd""#),
            "{json}"
        );
        assert_eq!(
            repair_lone_surrogates(br#"{"a":"\ud83d\ude00 \\ud83d"}"#),
            None
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let mut deep = String::from("{\"Type\":\"ApiCall\",\"X\":");
        deep.push_str(&"[".repeat(4000));
        deep.push_str(&"]".repeat(4000));
        deep.push('}');
        assert!(parse_datagram(deep.as_bytes(), false).is_err());
    }
}
