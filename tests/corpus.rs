//! The parser against every datagram captured from real SDKs (botocore, aws CLI, aws-sdk v2).

use std::path::PathBuf;

use aws_api_call_recorder::csm::{EventType, parse_datagram};
use serde_json::Value;

fn corpus() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/csm-corpus");
    let mut datagrams = Vec::new();
    for entry in
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus at {}: {e}", dir.display()))
    {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let item: Value = serde_json::from_str(line).unwrap();
                datagrams.push((
                    item["scenario"].as_str().unwrap().to_owned(),
                    item["datagram"].as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    assert!(
        datagrams.len() >= 100,
        "corpus has only {} datagrams",
        datagrams.len()
    );
    datagrams
}

#[test]
fn every_captured_datagram_parses_and_round_trips_without_the_session_token() {
    let mut with_token = 0;
    for (scenario, datagram) in corpus() {
        let event = parse_datagram(datagram.as_bytes(), false)
            .unwrap_or_else(|e| panic!("{scenario}: {e}"));
        assert!(
            matches!(
                event.event_type,
                EventType::ApiCall | EventType::ApiCallAttempt
            ),
            "{scenario}"
        );
        assert!(
            event.extra.is_empty(),
            "{scenario}: unknown fields {:?}",
            event.extra
        );
        let output = serde_json::to_string(&event).unwrap();
        let mut expected: Value = serde_json::from_str(&datagram).unwrap();
        if expected
            .as_object_mut()
            .unwrap()
            .remove("SessionToken")
            .is_some()
        {
            with_token += 1;
        }
        assert!(
            !output.contains("SessionToken") && !output.contains("FAKESESSIONTOKEN"),
            "{scenario}"
        );
        let actual: Value = serde_json::from_str(&output).unwrap();
        assert_eq!(actual, expected, "{scenario}: fields changed");
    }
    assert!(with_token > 10, "the corpus should exercise session tokens");
}

#[test]
fn escaped_and_raw_non_ascii_messages_decode_alike() {
    let messages: Vec<String> = corpus()
        .into_iter()
        .filter(|(scenario, _)| scenario.contains("non-ascii"))
        .filter_map(|(_, datagram)| {
            parse_datagram(datagram.as_bytes(), false)
                .unwrap()
                .aws_exception_message
                .map(|m| m.into_owned())
        })
        .collect();
    assert!(messages.len() >= 2, "{messages:?}");
    for message in &messages {
        assert!(
            message.contains("für") && message.contains('✓'),
            "{message}"
        );
    }
}

#[test]
fn access_key_is_dropped_on_request() {
    for (scenario, datagram) in corpus() {
        let event = parse_datagram(datagram.as_bytes(), true).unwrap();
        assert_eq!(event.access_key, None, "{scenario}");
    }
}
