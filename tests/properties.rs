//! Properties of the parser and the writers over generated datagrams: every field survives
//! parse → serialize → parse (known and unknown fields, escaped and raw unicode), and the session
//! token never does, whatever its spelling, position or repetition.
//!
//! What "the session token" means: the top-level `SessionToken` field the SDKs send, under any key
//! spelling that JSON decodes to `SessionToken` (such as `"Session\u0054oken"`). A `SessionToken`
//! key nested inside an unknown field's value is part of that value and is kept as sent: the SDKs
//! never nest anything, and the recorder does not rewrite values it does not know.

mod support;
use support::top_level_keys;

use std::sync::Arc;

use aws_api_call_recorder::attribution::{InvocationInfo, Phase, RecordContext};
use aws_api_call_recorder::csm::{
    FIELDS, FieldKind, MAX_EVENT_BYTES, ParseError, RECORDER_FIELDS, parse_datagram,
};
use aws_api_call_recorder::format::{CSV_COLUMNS, CsvWriter};
use aws_api_call_recorder::record::Record;
use proptest::prelude::*;
use serde_json::{Map, Value};

const TOKEN: &str = "SessionToken";
const TOKEN_VALUE: &str = "FAKESESSIONTOKEN/prop+token==Canary";

// ---------------------------------------------------------------------------------------------
// JSON text with controlled escaping

/// Encodes `s` as a JSON string. `ascii`: escape everything outside ASCII as `\uXXXX` (botocore's
/// style); otherwise raw UTF-8 (aws-sdk v2's). `escape_all`: escape every character, even ASCII.
fn json_str(s: &str, ascii: bool, escape_all: bool, upper_hex: bool) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        let escape = escape_all || (c as u32) < 0x20 || (ascii && !c.is_ascii());
        match c {
            '"' if !escape => out.push_str("\\\""),
            '\\' if !escape => out.push_str("\\\\"),
            _ if escape => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    if upper_hex {
                        out.push_str(&format!("\\u{unit:04X}"));
                    } else {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A field value as it goes on the wire.
#[derive(Debug, Clone)]
enum Wire {
    Str(String),
    Int(i64),
    /// Any JSON, for unknown fields.
    Json(Value),
}

impl Wire {
    fn encode(&self, ascii: bool) -> String {
        match self {
            Wire::Str(s) => json_str(s, ascii, false, false),
            Wire::Int(n) => n.to_string(),
            Wire::Json(v) => serde_json::to_string(v).unwrap(),
        }
    }

    fn value(&self) -> Value {
        match self {
            Wire::Str(s) => Value::String(s.clone()),
            Wire::Int(n) => Value::from(*n),
            // As serde_json reads the text written for it (its float parsing is not exact to the last
            // bit, and the recorder keeps the text, not the number).
            Wire::Json(v) => serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap(),
        }
    }
}

/// One key of the datagram: its decoded name, how it is spelled, and its value.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    spelled: String,
    value: Wire,
}

/// A generated datagram and what it must parse to.
#[derive(Debug, Clone)]
struct Datagram {
    text: String,
    /// Top-level fields the parsed event must have, last occurrence winning; no session token.
    expected: Map<String, Value>,
}

fn build(entries: &[Entry], ascii: bool) -> Datagram {
    let mut text = String::from("{");
    let mut expected = Map::new();
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&entry.spelled);
        text.push(':');
        text.push_str(&entry.value.encode(ascii));
        if entry.name != TOKEN {
            expected.insert(entry.name.clone(), entry.value.value());
        }
    }
    text.push('}');
    Datagram { text, expected }
}

// ---------------------------------------------------------------------------------------------
// Strategies

fn any_text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        // Any Unicode scalar value, control characters and astral planes included.
        prop::collection::vec(any::<char>(), 0..max).prop_map(|c| c.into_iter().collect()),
        // What real messages look like: ASCII with quotes, backslashes, umlauts and symbols.
        prop::collection::vec(
            prop::sample::select(vec![
                'a', 'Z', ' ', '"', '\\', '/', 'ü', '✓', '😀', '\n', '\t', '\u{7f}', '\u{2028}'
            ]),
            0..max,
        )
        .prop_map(|c| c.into_iter().collect()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e300f64..1e300).prop_map(Value::from),
        any_text(12).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((any_text(6), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A known field (not `Type`) with a value of its kind.
fn known_entry() -> impl Strategy<Value = (String, Wire)> {
    let known: Vec<(&str, FieldKind)> = FIELDS
        .iter()
        .copied()
        .filter(|(n, _)| *n != "Type")
        .collect();
    prop::sample::select(known).prop_flat_map(|(name, kind)| {
        let value = match kind {
            FieldKind::Str => any_text(24).prop_map(Wire::Str).boxed(),
            FieldKind::Int => any::<i64>().prop_map(Wire::Int).boxed(),
        };
        (Just(name.to_owned()), value)
    })
}

fn is_reserved(name: &str) -> bool {
    name == "Type" || name == TOKEN || FIELDS.iter().any(|(n, _)| *n == name)
}

/// An unknown field: a name no known field has, with any JSON value.
fn unknown_entry() -> impl Strategy<Value = (String, Wire)> {
    (any_text(10), json_value())
        .prop_filter("not a known field", |(name, _)| !is_reserved(name))
        .prop_map(|(name, value)| (name, Wire::Json(value)))
}

/// A session token under a random spelling that decodes to `SessionToken`, with any value.
fn token_entry() -> impl Strategy<Value = Entry> {
    let value = prop_oneof![
        3 => Just(Wire::Str(TOKEN_VALUE.to_owned())),
        1 => json_value().prop_map(Wire::Json),
    ];
    (
        prop::collection::vec(any::<(bool, bool)>(), TOKEN.len()),
        value,
    )
        .prop_map(|(escapes, value)| {
            let mut spelled = String::from('"');
            for (c, (escape, upper)) in TOKEN.chars().zip(escapes) {
                let piece = json_str(&c.to_string(), true, escape, upper);
                spelled.push_str(&piece[1..piece.len() - 1]);
            }
            spelled.push('"');
            Entry {
                name: TOKEN.to_owned(),
                spelled,
                value,
            }
        })
}

/// Key spelling: plain, or with every character escaped.
fn spell(name: &str, escape_all: bool, ascii: bool) -> String {
    json_str(name, ascii, escape_all, false)
}

prop_compose! {
    /// A datagram with a `Type`, known and unknown fields (some repeated), and session tokens,
    /// in random order, keys escaped at random, strings in either SDK's escaping style.
    fn datagram()(
        event_type in prop::sample::select(vec!["ApiCall", "ApiCallAttempt", "SomethingNew"]),
        known in prop::collection::vec((known_entry(), any::<bool>()), 0..10),
        unknown in prop::collection::vec((unknown_entry(), any::<bool>()), 0..4),
        tokens in prop::collection::vec(token_entry(), 0..3),
        ascii in any::<bool>(),
        order in any::<u64>(),
    ) -> Datagram {
        let mut entries: Vec<Entry> = Vec::new();
        entries.push(Entry { name: "Type".into(), spelled: "\"Type\"".into(), value: Wire::Str(event_type.into()) });
        for ((name, value), escape) in known.into_iter().chain(unknown) {
            entries.push(Entry { spelled: spell(&name, escape, ascii), name, value });
        }
        entries.extend(tokens);
        // A deterministic shuffle from `order` (key order must not matter).
        let mut rng = order;
        for i in (1..entries.len()).rev() {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            entries.swap(i, (rng >> 33) as usize % (i + 1));
        }
        build(&entries, ascii)
    }
}

// ---------------------------------------------------------------------------------------------
// Checks

fn object(json: &str) -> Map<String, Value> {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not a JSON object ({e}): {json}"))
}

fn record(event_json: String, info: InvocationInfo) -> Record {
    Record::new(
        event_json,
        Arc::new(RecordContext::new(Phase::Invoke, info)),
        1_795_357_598_165,
    )
}

fn info() -> InvocationInfo {
    InvocationInfo {
        function_name: Some("orders".into()),
        function_version: Some("$LATEST".into()),
        aws_request_id: Some("c0ffee00-0000-4000-8000-000000000001".into()),
        cold_start: Some(true),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// parse → serialize → parse keeps every field, and the session token is gone at every step.
    #[test]
    fn every_field_survives_and_the_token_never_does(d in datagram()) {
        let parsed = parse_datagram(d.text.as_bytes(), false);
        if d.text.len() > MAX_EVENT_BYTES {
            let oversized = matches!(parsed, Err(ParseError::Oversized { .. }));
            prop_assert!(oversized, "a datagram over the limit was not refused as oversized");
            return Ok(());
        }
        let event = parsed.unwrap_or_else(|e| panic!("rejected ({e}): {}", d.text));
        let json = serde_json::to_string(&event).unwrap();
        prop_assert!(!json.contains(TOKEN_VALUE), "token value kept: {}", json);
        let first = object(&json);
        prop_assert_eq!(&first, &d.expected, "fields differ after one parse");
        prop_assert_eq!(top_level_keys(&json).len(), first.len(), "duplicate keys: {}", json);

        let again = parse_datagram(json.as_bytes(), false).unwrap();
        let json_again = serde_json::to_string(&again).unwrap();
        prop_assert_eq!(&json_again, &json, "serialization is not stable");
        prop_assert_eq!(object(&json_again), d.expected);
    }

    /// Dropping the access key removes it and nothing else.
    #[test]
    fn dropping_the_access_key_keeps_everything_else(d in datagram()) {
        prop_assume!(d.text.len() <= MAX_EVENT_BYTES);
        let event = parse_datagram(d.text.as_bytes(), true).unwrap();
        let mut expected = d.expected.clone();
        expected.remove("AccessKey");
        prop_assert_eq!(object(&serde_json::to_string(&event).unwrap()), expected);
    }

    /// A record (JSON Lines and Firehose) is the event plus its context, one line, no token; the
    /// CSV row carries each column's value back.
    #[test]
    fn records_carry_the_event_and_write_as_one_csv_row(d in datagram()) {
        prop_assume!(d.text.len() <= MAX_EVENT_BYTES);
        let event = parse_datagram(d.text.as_bytes(), false).unwrap();
        let record = record(serde_json::to_string(&event).unwrap(), info());
        let line = record.to_json();
        prop_assert!(!line.contains('\n') && !line.contains(TOKEN_VALUE));
        let full = object(&line);
        for (name, value) in &d.expected {
            if !RECORDER_FIELDS.contains(&name.as_str()) {
                prop_assert_eq!(full.get(name), Some(value), "field {} lost", name);
            }
        }
        let request_id = info().aws_request_id;
        prop_assert_eq!(full.get("awsRequestId").and_then(Value::as_str), request_id.as_deref());
        prop_assert!(!full.contains_key(TOKEN));

        let mut out = Vec::new();
        CsvWriter::new(true).write(std::slice::from_ref(&record), &mut out).unwrap();
        let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(out.as_slice()).records().map(Result::unwrap).collect();
        prop_assert_eq!(rows.len(), 1);
        for (column, cell) in CSV_COLUMNS.iter().zip(rows[0].iter()) {
            let field = if *column == "Attempts" { "AttemptCount" } else { column };
            let expected = match full.get(field) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            prop_assert_eq!(cell, expected.as_str(), "column {}", column);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed cases: the decisions above, spelled out

#[test]
fn escaped_and_repeated_tokens_are_all_dropped() {
    for datagram in [
        r#"{"Type":"ApiCallAttempt","SessionToken":"A","SessionToken":"B"}"#,
        r#"{"Type":"ApiCallAttempt","Session\u0054oken":"A"}"#,
        r#"{"Type":"ApiCallAttempt","\u0053\u0065\u0073\u0073\u0069\u006f\u006e\u0054\u006f\u006b\u0065\u006e":"A"}"#,
        r#"{"Type":"ApiCallAttempt","Session\u0054oken":"A","SessionToken":"B","Sessio\u006EToken":{"C":[1]}}"#,
        r#"{"SessionToken":"A","Type":"ApiCallAttempt","SessionToken":null}"#,
    ] {
        let event = parse_datagram(datagram.as_bytes(), false).unwrap();
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(json, r#"{"Type":"ApiCallAttempt"}"#, "from {datagram}");
    }
}

#[test]
fn a_token_nested_in_an_unknown_field_is_that_fields_value_and_is_kept() {
    let datagram = r#"{"Type":"ApiCall","Custom":{"SessionToken":"not ours to rewrite"},"SessionToken":"dropped"}"#;
    let event = parse_datagram(datagram.as_bytes(), false).unwrap();
    assert_eq!(
        serde_json::to_string(&event).unwrap(),
        r#"{"Type":"ApiCall","Custom":{"SessionToken":"not ours to rewrite"}}"#
    );
}

#[test]
fn a_repeated_field_keeps_its_last_value() {
    let datagram = r#"{"Type":"ApiCall","Latency":1,"X":"a","Latency":2,"\u0058":"b","Type":"ApiCallAttempt"}"#;
    let event = parse_datagram(datagram.as_bytes(), false).unwrap();
    assert_eq!(
        serde_json::to_string(&event).unwrap(),
        r#"{"Type":"ApiCallAttempt","Latency":2,"X":"b"}"#
    );
}

/// A record must be a JSON object with unique keys: Athena's JSON SerDe and other strict readers
/// reject a row with a duplicate key. An unknown datagram field named like one of the context
/// fields the recorder adds must not produce a second key of that name.
#[test]
fn unknown_fields_named_like_context_fields_do_not_duplicate_keys() {
    for name in RECORDER_FIELDS {
        let datagram =
            format!(r#"{{"Type":"ApiCall","Api":"GetItem","{name}":"from the datagram"}}"#);
        let event = parse_datagram(datagram.as_bytes(), false).unwrap();
        let line = record(serde_json::to_string(&event).unwrap(), info()).to_json();
        let keys = top_level_keys(&line);
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(keys.len(), unique.len(), "{name}: duplicate keys in {line}");
    }
}
