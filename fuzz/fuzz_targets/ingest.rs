//! Any bytes through the recorder's own intake (`Recorder::ingest`, the path received datagrams
//! take, including the lone-surrogate repair and the verbatim copy of clean datagrams): an accepted
//! datagram becomes exactly one record, a single-line JSON object without a session token, and
//! whatever is refused is counted.
#![no_main]

use std::sync::OnceLock;

use aws_api_call_recorder::{Recorder, RecorderConfig, RecorderOptions};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fn recorder() -> &'static Recorder {
    static RECORDER: OnceLock<Recorder> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let options = RecorderOptions {
            port: Some(0.0),
            sink: Some("none".into()),
            ..Default::default()
        };
        Recorder::new(RecorderConfig::from_options(options, Default::default()).expect("valid options"))
            .expect("recorder")
    })
}

fuzz_target!(|data: &[u8]| {
    let recorder = recorder();
    recorder.take_records();
    let before = recorder.stats();
    recorder.ingest(data);
    let after = recorder.stats();
    assert_eq!(after.received, before.received + 1);
    let accepted = after.parsed - before.parsed;
    let refused = (after.malformed - before.malformed) + (after.oversized - before.oversized);
    assert_eq!(accepted + refused, 1, "every datagram is counted once");
    let records = recorder.take_records().iter().map(|r| r.to_json()).collect::<Vec<_>>();
    assert_eq!(records.len() as u64, accepted);
    for record in records {
        assert!(
            !record.contains('\n') && !record.contains('\r'),
            "record spans lines: {record:?}"
        );
        let object: Map<String, Value> = serde_json::from_str(&record)
            .unwrap_or_else(|e| panic!("record is not a JSON object ({e}): {record}"));
        assert!(
            !object.contains_key("SessionToken"),
            "session token kept: {record}"
        );
        assert!(object.contains_key("Type"));
    }
});
