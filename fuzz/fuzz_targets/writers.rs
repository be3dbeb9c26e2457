//! The record writers: JSON Lines (`Record::write_json`) and CSV (`CsvWriter`). Any accepted
//! datagram, under any invocation context, becomes one JSON object and one CSV row of the right
//! width, never a panic.
#![no_main]

#[path = "../../tests/support/mod.rs"]
mod support;
use support::top_level_keys;

use std::sync::Arc;

use aws_api_call_recorder::csm::parse_datagram;
use aws_api_call_recorder::format::{CSV_COLUMNS, CsvWriter};
use aws_api_call_recorder::attribution::{InvocationInfo, Phase, RecordContext};
use aws_api_call_recorder::record::Record;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// Splits the input at NUL bytes: the datagram first, then context strings.
fn parts(data: &[u8]) -> (&[u8], Vec<String>) {
    let mut split = data.split(|&b| b == 0);
    let datagram = split.next().unwrap_or_default();
    let rest = split
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    (datagram, rest)
}

fn csv_rows(out: &[u8]) -> Vec<csv::StringRecord> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(out)
        .records()
        .map(|row| row.expect("the CSV writer's output reads back"))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let (datagram, strings) = parts(data);
    let Ok(event) = parse_datagram(datagram, false) else {
        return;
    };
    let event_json = serde_json::to_string(&event).unwrap();
    let info = InvocationInfo {
        function_name: strings.first().cloned(),
        function_version: strings.get(1).cloned(),
        aws_request_id: strings.get(2).cloned(),
        cold_start: strings.get(3).map(|s| s.len() % 2 == 0),
    };
    let phase = if info.aws_request_id.is_some() {
        Phase::Invoke
    } else {
        Phase::Init
    };
    let record = Record::new(
        event_json.clone(),
        Arc::new(RecordContext::new(phase, info.clone())),
        42,
    );
    let mut line = Vec::new();
    record.write_json(&mut line);
    let line = String::from_utf8(line).expect("records are UTF-8");
    assert!(
        !line.contains('\n'),
        "a JSON Lines record spans lines: {line:?}"
    );
    let object: Map<String, Value> = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("record is not a JSON object ({e}): {line}"));
    let keys = top_level_keys(&line);
    assert_eq!(
        keys.len(),
        object.len(),
        "duplicate keys in a record: {line}"
    );
    assert!(!object.contains_key("SessionToken"));
    assert_eq!(object.get("recordedAt"), Some(&Value::from(42)));
    assert_eq!(
        object.get("phase").and_then(Value::as_str),
        Some(phase.as_str())
    );
    if let Some(name) = &info.function_name {
        assert_eq!(
            object.get("functionName").and_then(Value::as_str),
            Some(name.as_str())
        );
    }

    let mut out = Vec::new();
    CsvWriter::new(false)
        .write(&[record], &mut out)
        .unwrap_or_else(|e| panic!("a record does not write as CSV ({e}): {line}"));
    let rows = csv_rows(&out);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].len(), CSV_COLUMNS.len());
    let api = rows[0]
        .get(CSV_COLUMNS.iter().position(|c| *c == "Api").unwrap())
        .unwrap();
    assert_eq!(api, event.api.as_deref().unwrap_or_default());
});
