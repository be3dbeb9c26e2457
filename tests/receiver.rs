//! The recorder over real loopback UDP: bad traffic is counted and skipped, good traffic recorded.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use aws_api_call_recorder::attribution::InvocationInfo;
use aws_api_call_recorder::error::Coded;
use aws_api_call_recorder::{FlushOptions, Recorder, RecorderConfig, RecorderOptions, Whole};
use serde_json::Value;

fn recorder(options: RecorderOptions) -> Recorder {
    let options = RecorderOptions {
        port: Some(Whole(0)),
        host: Some("127.0.0.1".into()),
        ..options
    };
    Recorder::new(RecorderConfig::resolve(options, |_| None).unwrap()).unwrap()
}

/// The runtime `Recorder::new` runs the receiver and the sinks on.
fn runtime() -> tokio::runtime::Handle {
    aws_api_call_recorder::runtime::handle().unwrap()
}

fn send(to: std::net::SocketAddr, payloads: &[&[u8]]) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for payload in payloads {
        socket.send_to(payload, to).unwrap();
    }
}

fn flush_options() -> FlushOptions {
    FlushOptions {
        drain: Duration::from_millis(10),
        deadline: Instant::now() + Duration::from_secs(5),
    }
}

const CALL: &[u8] = br#"{"Version":1,"ClientId":"","Type":"ApiCall","Service":"STS","Api":"GetCallerIdentity","Timestamp":1795357598164,"AttemptCount":1,"Region":"us-west-2","FinalHttpStatusCode":200,"Latency":53,"MaxRetriesExceeded":0}"#;
const ATTEMPT: &[u8] = br#"{"Type":"ApiCallAttempt","Api":"GetCallerIdentity","Version":1,"Service":"STS","HttpStatusCode":200,"AccessKey":"AKIALABFAKEKEY000001","SessionToken":"FAKESESSIONTOKEN/lab+token==AbCdEf","Timestamp":1795357669877,"AttemptLatency":15,"Region":"us-west-2","ClientId":""}"#;

#[test]
fn bad_datagrams_are_counted_and_valid_ones_around_them_recorded() {
    let recorder = recorder(RecorderOptions {
        sink: Some("none".into()),
        ..Default::default()
    });
    let addr = recorder.start().unwrap();
    let huge = vec![b'{'; 65_507];
    let nested = format!(
        "{{\"Type\":\"ApiCall\",\"X\":{}{}}}",
        "[".repeat(3000),
        "]".repeat(3000)
    );
    send(
        addr,
        &[
            ATTEMPT,
            b"{not json",
            b"\xff\xfe\x00garbage",
            b"",
            &huge,
            b"[1,2,3]",
            b"{\"Type\":\"ApiCall\",\"Latency\":\"fast\"}",
            nested.as_bytes(),
            CALL,
        ],
    );
    let recorder_ref = &recorder;
    let runtime = runtime();
    runtime.block_on(async move { recorder_ref.flush(flush_options()).await });
    let stats = recorder.stats();
    assert_eq!(stats.received, 9);
    assert_eq!(stats.parsed, 2);
    assert_eq!(stats.calls, 1, "one of the two is a finished call");
    assert_eq!(stats.oversized, 1);
    assert_eq!(stats.malformed, 6);
    let records = recorder
        .take_records()
        .iter()
        .map(|r| r.to_json())
        .collect::<Vec<_>>();
    assert_eq!(records.len(), 2);
    assert!(
        records
            .iter()
            .all(|r| !r.contains("SessionToken") && !r.contains("FAKESESSIONTOKEN"))
    );
    let first: Value = serde_json::from_str(&records[0]).unwrap();
    assert_eq!(first["Type"], "ApiCallAttempt");
    assert_eq!(first["AccessKey"], "AKIALABFAKEKEY000001");
    assert!(
        first.get("phase").is_none(),
        "a plain recorder outside Lambda has no phase"
    );
}

#[test]
fn records_late_datagrams_for_the_invocation_and_writes_jsonl() {
    let dir = std::env::temp_dir().join(format!("acr-test-{}", std::process::id()));
    let path = dir.join("nested/calls.jsonl");
    let _ = std::fs::remove_dir_all(&dir);
    let recorder = recorder(RecorderOptions {
        file: Some(path.to_string_lossy().into()),
        ..Default::default()
    });
    let addr = recorder.start().unwrap();
    let id = recorder.begin_invocation(InvocationInfo {
        function_name: Some("orders".into()),
        aws_request_id: Some("req-1".into()),
        cold_start: Some(true),
        ..Default::default()
    });
    let sender = std::thread::spawn(move || {
        // Arrives during the drain, after the handler "returned".
        std::thread::sleep(Duration::from_millis(5));
        send(addr, &[ATTEMPT, CALL]);
    });
    let report = runtime().block_on(async {
        recorder
            .finish_invocation(
                id,
                FlushOptions {
                    drain: Duration::from_millis(100),
                    ..flush_options()
                },
            )
            .await
    });
    sender.join().unwrap();
    assert_eq!(
        (report.records, report.delivered, report.failed),
        (2, 2, 0),
        "{report:?}"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert_eq!(line["functionName"], "orders");
        assert_eq!(line["awsRequestId"], "req-1");
        assert_eq!(line["phase"], "invoke");
        assert_eq!(line["coldStart"], true);
        assert!(line["recordedAt"].as_u64().unwrap() > 1_700_000_000_000);
    }
    assert!(!text.contains("FAKESESSIONTOKEN"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn csv_file_gets_one_header_and_quoted_fields() {
    let dir = std::env::temp_dir().join(format!("acr-csv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("calls.csv");
    let recorder = recorder(RecorderOptions {
        file: Some(path.to_string_lossy().into()),
        ..Default::default()
    });
    let runtime = runtime();
    recorder.ingest(br#"{"Type":"ApiCall","Service":"S3","Api":"GetObject","FinalAwsExceptionMessage":"a \"quoted\", comma\nline","FinalHttpStatusCode":404}"#);
    runtime.block_on(recorder.flush(flush_options()));
    recorder.ingest(CALL);
    runtime.block_on(recorder.flush(flush_options()));
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "Type");
    assert_eq!(&headers[5], "Attempts");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    assert_eq!(
        &rows[0][column("FinalAwsExceptionMessage")],
        "a \"quoted\", comma\nline"
    );
    assert_eq!(&rows[0][column("FinalHttpStatusCode")], "404");
    assert_eq!(&rows[1][column("Attempts")], "1");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn buffer_overflow_is_counted_not_grown() {
    let recorder = recorder(RecorderOptions {
        sink: Some("none".into()),
        max_buffered_records: Some(Whole(3)),
        ..Default::default()
    });
    for _ in 0..10 {
        recorder.ingest(CALL);
    }
    assert_eq!(recorder.records_json().len(), 3);
    assert_eq!(recorder.stats().dropped, 7);
}

#[test]
fn stop_frees_the_port_and_a_second_bind_fails_while_running() {
    let first = recorder(RecorderOptions::default());
    let addr = first.start().unwrap();
    let second = Recorder::new(
        RecorderConfig::resolve(
            RecorderOptions {
                port: Some(Whole(addr.port())),
                ..Default::default()
            },
            |_| None,
        )
        .unwrap(),
    )
    .unwrap();
    let error = second.start().unwrap_err();
    assert_eq!(error.code().as_str(), "ERR_RECORDER_PORT_IN_USE");
    runtime().block_on(first.stop());
    assert_eq!(second.start().unwrap(), addr);
}

#[test]
fn clean_datagrams_are_kept_verbatim_and_altered_ones_rewritten() {
    let recorder = recorder(RecorderOptions {
        sink: Some("none".into()),
        ..Default::default()
    });
    recorder.ingest(CALL);
    recorder.ingest(ATTEMPT);
    recorder.ingest(br#"{"Type":"ApiCall","Api":"First","Api":"Second"}"#);
    recorder.ingest(br#"{"Type":"ApiCall","Region":null,"Session\u0054oken":"escaped-key"}"#);
    recorder.ingest(b"{\"Type\":\"ApiCall\",\n\"Api\":\"X\"}");
    let records = recorder
        .take_records()
        .iter()
        .map(|r| r.to_json())
        .collect::<Vec<_>>();
    let call = std::str::from_utf8(CALL).unwrap();
    assert!(
        records[0].starts_with(&call[..call.len() - 1]),
        "verbatim: {}",
        records[0]
    );
    assert!(!records[1].contains("SessionToken") && !records[1].contains("FAKESESSIONTOKEN"));
    assert_eq!(records[2].matches("\"Api\"").count(), 1);
    assert!(records[2].contains("Second"));
    assert!(
        !records[3].contains("Region") && !records[3].contains("escaped-key"),
        "{}",
        records[3]
    );
    assert!(!records[4].contains('\n'));
}
