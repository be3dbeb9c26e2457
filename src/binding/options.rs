//! JS-facing option and result objects. Doc comments here become the JSDoc in binding.d.ts.

use napi_derive::napi;

use crate::{config, lambda, recorder, stats};

/// Recorder options. Each falls back to its environment variable, then to its default.
#[napi(object)]
#[derive(Default)]
pub struct RecorderOptions {
    /// Address to listen on. Env `AWS_CSM_HOST`. Default `127.0.0.1`.
    pub host: Option<String>,
    /// UDP port to listen on; 0 picks a free port. Env `AWS_CSM_PORT`. Default 31000.
    pub port: Option<f64>,
    /// `firehose`, `file`, `stdout` or `none`. Env `API_CALL_RECORDER_SINK`. Default: firehose when a
    /// delivery stream is set, else file when a file is set, else stdout.
    pub sink: Option<String>,
    /// File to append records to. Env `API_CALL_RECORDER_FILE`.
    pub file: Option<String>,
    /// `jsonl` or `csv`. Env `API_CALL_RECORDER_FORMAT`. Default: csv for a `.csv` file, else jsonl.
    pub format: Option<String>,
    /// Firehose delivery stream. Env `API_CALL_RECORDER_DELIVERY_STREAM_NAME`.
    pub delivery_stream_name: Option<String>,
    /// Leave the access key id out of records. Env `API_CALL_RECORDER_DROP_ACCESS_KEY`. Default false.
    pub drop_access_key: Option<bool>,
    /// Buffer cap in records. Env `API_CALL_RECORDER_MAX_BUFFERED_RECORDS`. Default 100000.
    pub max_buffered_records: Option<u32>,
    /// Buffer cap in bytes. Env `API_CALL_RECORDER_MAX_BUFFERED_BYTES`. Default 67108864 (64 MiB).
    pub max_buffered_bytes: Option<u32>,
    /// Milliseconds to keep receiving after the handler returns. Env `API_CALL_RECORDER_DRAIN_MS`. Default 25.
    pub drain_ms: Option<u32>,
    /// Upper bound on one flush, in milliseconds. Env `API_CALL_RECORDER_FLUSH_TIMEOUT_MS`. Default 10000.
    pub flush_timeout_ms: Option<u32>,
    /// Mark records received before the first invocation `phase: "init"`. Default: true inside
    /// Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) and under `ApiCallRecorder`, else false (no phase).
    pub init_phase: Option<bool>,
}

impl TryFrom<RecorderOptions> for config::RecorderOptions {
    type Error = config::ConfigError;

    fn try_from(o: RecorderOptions) -> Result<Self, Self::Error> {
        Ok(config::RecorderOptions {
            host: o.host,
            port: o.port.map(config::port_from_number).transpose()?,
            sink: o.sink,
            file: o.file,
            format: o.format,
            delivery_stream_name: o.delivery_stream_name,
            drop_access_key: o.drop_access_key,
            max_buffered_records: o.max_buffered_records,
            max_buffered_bytes: o.max_buffered_bytes,
            drain_ms: o.drain_ms,
            flush_timeout_ms: o.flush_timeout_ms,
            init_phase: o.init_phase,
        })
    }
}

/// The invocation records are attributed to.
#[napi(object)]
#[derive(Default)]
pub struct InvocationInfo {
    pub function_name: Option<String>,
    pub function_version: Option<String>,
    pub aws_request_id: Option<String>,
    pub cold_start: Option<bool>,
}

impl From<InvocationInfo> for lambda::InvocationInfo {
    fn from(i: InvocationInfo) -> Self {
        lambda::InvocationInfo {
            function_name: i.function_name,
            function_version: i.function_version,
            aws_request_id: i.aws_request_id,
            cold_start: i.cold_start,
        }
    }
}

/// What one flush did.
#[napi(object)]
pub struct FlushReport {
    /// Records taken from the buffer.
    pub records: f64,
    /// Records the sink accepted.
    pub delivered: f64,
    /// Records that could not be delivered.
    pub failed: f64,
    /// Records that needed more than one attempt.
    pub retried: f64,
    /// Requests made to the sink.
    pub batches: f64,
    /// Milliseconds the flush took, drain included.
    pub duration_ms: f64,
    /// Why records failed, when some did.
    pub error: Option<String>,
}

impl From<recorder::FlushReport> for FlushReport {
    fn from(r: recorder::FlushReport) -> Self {
        FlushReport {
            records: r.records as f64,
            delivered: r.delivered as f64,
            failed: r.failed as f64,
            retried: r.retried as f64,
            batches: r.batches as f64,
            duration_ms: r.duration_ms as f64,
            error: r.error,
        }
    }
}

/// Counters since the recorder was created.
#[napi(object)]
pub struct RecorderStats {
    /// Datagrams read from the socket.
    pub received: f64,
    /// Datagrams accepted as CSM events.
    pub parsed: f64,
    /// Datagrams that were not CSM events.
    pub malformed: f64,
    /// Datagrams over the 8 KiB CSM limit.
    pub oversized: f64,
    /// Events refused because the buffer was full.
    pub dropped: f64,
    /// Records delivered to the sink.
    pub flushed: f64,
    /// Records the sink could not deliver.
    pub failed: f64,
    /// Records that needed more than one attempt.
    pub retried: f64,
    /// Requests made to the sink.
    pub batches: f64,
    /// Duration of the last flush, in milliseconds.
    pub last_flush_ms: f64,
}

impl From<stats::StatsSnapshot> for RecorderStats {
    fn from(s: stats::StatsSnapshot) -> Self {
        RecorderStats {
            received: s.received as f64,
            parsed: s.parsed as f64,
            malformed: s.malformed as f64,
            oversized: s.oversized as f64,
            dropped: s.dropped as f64,
            flushed: s.flushed as f64,
            failed: s.failed as f64,
            retried: s.retried as f64,
            batches: s.batches as f64,
            last_flush_ms: s.last_flush_ms as f64,
        }
    }
}
