//! The recorder: receiver, buffer, context tracking and a sink, wired together.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use crate::attribution::{InvocationInfo, InvocationTracker};
use crate::buffer::RecordBuffer;
use crate::config::{RecorderConfig, SinkConfig};
use crate::error::RecorderError;
use crate::intake::{Intake, epoch_millis};
use crate::proxy::record::ProxyEvent;
use crate::proxy::{NamingQueue, Proxy, ProxyError, ProxyOptions};
use crate::receiver::Receiver;
use crate::record::Record;
use crate::sink::{FileSink, FileTarget, Sink};
use crate::stats::{RecordingPath, Stats, StatsSnapshot};
use crate::stream::{Stream, StreamError, StreamOptions};

/// How one flush should behave.
#[derive(Debug, Clone, Copy)]
pub struct FlushOptions {
    /// Keep receiving this long before taking the buffer, for datagrams still on their way.
    pub drain: Duration,
    /// Give up delivering at this instant; what is left is counted as failed.
    pub deadline: Instant,
}

/// Gives what a flush counts (names and descriptions) to the macro `$then`: the report here and the
/// binding's JS object are both made from this one list.
macro_rules! with_flush_report_counts {
    ($then:ident) => {
        $then! {
            records: "Records taken from the buffer.",
            delivered: "Records the sink accepted.",
            failed: "Records that could not be delivered.",
            retried: "Records that needed more than one attempt.",
            requests: "Requests made to the sink, retries included.",
            duration_ms: "Milliseconds the flush took, drain included.",
        }
    };
}
#[cfg(feature = "napi")]
pub(crate) use with_flush_report_counts;

macro_rules! define_flush_report {
    ($( $field:ident: $doc:literal ),* $(,)?) => {
        /// What one flush did.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct FlushReport {
            $( #[doc = $doc] pub $field: u64, )*
            /// Why records failed, when some did. Never contains record contents or credentials.
            pub error: Option<String>,
        }
    };
}

with_flush_report_counts!(define_flush_report);

/// Records the CSM traffic sent to one address.
pub struct Recorder {
    config: RecorderConfig,
    intake: Arc<Intake>,
    sink: Option<Arc<dyn Sink>>,
    runtime: Handle,
    receiver: Mutex<Option<Receiver>>,
    /// Set while a [`Stream`] takes the records.
    streaming: Arc<AtomicBool>,
    proxy: Mutex<Option<Proxy>>,
    /// The proxy's events waiting to be named; outlives the proxy, so that what it recorded last
    /// can still be taken after it stopped.
    proxy_naming: Arc<NamingQueue>,
}

/// Where a started proxy listens and what a program needs to use it.
#[derive(Debug, Clone)]
pub struct ProxyInfo {
    pub address: std::net::SocketAddr,
    pub ca_dir: std::path::PathBuf,
    pub ca_cert_path: std::path::PathBuf,
    pub ca_bundle_path: std::path::PathBuf,
    pub env: Vec<(&'static str, String)>,
}

impl ProxyInfo {
    fn of(proxy: &Proxy) -> Self {
        ProxyInfo {
            address: proxy.address(),
            ca_dir: proxy.ca_dir().to_owned(),
            ca_cert_path: proxy.ca_cert_path().to_owned(),
            ca_bundle_path: proxy.ca_bundle_path().to_owned(),
            env: proxy.env().to_vec(),
        }
    }
}

impl Recorder {
    /// Builds a recorder on the crate's own runtime ([`crate::runtime`], started on first use);
    /// nothing is bound until [`Recorder::start`].
    pub fn new(config: RecorderConfig) -> std::io::Result<Self> {
        Ok(Self::on_runtime(config, crate::runtime::handle()?))
    }

    /// Builds a recorder whose receiver and sinks run on `runtime` (in Node.js, napi's runtime).
    pub fn on_runtime(config: RecorderConfig, runtime: Handle) -> Self {
        let sink: Option<Arc<dyn Sink>> = match &config.sink {
            SinkConfig::None => None,
            SinkConfig::Stdout(format) => {
                Some(Arc::new(FileSink::new(FileTarget::Stdout, *format)))
            }
            SinkConfig::File(path, format) => Some(Arc::new(FileSink::new(
                FileTarget::Path(path.clone()),
                *format,
            ))),
            SinkConfig::Firehose {
                delivery_stream_name,
            } => Some(Arc::new(crate::sink::FirehoseSink::new(
                delivery_stream_name.clone(),
            ))),
        };
        let intake = Arc::new(Intake {
            stats: Stats::default(),
            buffer: RecordBuffer::new(config.max_buffered_records, config.max_buffered_bytes),
            invocations: InvocationTracker::new(config.init_info.clone(), config.init_phase),
            drop_access_key: config.drop_access_key,
            proxied: Default::default(),
        });
        Recorder {
            config,
            intake,
            sink,
            runtime,
            receiver: Mutex::new(None),
            streaming: Arc::default(),
            proxy: Mutex::new(None),
            proxy_naming: Arc::default(),
        }
    }

    /// Panics while the record buffer is locked (see the `panic-probe` feature).
    #[cfg(feature = "panic-probe")]
    pub fn panic_probe(&self) -> ! {
        self.intake.buffer.panic_while_locked()
    }

    pub fn config(&self) -> &RecorderConfig {
        &self.config
    }

    /// The runtime the recorder's work runs on.
    pub fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// Binds and starts receiving; returns the bound address. Starting a started recorder is a no-op.
    pub fn start(&self) -> Result<SocketAddr, RecorderError> {
        let mut receiver = self.lock_receiver();
        if let Some(running) = receiver.as_ref() {
            return Ok(running.local_addr());
        }
        let started = Receiver::start(self.config.bind_addr, self.intake.clone(), &self.runtime)?;
        let addr = started.local_addr();
        *receiver = Some(started);
        Ok(addr)
    }

    /// The bound address while running.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.lock_receiver().as_ref().map(Receiver::local_addr)
    }

    /// Takes in what is queued, then closes the socket. Buffered records stay for a last flush.
    pub async fn stop(&self) {
        let receiver = self.lock_receiver().take();
        if let Some(receiver) = receiver {
            receiver.stop().await;
        }
    }

    /// Starts the recording proxy (see [`crate::proxy`]): its requests are recorded like datagrams.
    pub fn start_proxy(&self, options: ProxyOptions) -> Result<ProxyInfo, ProxyError> {
        let mut proxy = self.lock_proxy();
        if proxy.is_some() {
            return Err(ProxyError::Running);
        }
        let started = Proxy::start(
            options,
            self.intake.clone(),
            self.proxy_naming.clone(),
            &self.runtime,
        )?;
        let info = ProxyInfo::of(&started);
        *proxy = Some(started);
        Ok(info)
    }

    /// The running proxy's address and files.
    pub fn proxy_info(&self) -> Option<ProxyInfo> {
        self.lock_proxy().as_ref().map(ProxyInfo::of)
    }

    /// Stops the proxy: its connections close, calls waiting for a retry are recorded and its CA
    /// directory is removed. Stopping a stopped proxy is a no-op.
    pub async fn stop_proxy(&self) {
        let proxy = self.lock_proxy().take();
        if let Some(proxy) = proxy {
            proxy.stop().await;
        }
    }

    /// The proxy's events waiting to be named (`hold_for_naming`), oldest first; the caller names
    /// each and ingests it (path `proxy`).
    pub fn take_proxy_events(&self) -> Vec<ProxyEvent> {
        self.proxy_naming.take()
    }

    /// The proxy's warnings since the last call (clients that refused its CA).
    pub fn take_proxy_warnings(&self) -> Vec<String> {
        self.lock_proxy()
            .as_ref()
            .map(Proxy::take_warnings)
            .unwrap_or_default()
    }

    /// Takes in one event, exactly as a received datagram would be.
    pub fn ingest(&self, datagram: &[u8]) {
        self.intake.accept(datagram, epoch_millis());
    }

    /// Takes in one event produced in this process by `path`, counted as that path's; attributed to
    /// `invocation` (the caller's) while it runs, else by time.
    pub fn ingest_from(&self, path: RecordingPath, event: &[u8], invocation: Option<u64>) {
        self.intake
            .accept_in_process(path, event, epoch_millis(), invocation);
    }

    /// Attributes records received from now on to this invocation; returns its id.
    pub fn begin_invocation(&self, info: InvocationInfo) -> u64 {
        self.intake.invocations.begin(info)
    }

    /// Drains, ends invocation `id` (so late datagrams are still attributed to it), then flushes.
    pub async fn finish_invocation(&self, id: u64, options: FlushOptions) -> FlushReport {
        let started = Instant::now();
        self.drain(options.drain).await;
        self.intake.invocations.end(id);
        self.deliver(started, options.deadline).await
    }

    /// Ends invocation `id` once `settled` is done (the caller's proof that nothing more of it is on
    /// its way, such as a passed [`crate::barrier`]), takes in what is queued, then delivers.
    pub async fn finish_invocation_when(
        &self,
        id: u64,
        settled: impl std::future::Future<Output = ()>,
        deadline: Instant,
    ) -> FlushReport {
        let started = Instant::now();
        settled.await;
        self.drain(Duration::ZERO).await;
        self.intake.invocations.end(id);
        self.deliver(started, deadline).await
    }

    /// Ends invocation `id` once `settled` is done (see [`Self::finish_invocation_when`]) and what
    /// is queued is taken in, without delivering: the background delivery does that.
    pub async fn end_invocation_when(
        &self,
        id: u64,
        settled: impl std::future::Future<Output = ()>,
    ) {
        settled.await;
        self.drain(Duration::ZERO).await;
        self.intake.invocations.end(id);
    }

    /// How many records wait for delivery.
    pub fn buffered(&self) -> usize {
        self.intake.buffer.len()
    }

    /// Notified when records are buffered (one waiter: a stream or the background delivery).
    pub fn arrived(&self) -> &tokio::sync::Notify {
        self.intake.buffer.arrived()
    }

    /// Delivers everything buffered to the sink by `deadline`, without draining first.
    pub async fn deliver_buffered(&self, deadline: Instant) -> FlushReport {
        self.deliver(Instant::now(), deadline).await
    }

    /// Drains for `options.drain`, then delivers everything buffered to the sink.
    pub async fn flush(&self, options: FlushOptions) -> FlushReport {
        let started = Instant::now();
        self.drain(options.drain).await;
        self.deliver(started, options.deadline).await
    }

    /// Keeps receiving for at most `drain`, then takes in whatever is already queued on the socket.
    async fn drain(&self, drain: Duration) {
        // tokio's timer rounds a sleep up to the next millisecond: a millisecond less keeps the
        // drain within its bound.
        let sleep = drain.saturating_sub(Duration::from_millis(1));
        if !sleep.is_zero() {
            tokio::time::sleep(sleep).await;
        }
        let sweeper = self.lock_receiver().as_ref().map(Receiver::sweeper);
        if let Some(sweeper) = sweeper {
            sweeper.sweep().await;
        }
    }

    async fn deliver(&self, started: Instant, deadline: Instant) -> FlushReport {
        let Some(sink) = self.sink.clone() else {
            return FlushReport::default();
        };
        let records = self.intake.buffer.take_all();
        let count = records.len() as u64;
        let stats = &self.intake.stats;
        let delivery = if records.is_empty() {
            Default::default()
        } else {
            sink.deliver(records, deadline).await
        };
        Stats::add(&stats.delivered, delivery.delivered);
        Stats::add(&stats.failed, delivery.failed);
        Stats::add(&stats.retried, delivery.retried);
        Stats::add(&stats.requests, delivery.requests);
        let duration_ms = started.elapsed().as_millis() as u64;
        Stats::set(&stats.last_flush_ms, duration_ms);
        FlushReport {
            records: count,
            delivered: delivery.delivered,
            failed: delivery.failed,
            retried: delivery.retried,
            requests: delivery.requests,
            duration_ms,
            error: delivery.error.map(|e| format!("{} sink: {e}", sink.name())),
        }
    }

    /// Streams records to an output as they arrive, instead of buffering them for a sink (so only
    /// a recorder whose sink is none streams). One stream at a time.
    pub fn stream(&self, options: StreamOptions) -> Result<Stream, StreamError> {
        if self.sink.is_some() {
            return Err(StreamError::HasSink);
        }
        Stream::start(
            self.intake.clone(),
            self.runtime.clone(),
            options,
            self.streaming.clone(),
        )
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.intake.stats.snapshot()
    }

    /// Buffered (not yet flushed) records as JSON objects, oldest first.
    pub fn records_json(&self) -> Vec<String> {
        self.intake.buffer.snapshot_json()
    }

    /// Removes and returns the buffered records, oldest first.
    pub fn take_records(&self) -> Vec<Record> {
        self.intake.buffer.take_all()
    }

    fn lock_proxy(&self) -> std::sync::MutexGuard<'_, Option<Proxy>> {
        self.proxy
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_receiver(&self) -> std::sync::MutexGuard<'_, Option<Receiver>> {
        self.receiver
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Dropping the receiver cancels its loop, which closes the socket; dropping the proxy stops
        // it and removes its CA files.
        self.lock_receiver().take();
        self.lock_proxy().take();
    }
}
