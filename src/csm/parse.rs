//! Datagram bytes to [`CsmEvent`], with a typed error for everything that is not a CSM event.

use serde::de::DeserializeSeed;

use super::event::{CsmEvent, EventSeed};

/// The SDKs' own limit on a serialized event (botocore and aws-sdk v2 drop anything larger).
pub const MAX_EVENT_BYTES: usize = 8 * 1024;

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

/// Parses one datagram. `SessionToken` is skipped during parsing and never stored; `AccessKey` is kept
/// only when `keep_access_key` is set.
pub fn parse_datagram(bytes: &[u8], keep_access_key: bool) -> Result<CsmEvent<'_>, ParseError> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(ParseError::Oversized { size: bytes.len() });
    }
    if bytes.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let event = EventSeed { keep_access_key }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csm::EventType;

    #[test]
    fn drops_session_token_and_keeps_unknown_fields() {
        let event = parse_datagram(
            br#"{"Type":"ApiCallAttempt","SessionToken":"SECRET","Service":"STS","NewField":{"a":[1,2]}}"#,
            true,
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
    fn access_key_can_be_dropped() {
        let bytes = br#"{"Type":"ApiCallAttempt","AccessKey":"AKIAEXAMPLE"}"#;
        assert_eq!(
            parse_datagram(bytes, true).unwrap().access_key.as_deref(),
            Some("AKIAEXAMPLE")
        );
        assert_eq!(parse_datagram(bytes, false).unwrap().access_key, None);
    }

    #[test]
    fn escaped_and_raw_unicode_parse_to_the_same_text() {
        let escaped = parse_datagram(
            br#"{"Type":"ApiCall","FinalAwsExceptionMessage":"f\u00fcr \u2713"}"#,
            true,
        )
        .unwrap();
        let raw = parse_datagram(
            "{\"Type\":\"ApiCall\",\"FinalAwsExceptionMessage\":\"für ✓\"}".as_bytes(),
            true,
        )
        .unwrap();
        assert_eq!(
            escaped.final_aws_exception_message,
            raw.final_aws_exception_message
        );
        assert_eq!(raw.final_aws_exception_message.as_deref(), Some("für ✓"));
    }

    #[test]
    fn multi_line_unknown_values_are_compacted() {
        let event = parse_datagram(b"{\"Type\":\"ApiCall\",\"X\":{\n \"a\" : 1\n}}", true).unwrap();
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
            b"{\"Type\":\"ApiCall\",\"Latency\":18446744073709551616}",
            b"{\"Type\":\"ApiCall\"} trailing",
            b"{\"Type\":\"Api\xffCall\"}",
        ] {
            assert!(
                parse_datagram(bad, true).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let oversized = vec![b' '; MAX_EVENT_BYTES + 1];
        assert!(matches!(
            parse_datagram(&oversized, true),
            Err(ParseError::Oversized { .. })
        ));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let mut deep = String::from("{\"Type\":\"ApiCall\",\"X\":");
        deep.push_str(&"[".repeat(4000));
        deep.push_str(&"]".repeat(4000));
        deep.push('}');
        assert!(parse_datagram(deep.as_bytes(), true).is_err());
    }
}
