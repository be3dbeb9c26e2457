//! The recorder: receiver, buffer, context tracking and a sink, wired together.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use crate::buffer::RecordBuffer;
use crate::config::{RecorderConfig, SinkConfig};
use crate::error::RecorderError;
use crate::lambda::{ContextTracker, InvocationInfo};
use crate::receiver::{Ingest, Receiver};
use crate::sink::{FileSink, FileTarget, Sink};
use crate::stats::{Stats, StatsSnapshot};

/// How one flush should behave.
#[derive(Debug, Clone, Copy)]
pub struct FlushOptions {
    /// Keep receiving this long before taking the buffer, for datagrams still on their way.
    pub drain: Duration,
    /// Give up delivering at this instant; what is left is counted as failed.
    pub deadline: Instant,
}

/// What one flush did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlushReport {
    /// Records taken from the buffer.
    pub records: u64,
    pub delivered: u64,
    pub failed: u64,
    pub retried: u64,
    pub batches: u64,
    pub duration_ms: u64,
    /// Why records failed, when some did. Never contains record contents or credentials.
    pub error: Option<String>,
}

/// Records the CSM traffic sent to one address.
pub struct Recorder {
    config: RecorderConfig,
    ingest: Arc<Ingest>,
    sink: Option<Arc<dyn Sink>>,
    runtime: Handle,
    receiver: Mutex<Option<Receiver>>,
}

impl Recorder {
    /// Builds a recorder from a resolved configuration; nothing is bound until [`Recorder::start`].
    pub fn new(config: RecorderConfig) -> Result<Self, RecorderError> {
        let runtime = crate::runtime::handle()?;
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
        let ingest = Arc::new(Ingest {
            stats: Arc::new(Stats::default()),
            buffer: Arc::new(RecordBuffer::new(
                config.max_buffered_records,
                config.max_buffered_bytes,
            )),
            contexts: Arc::new(ContextTracker::new(
                config.init_info.clone(),
                config.init_phase,
            )),
            keep_access_key: config.keep_access_key,
        });
        Ok(Recorder {
            config,
            ingest,
            sink,
            runtime,
            receiver: Mutex::new(None),
        })
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
        let started = Receiver::start(self.config.bind_addr, self.ingest.clone(), &self.runtime)?;
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

    /// Takes in one event produced in-process, exactly as a received datagram would be.
    pub fn ingest(&self, datagram: &[u8]) {
        self.ingest
            .accept(datagram, crate::receiver::epoch_millis());
    }

    /// Attributes records received from now on to this invocation; returns its id.
    pub fn begin_invocation(&self, info: InvocationInfo) -> u64 {
        self.ingest.contexts.begin(info)
    }

    /// Drains, ends invocation `id` (so late datagrams are still attributed to it), then flushes.
    pub async fn finish_invocation(&self, id: u64, options: FlushOptions) -> FlushReport {
        let started = Instant::now();
        self.drain(options.drain).await;
        self.ingest.contexts.end(id);
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
        self.ingest.contexts.end(id);
        self.deliver(started, deadline).await
    }

    /// Drains for `options.drain`, then delivers everything buffered to the sink.
    pub async fn flush(&self, options: FlushOptions) -> FlushReport {
        let started = Instant::now();
        self.drain(options.drain).await;
        self.deliver(started, options.deadline).await
    }

    async fn drain(&self, drain: Duration) {
        if !drain.is_zero() {
            // tokio's timer rounds up to whole milliseconds; the last one is slept precisely on a
            // blocking thread, so a 25 ms drain takes 25 ms, not 26.
            let until = Instant::now() + drain;
            let coarse = drain.saturating_sub(Duration::from_millis(1));
            if !coarse.is_zero() {
                tokio::time::sleep(coarse).await;
            }
            let rest = until.saturating_duration_since(Instant::now());
            if !rest.is_zero() {
                let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
            }
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
        let records = self.ingest.buffer.take_all();
        let count = records.len() as u64;
        let stats = &self.ingest.stats;
        let delivery = if records.is_empty() {
            Default::default()
        } else {
            sink.deliver(records, deadline).await
        };
        Stats::add(&stats.flushed, delivery.delivered);
        Stats::add(&stats.failed, delivery.failed);
        Stats::add(&stats.retried, delivery.retried);
        Stats::add(&stats.batches, delivery.batches);
        let duration_ms = started.elapsed().as_millis() as u64;
        Stats::set(&stats.last_flush_ms, duration_ms);
        FlushReport {
            records: count,
            delivered: delivery.delivered,
            failed: delivery.failed,
            retried: delivery.retried,
            batches: delivery.batches,
            duration_ms,
            error: delivery.error.map(|e| format!("{} sink: {e}", sink.name())),
        }
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.ingest.stats.snapshot()
    }

    /// Buffered (not yet flushed) records as JSON objects, oldest first.
    pub fn records_json(&self) -> Vec<String> {
        self.ingest.buffer.snapshot_json()
    }

    /// Removes and returns the buffered records as JSON objects, oldest first.
    pub fn take_records_json(&self) -> Vec<String> {
        self.ingest
            .buffer
            .take_all()
            .iter()
            .map(|r| r.to_json())
            .collect()
    }

    fn lock_receiver(&self) -> std::sync::MutexGuard<'_, Option<Receiver>> {
        self.receiver
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Dropping the receiver cancels its loop, which closes the socket.
        self.lock_receiver().take();
    }
}
