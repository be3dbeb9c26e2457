//! JS-facing result objects, with JS numbers. Doc comments here become the JSDoc in binding.d.ts;
//! the options object is the core's own [`crate::config::RecorderOptions`].

use napi_derive::napi;

use crate::{attribution, recorder, stats};

/// The invocation records are attributed to.
#[napi(object)]
#[derive(Default)]
pub struct InvocationInfo {
    pub function_name: Option<String>,
    pub function_version: Option<String>,
    pub aws_request_id: Option<String>,
    pub cold_start: Option<bool>,
}

impl From<InvocationInfo> for attribution::InvocationInfo {
    fn from(i: InvocationInfo) -> Self {
        attribution::InvocationInfo {
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
    /// Requests made to the sink, retries included.
    pub requests: f64,
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
            requests: r.requests as f64,
            duration_ms: r.duration_ms as f64,
            error: r.error,
        }
    }
}

/// Counters since the recorder was created.
#[napi(object)]
pub struct RecorderStats {
    /// Datagrams read from the socket, and events made in-process.
    pub received: f64,
    /// Datagrams accepted as CSM events.
    pub parsed: f64,
    /// Datagrams that were not CSM events.
    pub malformed: f64,
    /// Datagrams over the 8 KiB CSM limit.
    pub oversized: f64,
    /// Events refused because the buffer was full.
    pub dropped: f64,
    /// Socket errors while receiving, other than "nothing to read".
    pub receive_errors: f64,
    /// Records delivered to the sink.
    pub delivered: f64,
    /// Records the sink could not deliver.
    pub failed: f64,
    /// Records that needed more than one attempt.
    pub retried: f64,
    /// Requests made to the sink, retries included.
    pub requests: f64,
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
            receive_errors: s.receive_errors as f64,
            delivered: s.delivered as f64,
            failed: s.failed as f64,
            retried: s.retried as f64,
            requests: s.requests as f64,
            last_flush_ms: s.last_flush_ms as f64,
        }
    }
}
