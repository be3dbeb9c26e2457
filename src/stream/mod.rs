//! Streaming: records go from the buffer to an output as they arrive, formatted natively (JSON
//! Lines, CSV or a table), optionally failures only, and are summarized on the way. The command
//! line's `listen` and `run` write through this, so no record becomes a JavaScript object.
//!
//! A stream has its own thread: formatting and writing never hold up the receiver, and it sleeps
//! until records arrive (no polling while idle).

mod output;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use self::output::Output;
pub use self::output::StreamTarget;
use crate::csm::{outcome, parse_event};
use crate::error::{Coded, ErrorCode};
use crate::format::{CsvRows, table};
use crate::intake::Intake;
use crate::record::Record;
use crate::summary::{Summary, SummaryReport};

/// After a wake-up, how long records are left to gather before the next write: under load, one
/// write carries thousands of records instead of a few.
const GATHER: Duration = Duration::from_millis(10);

/// How a stream writes each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// One JSON object per line, as the file sink writes it.
    Jsonl,
    /// The file sink's CSV columns, header first.
    Csv,
    /// A line per event for people.
    Table,
}

impl std::str::FromStr for StreamFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "jsonl" => Ok(StreamFormat::Jsonl),
            "csv" => Ok(StreamFormat::Csv),
            "table" => Ok(StreamFormat::Table),
            other => Err(format!(
                "unknown stream format {other:?} (expected jsonl, csv or table)"
            )),
        }
    }
}

/// What a stream writes, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOptions {
    pub format: StreamFormat,
    /// `None`: records are summarized, not written.
    pub target: Option<StreamTarget>,
    /// Write only failed calls and failed attempts ([`outcome::is_error`]); all are summarized.
    pub only_errors: bool,
}

/// Why a stream could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    #[error("cannot write records to {target}: {source}")]
    Output {
        target: StreamTarget,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the thread that writes records: {0}")]
    Thread(#[source] std::io::Error),
    #[error("this recorder is already streaming; it streams to one output at a time")]
    AlreadyStreaming,
    #[error(
        "a recorder with a sink delivers its records there; stream from one whose sink is none"
    )]
    HasSink,
}

impl Coded for StreamError {
    fn code(&self) -> ErrorCode {
        match self {
            StreamError::Output { .. } | StreamError::Thread(_) => ErrorCode::Output,
            StreamError::AlreadyStreaming | StreamError::HasSink => ErrorCode::Config,
        }
    }
}

/// What a finished stream did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamReport {
    pub summary: SummaryReport,
    /// Records written to the output.
    pub written: u64,
    /// Why the output stopped taking records, unless it was closed by its reader (a broken pipe).
    pub error: Option<String>,
}

/// A running stream; [`Stream::finish`] writes what is left and ends it.
pub struct Stream {
    stop: CancellationToken,
    output_gone: CancellationToken,
    worker: std::sync::Mutex<Option<std::thread::JoinHandle<StreamReport>>>,
}

impl Stream {
    pub(crate) fn start(
        intake: Arc<Intake>,
        runtime: Handle,
        options: StreamOptions,
        streaming: Arc<AtomicBool>,
    ) -> Result<Self, StreamError> {
        if streaming.swap(true, Ordering::AcqRel) {
            return Err(StreamError::AlreadyStreaming);
        }
        let output = match &options.target {
            None => None,
            Some(target) => match Output::open(target) {
                Ok(output) => Some(output),
                Err(source) => {
                    streaming.store(false, Ordering::Release);
                    return Err(StreamError::Output {
                        target: target.clone(),
                        source,
                    });
                }
            },
        };
        let stop = CancellationToken::new();
        let output_gone = CancellationToken::new();
        let mut writer = Writer::new(options, output, output_gone.clone());
        let worker_stop = stop.clone();
        let worker_streaming = streaming.clone();
        let spawned = std::thread::Builder::new()
            .name("api-call-recorder-stream".into())
            .spawn(move || {
                let report = writer.run(&intake, &runtime, &worker_stop);
                worker_streaming.store(false, Ordering::Release);
                report
            });
        let worker = spawned.map_err(|source| {
            streaming.store(false, Ordering::Release);
            StreamError::Thread(source)
        })?;
        Ok(Stream {
            stop,
            output_gone,
            worker: std::sync::Mutex::new(Some(worker)),
        })
    }

    /// Resolves when the output stops taking records (its reader went away, or a write failed),
    /// or when the stream is finished.
    pub async fn closed(&self) {
        tokio::select! {
            () = self.output_gone.cancelled() => {}
            () = self.stop.cancelled() => {}
        }
    }

    /// Takes in what is buffered now, writes it, and ends the stream. Stop the receiver first so
    /// nothing arrives after. Finishing again gives `None`.
    pub async fn finish(&self) -> Option<StreamReport> {
        self.stop.cancel();
        let worker = self
            .worker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()?;
        tokio::task::spawn_blocking(move || worker.join().ok())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // The worker takes what is left and ends by itself.
        self.stop.cancel();
    }
}

/// The worker's state: the output, the encoders and the summary.
struct Writer {
    options: StreamOptions,
    output: Option<Output>,
    output_gone: CancellationToken,
    bytes: Vec<u8>,
    summary: Summary,
    /// Records formatted into `bytes`, counted as written once they are out.
    pending: u64,
    written: u64,
    error: Option<String>,
}

impl Writer {
    fn new(options: StreamOptions, output: Option<Output>, output_gone: CancellationToken) -> Self {
        let mut writer = Writer {
            options,
            output,
            output_gone,
            bytes: Vec::new(),
            summary: Summary::default(),
            pending: 0,
            written: 0,
            error: None,
        };
        if writer
            .output
            .as_ref()
            .is_some_and(|output| output.was_empty)
        {
            match writer.options.format {
                StreamFormat::Csv => {
                    let mut rows = CsvRows::new(&mut writer.bytes);
                    let _ = rows.header().and_then(|()| rows.finish());
                }
                StreamFormat::Table => writer.bytes.extend_from_slice(table::header().as_bytes()),
                StreamFormat::Jsonl => {}
            }
            writer.emit();
        }
        writer
    }

    fn run(&mut self, intake: &Intake, runtime: &Handle, stop: &CancellationToken) -> StreamReport {
        let arrived = intake.buffer.arrived();
        loop {
            // Whether the stop came before this take: if so, this take is the last one needed.
            let stopping = stop.is_cancelled();
            self.write(&intake.buffer.take_all());
            if stopping {
                break;
            }
            runtime.block_on(async {
                tokio::select! {
                    () = arrived.notified() => {}
                    () = stop.cancelled() => {}
                }
            });
            runtime.block_on(async {
                tokio::select! {
                    () = tokio::time::sleep(GATHER) => {}
                    () = stop.cancelled() => {}
                }
            });
        }
        StreamReport {
            summary: self.summary.report(),
            written: self.written,
            error: self.error.take(),
        }
    }

    fn write(&mut self, records: &[Record]) {
        let mut csv = (self.options.format == StreamFormat::Csv).then(|| CsvRows::new(Vec::new()));
        for record in records {
            // A buffered record is always a parsed event's JSON; one that is not is not written.
            let Ok(event) = parse_event(record.event_json().as_bytes(), false) else {
                continue;
            };
            self.summary.add(&event);
            if self.output.is_none() || (self.options.only_errors && !outcome::is_error(&event)) {
                continue;
            }
            match self.options.format {
                StreamFormat::Jsonl => {
                    record.write_json(&mut self.bytes);
                    self.bytes.push(b'\n');
                }
                StreamFormat::Csv => {
                    let rows = csv.as_mut().expect("made for the CSV format");
                    if rows.row(record, &event).is_err() {
                        continue;
                    }
                }
                StreamFormat::Table => table::write_row(record, &event, &mut self.bytes),
            }
            self.pending += 1;
        }
        if let Some(Ok(rows)) = csv.map(CsvRows::into_inner) {
            self.bytes.extend_from_slice(&rows);
        }
        self.emit();
    }

    /// Hands what is formatted to the output; once the output is gone, nothing more is written.
    fn emit(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        let Some(output) = self.output.as_mut() else {
            self.bytes.clear();
            return;
        };
        if self.bytes.is_empty() {
            return;
        }
        match output.write_all(&self.bytes) {
            Ok(()) => self.written += pending,
            Err(error) => self.output_failed(error),
        }
        self.bytes.clear();
    }

    fn output_failed(&mut self, error: std::io::Error) {
        {
            if error.kind() != std::io::ErrorKind::BrokenPipe {
                let target = self
                    .options
                    .target
                    .as_ref()
                    .expect("an output has a target");
                self.error = Some(format!("cannot write records to {target}: {error}"));
            }
            self.output = None;
            self.output_gone.cancel();
        }
    }
}
