//! Any bytes into the CSM parser: it never panics, and what it accepts serializes to a JSON object
//! without a session token that parses again to the same event.
#![no_main]

use aws_api_call_recorder::csm::{MAX_EVENT_BYTES, parse_datagram};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    for drop_access_key in [true, false] {
        let Ok(event) = parse_datagram(data, drop_access_key) else {
            continue;
        };
        let json = serde_json::to_string(&event).expect("a parsed event serializes");
        let object: Map<String, Value> =
            serde_json::from_str(&json).expect("a serialized event is a JSON object");
        assert!(
            !object.contains_key("SessionToken"),
            "session token kept: {json}"
        );
        if drop_access_key {
            assert!(!object.contains_key("AccessKey"), "access key kept: {json}");
        }
        assert!(object.contains_key("Type"));
        assert!(
            !json.contains('\n') && !json.contains('\r'),
            "not one line: {json:?}"
        );
        if json.len() <= MAX_EVENT_BYTES {
            let again = parse_datagram(json.as_bytes(), drop_access_key)
                .unwrap_or_else(|e| panic!("serialized event does not parse again ({e}): {json}"));
            let json_again = serde_json::to_string(&again).unwrap();
            assert_eq!(json, json_again, "parse -> serialize is not stable");
        }
    }
});
