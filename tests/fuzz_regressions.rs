//! Inputs the fuzzer (fuzz/, `scripts/fuzz.sh`) found, kept as tests. Each names the target and the
//! artifact it came from.

use std::sync::Arc;

use aws_api_call_recorder::attribution::{InvocationInfo, Phase, RecordContext};
use aws_api_call_recorder::csm::parse_datagram;
use aws_api_call_recorder::format::CsvWriter;
use aws_api_call_recorder::record::Record;

fn record(datagram: &[u8], info: InvocationInfo) -> Option<Record> {
    let event = parse_datagram(datagram, false).ok()?;
    let json = serde_json::to_string(&event).unwrap();
    Some(Record::new(
        json,
        Arc::new(RecordContext::new(Phase::Invoke, info)),
        42,
    ))
}

/// parse_datagram, crash-507787ac08bf52afac14921a02a8a80c8b376ed3: an unknown field holding a
/// number beyond f64 (`1e400`) is accepted verbatim, and then the record is not JSON that the CSV
/// writer (serde_json) can read, so the whole flush of a CSV file or stdout sink fails. Whatever is
/// accepted must be writable; such a datagram should be refused as malformed (as `Latency: 1e400`
/// is) or its value written in a form that reads back.
#[test]
fn an_accepted_datagram_with_a_huge_number_writes_as_csv() {
    for datagram in [
        &br#"{"Type":"ApiCall","N":1e400}"#[..],
        br#"{"Type":"ApiCall","Api":"GetItem","Extra":[1,-1e999]}"#,
        br#"{"Type":"ApiCall","Extra":{"n":123e45678}}"#,
    ] {
        let Some(record) = record(datagram, InvocationInfo::default()) else {
            continue; // refused as malformed: fine
        };
        let line = record.to_json();
        let mut out = Vec::new();
        let written = CsvWriter::new(true).write(&[record], &mut out);
        assert!(
            written.is_ok(),
            "accepted {} but cannot write it as CSV: {:?}",
            String::from_utf8_lossy(datagram),
            written.err().map(|e| e.to_string())
        );
        serde_json::from_str::<serde_json::Value>(&line)
            .unwrap_or_else(|e| panic!("record does not read back ({e}): {line}"));
    }
}

/// writers, crash-58ae3ba99755418f878405315f8f9f15b7685df0: a datagram field named like a context
/// field (`phase`, `recordedAt`, ...) gives the record two keys of that name.
#[test]
fn a_record_has_no_duplicate_keys() {
    let info = InvocationInfo {
        function_name: Some("fn".into()),
        function_version: Some("$LATEST".into()),
        aws_request_id: Some("req-1".into()),
        cold_start: Some(false),
    };
    let record = record(br#"{"Type":"Other","phase":"x","recordedAt":1}"#, info).unwrap();
    let line = record.to_json();
    let keys: Vec<&str> = ["\"phase\":", "\"recordedAt\":"]
        .into_iter()
        .filter(|key| line.matches(key).count() > 1)
        .collect();
    assert!(keys.is_empty(), "duplicate {keys:?} in {line}");
}
