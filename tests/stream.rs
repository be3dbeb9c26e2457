//! Streams: records go from the buffer to a file as they arrive, formatted, filtered and summarized;
//! nothing is lost silently, and the session token is never written.

use std::path::{Path, PathBuf};

use aws_api_call_recorder::error::{Coded, ErrorCode};
use aws_api_call_recorder::stream::{
    StreamError, StreamFormat, StreamOptions, StreamReport, StreamTarget,
};
use aws_api_call_recorder::{Recorder, RecorderConfig, RecorderOptions, Whole};

fn recorder(options: RecorderOptions) -> Recorder {
    let options = RecorderOptions {
        port: Some(Whole(0)),
        host: Some("127.0.0.1".into()),
        sink: options.sink.or(Some("none".into())),
        ..options
    };
    Recorder::new(RecorderConfig::resolve(options, |_| None).unwrap()).unwrap()
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    aws_api_call_recorder::runtime::handle()
        .unwrap()
        .block_on(future)
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("stream-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn to_file(format: StreamFormat, path: &Path, only_errors: bool) -> StreamOptions {
    StreamOptions {
        format,
        target: Some(StreamTarget::File(path.to_owned())),
        only_errors,
    }
}

const TOKEN: &str = "FAKESESSIONTOKEN/stream+token==";

fn events() -> Vec<String> {
    vec![
        format!(
            r#"{{"Type":"ApiCallAttempt","Service":"S3","Api":"GetObject","HttpStatusCode":503,"SessionToken":"{TOKEN}","AttemptLatency":4}}"#
        ),
        r#"{"Type":"ApiCall","Service":"S3","Api":"GetObject","FinalHttpStatusCode":200,"AttemptCount":2,"Latency":9}"#.into(),
        r#"{"Type":"ApiCall","Service":"DynamoDB","Api":"GetItem","FinalHttpStatusCode":400,"FinalAwsException":"ResourceNotFoundException","FinalAwsExceptionMessage":"Tabelle \"ä\" nicht gefunden,\nü 🚀","Latency":3}"#.into(),
    ]
}

fn finish(stream: &aws_api_call_recorder::stream::Stream) -> StreamReport {
    block_on(stream.finish()).expect("the first finish reports")
}

#[test]
fn jsonl_writes_every_record_without_the_token_and_summarizes_it() {
    let dir = TempDir::new("jsonl");
    let path = dir.file("calls.jsonl");
    let recorder = recorder(RecorderOptions::default());
    let stream = recorder
        .stream(to_file(StreamFormat::Jsonl, &path, false))
        .unwrap();
    for event in events() {
        recorder.ingest(event.as_bytes());
    }
    let report = finish(&stream);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("FAKESESSIONTOKEN"));
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[2]["FinalAwsExceptionMessage"],
        "Tabelle \"ä\" nicht gefunden,\nü 🚀"
    );
    assert!(lines.iter().all(|line| line["recordedAt"].is_u64()));
    assert_eq!(report.written, 3);
    assert_eq!(report.error, None);
    let summary = &report.summary;
    assert_eq!((summary.calls, summary.errors, summary.retries), (2, 1, 1));
    assert_eq!((summary.attempts, summary.failed_attempts), (1, 1));
    assert_eq!(
        summary.error_kinds[0].error,
        "400 ResourceNotFoundException"
    );
    assert!(
        block_on(stream.finish()).is_none(),
        "a second finish has nothing to report"
    );
}

#[test]
fn csv_has_one_header_even_when_appending_and_quotes_messages() {
    let dir = TempDir::new("csv");
    let path = dir.file("calls.csv");
    for round in 0..2 {
        let recorder = recorder(RecorderOptions::default());
        let stream = recorder
            .stream(to_file(StreamFormat::Csv, &path, false))
            .unwrap();
        for event in events() {
            recorder.ingest(event.as_bytes());
        }
        assert_eq!(finish(&stream).written, 3, "round {round}");
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(&reader.headers().unwrap()[0], "Type");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 6, "one header, then every row of both runs");
    let message = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "FinalAwsExceptionMessage");
    assert_eq!(
        &rows[2][message.unwrap()],
        "Tabelle \"ä\" nicht gefunden,\nü 🚀"
    );
    assert!(!text.contains("FAKESESSIONTOKEN"));
}

#[test]
fn only_errors_writes_failures_but_summarizes_everything() {
    let dir = TempDir::new("errors");
    let path = dir.file("errors.txt");
    let recorder = recorder(RecorderOptions::default());
    let stream = recorder
        .stream(to_file(StreamFormat::Table, &path, true))
        .unwrap();
    for event in events() {
        recorder.ingest(event.as_bytes());
    }
    let report = finish(&stream);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "the header, the failed attempt, the failed call: {text}"
    );
    assert!(lines[0].starts_with("TIME"));
    assert!(lines[1].contains("attempt") && lines[1].contains("503"));
    assert!(lines[2].contains("ResourceNotFoundException: Tabelle"));
    assert!(
        lines[2].ends_with("ü 🚀"),
        "the message's line break is a space: {}",
        lines[2]
    );
    assert_eq!((report.written, report.summary.calls), (2, 2));
}

#[test]
fn what_a_full_buffer_refuses_is_counted_and_everything_else_written() {
    let dir = TempDir::new("flood");
    let path = dir.file("flood.jsonl");
    let recorder = recorder(RecorderOptions {
        max_buffered_records: Some(Whole(1000)),
        ..Default::default()
    });
    let stream = recorder
        .stream(to_file(StreamFormat::Jsonl, &path, false))
        .unwrap();
    let total = 200_000;
    for n in 0..total {
        let event = format!(
            r#"{{"Type":"ApiCall","Service":"S3","Api":"PutObject","Latency":{}}}"#,
            n % 97
        );
        recorder.ingest(event.as_bytes());
    }
    let report = finish(&stream);
    let dropped = recorder.stats().dropped;
    let lines = std::fs::read_to_string(&path).unwrap().lines().count() as u64;
    assert_eq!(lines, report.written);
    assert_eq!(
        report.written + dropped,
        total,
        "written {} dropped {dropped}",
        report.written
    );
    assert_eq!(report.summary.calls, report.written);
    assert!(report.written > 0);
}

#[test]
fn a_stream_without_output_only_summarizes() {
    let recorder = recorder(RecorderOptions::default());
    let stream = recorder
        .stream(StreamOptions {
            format: StreamFormat::Jsonl,
            target: None,
            only_errors: false,
        })
        .unwrap();
    let report = finish(&stream);
    assert_eq!((report.written, report.summary.calls), (0, 0));
    assert_eq!(report.summary.latency_ms.p50, None);
    // Finished, the recorder streams again.
    let again = recorder.stream(StreamOptions {
        format: StreamFormat::Csv,
        target: None,
        only_errors: false,
    });
    assert!(again.is_ok());
}

#[test]
fn refusals_carry_their_codes() {
    let dir = TempDir::new("refusals");
    let recorder = recorder(RecorderOptions::default());
    let unopenable = recorder
        .stream(to_file(StreamFormat::Jsonl, &dir.0, false))
        .err()
        .expect("a directory is not a file");
    assert!(matches!(unopenable, StreamError::Output { .. }));
    assert_eq!(unopenable.code(), ErrorCode::Output);
    assert!(
        unopenable
            .to_string()
            .contains(&dir.0.display().to_string())
    );

    let _first = recorder
        .stream(to_file(StreamFormat::Jsonl, &dir.file("a.jsonl"), false))
        .unwrap();
    let second = recorder
        .stream(to_file(StreamFormat::Jsonl, &dir.file("b.jsonl"), false))
        .err()
        .expect("one stream at a time");
    assert!(matches!(second, StreamError::AlreadyStreaming));
    assert!(
        !dir.file("b.jsonl").exists(),
        "a refused stream opens nothing"
    );

    let with_sink = recorder_with_file_sink(&dir.file("sink.jsonl"));
    let refused = with_sink
        .stream(to_file(StreamFormat::Jsonl, &dir.file("c.jsonl"), false))
        .err()
        .expect("a recorder with a sink does not stream");
    assert!(matches!(refused, StreamError::HasSink));
    assert_eq!(refused.code(), ErrorCode::Config);
}

fn recorder_with_file_sink(path: &Path) -> Recorder {
    recorder(RecorderOptions {
        sink: Some("file".into()),
        file: Some(path.display().to_string()),
        ..Default::default()
    })
}
