//! The Node.js binding: a thin napi layer over [`crate::Recorder`]. No domain logic lives here.
//!
//! One tokio runtime serves the addon: the recorder's own (one worker, named threads), handed to napi
//! at module load, so async methods run where the receiver and the sinks live, without a hop.
//! Synchronous methods catch panics, so a bug becomes a JS error instead of aborting the process.

mod error;
mod extension;
mod options;
mod stream;

use std::sync::Arc;
use std::time::Instant;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use self::error::to_napi;
use self::options::{
    FlushReport, InvocationInfo, ProxyEventToName, ProxyStart, ProxyStarted, RecorderStats, millis,
};
use crate::config::{RecorderConfig, UnrecognisedFlag, Whole};
use crate::error::{ErrorCode, RecorderError};
use crate::record::Record;
use crate::recorder::{FlushOptions, Recorder};
use crate::stats::RecordingPath;

#[napi_derive::module_init]
fn init() {
    // If the runtime cannot be built, napi builds its default one and the recorder uses that.
    if let Ok(runtime) = crate::runtime::build() {
        napi::bindgen_prelude::create_custom_tokio_runtime(runtime);
    }
}

/// The native recorder. The hand-written `Recorder` and `ApiCallRecorder` in index.js wrap it.
#[napi(js_name = "NativeRecorder")]
pub struct NativeRecorder {
    inner: Arc<Recorder>,
    /// For a recorder shared with an earlier caller whose settings differ: the earlier's settings.
    shared_with: Option<String>,
}

/// A recorder every worker thread of the process records into (the addon is loaded once per
/// process, so this is shared; each thread's JS is not).
struct SharedRecorder {
    recorder: Arc<Recorder>,
    settings: String,
    /// Differing settings already told about, so each difference is told once per process.
    reported: Vec<String>,
}

/// The process's shared recorders, one per bound address.
static SHARED: std::sync::Mutex<Vec<SharedRecorder>> = std::sync::Mutex::new(Vec::new());

#[napi]
impl NativeRecorder {
    /// Resolves options against the environment. Throws `ERR_RECORDER_CONFIG` for unusable values;
    /// with `flagsFallBack`, a boolean variable that holds no boolean takes its default and warns.
    #[napi(
        constructor,
        catch_unwind,
        ts_args_type = "options?: RecorderOptions | undefined | null, flagsFallBack?: boolean | undefined | null"
    )]
    pub fn new(
        options: Option<Unknown<'_>>,
        flags_fall_back: Option<bool>,
    ) -> Result<Self, ErrorCode> {
        let options = options::recorder_options(options)?;
        let unrecognised_flag = match flags_fall_back {
            Some(true) => UnrecognisedFlag::FallsBack,
            _ => UnrecognisedFlag::Fails,
        };
        let config = RecorderConfig::from_options(options, unrecognised_flag)
            .map_err(|e| to_napi(RecorderError::from(e)))?;
        let runtime = within_runtime_if_available(tokio::runtime::Handle::current);
        Ok(NativeRecorder {
            inner: Arc::new(Recorder::on_runtime(config, runtime)),
            shared_with: None,
        })
    }

    /// The process's recorder for the address these options bind, made from them by the first
    /// caller of any worker thread; a fixed port only (port 0 makes a recorder of its own).
    /// `settings` are the caller's options as comparable text: when they differ from the first
    /// caller's, `sharedWith` gives those, once per process for each difference.
    #[napi(
        factory,
        catch_unwind,
        ts_args_type = "options: RecorderOptions | undefined | null, flagsFallBack: boolean | undefined | null, settings: string"
    )]
    pub fn shared(
        options: Option<Unknown<'_>>,
        flags_fall_back: Option<bool>,
        settings: String,
    ) -> Result<Self, ErrorCode> {
        let made = Self::new(options, flags_fall_back)?;
        let bind_addr = made.inner.config().bind_addr;
        if bind_addr.port() == 0 {
            return Ok(made);
        }
        let mut shared = SHARED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(first) = shared
            .iter_mut()
            .find(|entry| entry.recorder.config().bind_addr == bind_addr)
        {
            let differs = first.settings != settings && !first.reported.contains(&settings);
            if differs {
                first.reported.push(settings);
            }
            return Ok(NativeRecorder {
                inner: first.recorder.clone(),
                shared_with: differs.then(|| first.settings.clone()),
            });
        }
        shared.push(SharedRecorder {
            recorder: made.inner.clone(),
            settings,
            reported: Vec::new(),
        });
        Ok(made)
    }

    /// For a shared recorder made by an earlier caller with other settings: those settings.
    #[napi(getter)]
    pub fn shared_with(&self) -> Option<String> {
        self.shared_with.clone()
    }

    /// Binds the UDP port and starts receiving; returns the bound `host:port`.
    /// Throws `ERR_RECORDER_PORT_IN_USE` or `ERR_RECORDER_BIND`.
    #[napi(catch_unwind)]
    pub fn start(&self) -> Result<String, ErrorCode> {
        self.inner
            .start()
            .map(|addr| addr.to_string())
            .map_err(to_napi)
    }

    /// Takes in what is queued, then closes the socket.
    #[napi]
    pub async fn stop(&self) -> Result<()> {
        self.inner.stop().await;
        Ok(())
    }

    /// Starts the recording proxy on 127.0.0.1 (a free port) with a CA made for this run; its
    /// requests to AWS endpoints are recorded like datagrams (`stats().paths.proxy`). Returns where
    /// it listens, the CA files and the variables a program needs to use it. Throws
    /// `ERR_RECORDER_PROXY` (it cannot start or is running) or `ERR_RECORDER_CONFIG` (a bad
    /// `upstream`).
    #[napi(catch_unwind)]
    pub fn start_proxy(&self, options: Option<ProxyStart>) -> Result<ProxyStarted, ErrorCode> {
        let options = options.unwrap_or_default().into();
        self.inner
            .start_proxy(options)
            .map(ProxyStarted::from)
            .map_err(to_napi)
    }

    /// Stops the proxy: connections close, calls still waiting for a retry are recorded, and the
    /// CA directory is removed.
    #[napi]
    pub async fn stop_proxy(&self) -> Result<()> {
        self.inner.stop_proxy().await;
        Ok(())
    }

    /// The proxy's events waiting to be named (`holdForNaming`), oldest first, each with its
    /// request; ingest each with path `proxy` once named.
    #[napi(catch_unwind)]
    pub fn take_proxy_events(&self) -> Result<Vec<ProxyEventToName>> {
        Ok(self
            .inner
            .take_proxy_events()
            .into_iter()
            .map(ProxyEventToName::from)
            .collect())
    }

    /// The proxy's warnings since the last call (a client that refused its CA), one line each.
    #[napi(catch_unwind)]
    pub fn take_proxy_warnings(&self) -> Result<Vec<String>> {
        Ok(self.inner.take_proxy_warnings())
    }

    /// Takes in one CSM event, exactly as if it had arrived as a datagram: parsed, sanitized,
    /// counted and buffered. `path` says how it was made: `plugin` (the v3 SDK plugin), `http`
    /// (Node's HTTP client), `sdk-v2` (aws-sdk v2's own events), `proxy` (a named proxy event) or
    /// `csm` (the default), and is counted in `stats().paths`. `invocation`, an id from
    /// `beginInvocation`, is the invocation whose
    /// code made the call; without it (or once it has ended) the event is attributed by time.
    #[napi(
        catch_unwind,
        ts_args_type = "eventJson: string, path?: 'csm' | 'plugin' | 'http' | 'sdk-v2' | 'proxy' | undefined | null, invocation?: number | undefined | null"
    )]
    pub fn ingest(
        &self,
        event_json: String,
        path: Option<String>,
        invocation: Option<Whole<u32>>,
    ) -> Result<()> {
        let path = match path.as_deref() {
            None => RecordingPath::Csm,
            Some(name) => RecordingPath::from_name(name).ok_or_else(|| {
                napi::Error::from_reason(format!(
                    "unknown recording path {name:?} (expected csm, plugin, http, sdk-v2 or proxy)"
                ))
            })?,
        };
        let invocation = invocation.map(|Whole(id)| u64::from(id));
        self.inner
            .ingest_from(path, event_json.as_bytes(), invocation);
        Ok(())
    }

    /// Attributes records received from now on to this invocation; returns its id.
    #[napi(catch_unwind)]
    pub fn begin_invocation(&self, info: Option<InvocationInfo>) -> Result<u32> {
        // Ids count up from 1 per recorder; u32 is plenty for one process.
        Ok(self.inner.begin_invocation(info.unwrap_or_default().into()) as u32)
    }

    /// Drains `drainMs`, ends the invocation and delivers the buffer. `timeoutMs` caps the whole call
    /// (drain included); the configured `flushTimeoutMs` bounds the delivery as well.
    #[napi(
        ts_args_type = "id: number, drainMs?: number | undefined | null, timeoutMs?: number | undefined | null"
    )]
    pub async fn finish_invocation(
        &self,
        id: Whole<u32>,
        drain_ms: Option<Whole<u32>>,
        timeout_ms: Option<Whole<u32>>,
    ) -> Result<FlushReport> {
        let options = self.flush_options(drain_ms, timeout_ms);
        let report = self.inner.finish_invocation(u64::from(id.0), options).await;
        Ok(report.into())
    }

    /// Drains `drainMs`, then delivers the buffer. `timeoutMs` caps the whole call (drain included);
    /// the configured `flushTimeoutMs` bounds the delivery as well.
    #[napi(
        ts_args_type = "drainMs?: number | undefined | null, timeoutMs?: number | undefined | null"
    )]
    pub async fn flush(
        &self,
        drain_ms: Option<Whole<u32>>,
        timeout_ms: Option<Whole<u32>>,
    ) -> Result<FlushReport> {
        let options = self.flush_options(drain_ms, timeout_ms);
        Ok(self.inner.flush(options).await.into())
    }

    #[napi(catch_unwind)]
    pub fn stats(&self) -> Result<RecorderStats> {
        Ok(self.inner.stats().into())
    }

    /// Buffered records as a JSON array (parsed on the JS side in one call).
    #[napi(catch_unwind)]
    pub fn records_json(&self) -> Result<String> {
        Ok(join_json(self.inner.records_json()))
    }

    /// Removes the buffered records and returns them as a JSON array, oldest first.
    #[napi(catch_unwind)]
    pub fn take_records_json(&self) -> Result<String> {
        let records = self.inner.take_records();
        Ok(join_json(records.iter().map(Record::to_json).collect()))
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

#[cfg(feature = "panic-probe")]
#[napi]
impl NativeRecorder {
    /// Panics while holding the record buffer's lock. Only in builds with the `panic-probe` feature.
    #[napi(catch_unwind)]
    pub fn panic_probe(&self) -> Result<()> {
        self.inner.panic_probe()
    }
}

impl NativeRecorder {
    /// The drain, then delivery within the configured flush timeout; `timeout_ms`, when given, caps
    /// the whole of it (drain included), as the Lambda deadline does.
    fn flush_options(
        &self,
        drain_ms: Option<Whole<u32>>,
        timeout_ms: Option<Whole<u32>>,
    ) -> FlushOptions {
        let config = self.inner.config();
        let now = Instant::now();
        let mut drain = drain_ms.map_or(config.drain, millis);
        let mut deadline = now + drain + config.flush_timeout;
        if let Some(cap) = timeout_ms.map(millis) {
            drain = drain.min(cap);
            deadline = deadline.min(now + cap);
        }
        FlushOptions { drain, deadline }
    }
}

/// A CSV column: its header, the record field behind it, and whether that field holds numbers.
#[napi(object)]
pub struct CsvColumn {
    pub name: String,
    pub field: String,
    pub numeric: bool,
}

/// The CSV columns of the file sink and the command line, in order.
#[napi(catch_unwind)]
#[cfg_attr(test, allow(dead_code))]
pub fn csv_columns() -> Result<Vec<CsvColumn>> {
    Ok(crate::format::CSV_COLUMNS
        .iter()
        .map(|name| CsvColumn {
            name: (*name).to_owned(),
            field: crate::format::record_field(name).to_owned(),
            numeric: crate::format::is_numeric_column(name),
        })
        .collect())
}

/// The CSV header row, with its line ending.
#[napi(catch_unwind)]
#[cfg_attr(test, allow(dead_code))]
pub fn csv_header() -> Result<String> {
    let mut out = Vec::new();
    crate::format::CsvWriter::new(true)
        .write(&[], &mut out)
        .map_err(|e| napi::Error::from_reason(e.to_string()))?;
    String::from_utf8(out).map_err(|e| napi::Error::from_reason(e.to_string()))
}

fn join_json(records: Vec<String>) -> String {
    format!("[{}]", records.join(","))
}
