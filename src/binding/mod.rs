//! The Node.js binding: a thin napi layer over [`crate::Recorder`]. No domain logic lives here.

mod error;
mod extension;
mod options;

use std::sync::Arc;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::*;
use napi_derive::napi;

use self::error::{ErrorCode, to_napi};
use self::options::{FlushReport, InvocationInfo, RecorderOptions, RecorderStats};
use crate::config::{ConfigError, RecorderConfig};
use crate::recorder::{FlushOptions, Recorder};

/// The native recorder. The hand-written `Recorder` and `ApiCallRecorder` in index.js wrap it.
#[napi(js_name = "NativeRecorder")]
pub struct NativeRecorder {
    inner: Arc<Recorder>,
}

#[napi]
impl NativeRecorder {
    /// Resolves options against the environment. Throws `ERR_RECORDER_CONFIG` for unusable values.
    #[napi(constructor)]
    pub fn new(options: Option<RecorderOptions>) -> Result<Self, ErrorCode> {
        let options = options.unwrap_or_default().try_into();
        let config = options
            .and_then(RecorderConfig::from_options)
            .map_err(|e: ConfigError| to_napi(e.into()))?;
        let inner = Recorder::new(config).map_err(to_napi)?;
        Ok(NativeRecorder {
            inner: Arc::new(inner),
        })
    }

    /// Binds the UDP port and starts receiving; returns the bound `host:port`.
    /// Throws `ERR_RECORDER_PORT_IN_USE` or `ERR_RECORDER_BIND`.
    #[napi]
    pub fn start(&self) -> Result<String, ErrorCode> {
        self.inner
            .start()
            .map(|addr| addr.to_string())
            .map_err(to_napi)
    }

    /// Takes in what is queued, then closes the socket.
    #[napi]
    pub async fn stop(&self) -> Result<()> {
        self.on_runtime(|inner| async move { inner.stop().await })
            .await
    }

    /// Takes in one CSM event produced in this process (the v3 SDK plugin), exactly as if it had
    /// arrived as a datagram: parsed, sanitized, counted and buffered.
    #[napi]
    pub fn ingest(&self, event_json: String) {
        self.inner.ingest(event_json.as_bytes());
    }

    /// Attributes records received from now on to this invocation; returns its id.
    #[napi]
    pub fn begin_invocation(&self, info: Option<InvocationInfo>) -> u32 {
        // Ids count up from 1 per recorder; u32 is plenty for one process.
        self.inner.begin_invocation(info.unwrap_or_default().into()) as u32
    }

    /// Drains `drainMs`, ends the invocation and delivers the buffer. `timeoutMs` caps the whole call
    /// (drain included); the configured `flushTimeoutMs` bounds the delivery as well.
    #[napi]
    pub async fn finish_invocation(
        &self,
        id: u32,
        drain_ms: Option<u32>,
        timeout_ms: Option<u32>,
    ) -> Result<FlushReport> {
        let options = self.flush_options(drain_ms, timeout_ms);
        let report = self
            .on_runtime(
                |inner| async move { inner.finish_invocation(u64::from(id), options).await },
            )
            .await?;
        Ok(report.into())
    }

    /// Drains `drainMs`, then delivers the buffer. `timeoutMs` caps the whole call (drain included);
    /// the configured `flushTimeoutMs` bounds the delivery as well.
    #[napi]
    pub async fn flush(
        &self,
        drain_ms: Option<u32>,
        timeout_ms: Option<u32>,
    ) -> Result<FlushReport> {
        let options = self.flush_options(drain_ms, timeout_ms);
        let report = self
            .on_runtime(|inner| async move { inner.flush(options).await })
            .await?;
        Ok(report.into())
    }

    #[napi]
    pub fn stats(&self) -> RecorderStats {
        self.inner.stats().into()
    }

    /// Buffered records as a JSON array (parsed on the JS side in one call).
    #[napi]
    pub fn records_json(&self) -> String {
        join_json(self.inner.records_json())
    }

    /// Removes the buffered records and returns them as a JSON array.
    #[napi]
    pub fn take_records_json(&self) -> String {
        join_json(self.inner.take_records_json())
    }

    /// The `host:port` the recorder binds (port 0: any free port), known before `start()`.
    #[napi(getter)]
    pub fn bind_address(&self) -> String {
        self.inner.config().bind_addr.to_string()
    }

    /// The bound `host:port` while running.
    #[napi(getter)]
    pub fn address(&self) -> Option<String> {
        self.inner.local_addr().map(|a| a.to_string())
    }

    /// The sink records are delivered to: `firehose`, `file`, `stdout` or `none`.
    #[napi(getter)]
    pub fn sink(&self) -> String {
        self.inner.config().sink.kind().to_owned()
    }

    /// The configured drain, in milliseconds.
    #[napi(getter)]
    pub fn drain_ms(&self) -> u32 {
        self.inner.config().drain.as_millis() as u32
    }

    /// Configuration warnings (the recorder works, but the caller should know).
    #[napi(getter)]
    pub fn warnings(&self) -> Vec<String> {
        self.inner.config().warnings.clone()
    }
}

impl NativeRecorder {
    /// Runs `work` on the recorder's own runtime (where its socket and timers live) and awaits it
    /// from napi's.
    async fn on_runtime<F, T>(&self, work: impl FnOnce(Arc<Recorder>) -> F) -> Result<T>
    where
        F: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let inner = self.inner.clone();
        let runtime = inner.runtime().clone();
        runtime.spawn(work(inner)).await.map_err(join_error)
    }

    /// The drain, then delivery within the configured flush timeout; `timeout_ms`, when given, caps
    /// the whole of it (drain included), as the Lambda deadline does.
    fn flush_options(&self, drain_ms: Option<u32>, timeout_ms: Option<u32>) -> FlushOptions {
        let config = self.inner.config();
        let now = Instant::now();
        let mut drain = drain_ms.map_or(config.drain, |ms| Duration::from_millis(ms.into()));
        let mut deadline = now + drain + config.flush_timeout;
        if let Some(cap) = timeout_ms.map(|ms| Duration::from_millis(ms.into())) {
            drain = drain.min(cap);
            deadline = deadline.min(now + cap);
        }
        FlushOptions { drain, deadline }
    }
}

/// Formats records (a JSON array of record objects, as `recordsJson` returns) as CSV rows, with the
/// header row first when `header` is set. The columns are the file sink's.
#[napi]
#[cfg_attr(test, allow(dead_code))]
pub fn format_csv(records_json: String, header: bool) -> Result<String> {
    let records: Vec<&serde_json::value::RawValue> =
        serde_json::from_str(&records_json).map_err(|e| {
            napi::Error::new(
                Status::InvalidArg,
                format!("records must be a JSON array: {e}"),
            )
        })?;
    let mut out = Vec::new();
    crate::format::CsvWriter::new(header)
        .write_json(records.iter().map(|r| r.get()), &mut out)
        .map_err(|e| napi::Error::new(Status::InvalidArg, e.to_string()))?;
    String::from_utf8(out).map_err(|e| napi::Error::from_reason(e.to_string()))
}

/// The CSV columns, in order.
#[napi]
#[cfg_attr(test, allow(dead_code))]
pub fn csv_columns() -> Vec<&'static str> {
    crate::format::CSV_COLUMNS.to_vec()
}

fn join_json(records: Vec<String>) -> String {
    format!("[{}]", records.join(","))
}

fn join_error(error: tokio::task::JoinError) -> napi::Error {
    napi::Error::from_reason(format!("recorder task failed: {error}"))
}
