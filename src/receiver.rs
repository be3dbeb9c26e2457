//! The UDP receiver: reads CSM datagrams off the socket, off the JS thread, into the buffer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::buffer::RecordBuffer;
use crate::csm::{CsmEvent, ParseError, parse_datagram, repair_lone_surrogates};
use crate::error::RecorderError;
use crate::lambda::{ContextTracker, RecordContext};
use crate::record::Record;
use crate::stats::Stats;

/// Receive buffer where datagrams are read one at a time: any UDP datagram fits, so an oversized one
/// is seen whole and counted, never truncated into something that might parse. (With `recvmmsg` the
/// kernel flags truncation instead.)
#[cfg(not(target_os = "linux"))]
const RECV_BUFFER_BYTES: usize = 64 * 1024;
/// Kernel socket buffer requested, so bursts are not lost while the receiver is descheduled.
pub const SOCKET_RCVBUF_BYTES: usize = 4 * 1024 * 1024;

/// Turns datagrams into buffered records and counts every outcome.
#[derive(Debug)]
pub struct Ingest {
    pub stats: Arc<Stats>,
    pub buffer: Arc<RecordBuffer>,
    pub contexts: Arc<ContextTracker>,
    pub keep_access_key: bool,
}

impl Ingest {
    /// Accepts one datagram received at `now_ms`.
    pub fn accept(&self, datagram: &[u8], now_ms: u64) {
        self.accept_batch(std::iter::once(Some(datagram)), now_ms);
    }

    /// Accepts datagrams received together; `None` is one too large to read whole. Counters and the
    /// buffer are updated once for the batch.
    pub fn accept_batch<'a>(&self, datagrams: impl Iterator<Item = Option<&'a [u8]>>, now_ms: u64) {
        let context = self.contexts.current();
        let mut records = Vec::new();
        let (mut received, mut oversized, mut malformed) = (0, 0, 0);
        let mut marker = None;
        for datagram in datagrams {
            // The recorder's own barrier markers are not traffic: neither counted nor buffered.
            if let Some(sequence) = datagram.and_then(crate::barrier::marker_sequence) {
                marker = marker.max(Some(sequence));
                continue;
            }
            received += 1;
            match datagram.map(|d| self.to_record(d, now_ms, &context)) {
                Some(Ok(record)) => records.push(record),
                Some(Err(ParseError::Oversized { .. })) | None => oversized += 1,
                Some(Err(_)) => malformed += 1,
            }
        }
        let stats = &self.stats;
        Stats::add(&stats.received, received);
        Stats::add(&stats.parsed, records.len() as u64);
        Stats::add(&stats.oversized, oversized);
        Stats::add(&stats.malformed, malformed);
        let refused = self.buffer.push_many(records);
        Stats::add(&stats.dropped, refused as u64);
        if let Some(sequence) = marker {
            crate::barrier::arrived(sequence);
        }
    }

    /// Parses and sanitizes one datagram into a record.
    fn to_record(
        &self,
        datagram: &[u8],
        now_ms: u64,
        context: &Arc<RecordContext>,
    ) -> Result<Record, ParseError> {
        let json = match parse_datagram(datagram, self.keep_access_key) {
            Ok(event) => record_json(datagram, &event),
            Err(error @ ParseError::Oversized { .. }) => return Err(error),
            // Rare: retried only when the datagram has a lone surrogate escape to repair.
            Err(error) => match repair_lone_surrogates(datagram) {
                Some(fixed) => {
                    let event = parse_datagram(&fixed, self.keep_access_key)?;
                    record_json(&fixed, &event)
                }
                None => return Err(error),
            },
        };
        Ok(Record::new(json, context.clone(), now_ms))
    }
}

/// The record's JSON: the datagram itself when it is already a faithful, single-line object (the
/// common case, which saves serializing again), else the event serialized anew.
fn record_json(datagram: &[u8], event: &CsmEvent<'_>) -> String {
    let single_object = datagram.first() == Some(&b'{')
        && datagram.last() == Some(&b'}')
        && !datagram.iter().any(|&b| b == b'\n' || b == b'\r');
    if !event.altered
        && single_object
        && let Ok(text) = std::str::from_utf8(datagram)
    {
        return text.to_owned();
    }
    serde_json::to_string(event).expect("a parsed event always serializes")
}

pub fn epoch_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A running receiver. Dropping it without [`Receiver::stop`] still stops the loop and frees the port.
#[derive(Debug)]
pub struct Receiver {
    local_addr: SocketAddr,
    cancel: CancellationToken,
    sweeps: mpsc::Sender<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Binds `addr` (synchronously, so a taken port is reported to the caller at once) and starts
    /// receiving on `runtime`.
    pub fn start(
        addr: SocketAddr,
        ingest: Arc<Ingest>,
        runtime: &Handle,
    ) -> Result<Self, RecorderError> {
        let bind_error = |source| RecorderError::Bind { addr, source };
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
            .map_err(bind_error)?;
        // Best effort: the kernel caps it at net.core.rmem_max.
        let _ = socket.set_recv_buffer_size(SOCKET_RCVBUF_BYTES);
        socket.set_nonblocking(true).map_err(bind_error)?;
        socket.bind(&addr.into()).map_err(bind_error)?;
        let std_socket: std::net::UdpSocket = socket.into();
        let local_addr = std_socket.local_addr().map_err(bind_error)?;
        let socket = {
            let _guard = runtime.enter();
            UdpSocket::from_std(std_socket).map_err(bind_error)?
        };
        let cancel = CancellationToken::new();
        let (sweeps, sweep_requests) = mpsc::channel(16);
        let task = runtime.spawn(receive_loop(socket, ingest, cancel.clone(), sweep_requests));
        Ok(Receiver {
            local_addr,
            cancel,
            sweeps,
            task: Some(task),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that can ask the running loop to take in what is queued.
    pub fn sweeper(&self) -> Sweeper {
        Sweeper(self.sweeps.clone())
    }

    /// Takes in what is queued, stops the loop and closes the socket.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Asks a receiver to take in every datagram already queued on its socket.
#[derive(Debug, Clone)]
pub struct Sweeper(mpsc::Sender<oneshot::Sender<()>>);

impl Sweeper {
    /// Returns once every datagram queued before the call has been taken in (or the receiver stopped).
    pub async fn sweep(&self) {
        let (done, wait) = oneshot::channel();
        if self.0.send(done).await.is_ok() {
            let _ = wait.await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn receive_loop(
    socket: UdpSocket,
    ingest: Arc<Ingest>,
    cancel: CancellationToken,
    mut sweep_requests: mpsc::Receiver<oneshot::Sender<()>>,
) {
    let mut reader = DatagramReader::new();
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => {
                reader.read_queued(&socket, &ingest);
                break;
            }
            Some(done) = sweep_requests.recv() => {
                // Everything queued now, even past one wake-up's worth (bounded against a flood).
                for _ in 0..MAX_SWEEP_WAKES {
                    if reader.read_queued(&socket, &ingest) < MAX_DATAGRAMS_PER_WAKE {
                        break;
                    }
                }
                let _ = done.send(());
            }
            ready = socket.readable() => {
                if ready.is_ok() {
                    reader.read_queued(&socket, &ingest);
                }
            }
        }
    }
}

/// Datagrams taken per wake-up before the loop looks at stop and sweep requests again.
const MAX_DATAGRAMS_PER_WAKE: usize = 4096;
/// Bound on one sweep, so a flood cannot hold a flush forever (4096 × 64 datagrams).
const MAX_SWEEP_WAKES: usize = 64;

/// Reads datagrams off the socket into the ingest, many per system call where the OS allows.
struct DatagramReader {
    /// `BATCH` slots of `SLOT_BYTES` (Linux) or one slot of `RECV_BUFFER_BYTES`.
    buffers: Vec<u8>,
}

/// Datagrams per `recvmmsg` call.
#[cfg(target_os = "linux")]
const BATCH: usize = 64;
/// One slot: a datagram over the CSM limit is seen as over it (longer, or truncated and flagged).
#[cfg(target_os = "linux")]
const SLOT_BYTES: usize = crate::csm::MAX_EVENT_BYTES + 1;

impl DatagramReader {
    fn new() -> Self {
        #[cfg(target_os = "linux")]
        let size = BATCH * SLOT_BYTES;
        #[cfg(not(target_os = "linux"))]
        let size = RECV_BUFFER_BYTES;
        DatagramReader {
            buffers: vec![0; size],
        }
    }

    /// Reads until the socket would block or `MAX_DATAGRAMS_PER_WAKE` datagrams were read (the rest
    /// stays queued and readiness stays set, so the loop comes straight back). Returns the count.
    fn read_queued(&mut self, socket: &UdpSocket, ingest: &Ingest) -> usize {
        let now_ms = epoch_millis();
        let mut taken = 0;
        while taken < MAX_DATAGRAMS_PER_WAKE {
            // WouldBlock: all taken. Other errors concern no datagram; readiness will report again.
            match self.read_batch(socket, ingest, now_ms) {
                Ok(0) | Err(_) => break,
                Ok(n) => taken += n,
            }
        }
        taken
    }

    #[cfg(target_os = "linux")]
    fn read_batch(
        &mut self,
        socket: &UdpSocket,
        ingest: &Ingest,
        now_ms: u64,
    ) -> std::io::Result<usize> {
        use std::os::fd::AsRawFd;
        let mut lengths = [(0usize, false); BATCH];
        let count = socket.try_io(tokio::io::Interest::READABLE, || {
            let mut iovecs: Vec<libc::iovec> = self
                .buffers
                .chunks_exact_mut(SLOT_BYTES)
                .map(|slot| libc::iovec {
                    iov_base: slot.as_mut_ptr().cast(),
                    iov_len: SLOT_BYTES,
                })
                .collect();
            // SAFETY: an all-zero mmsghdr is valid (null name and control, no iovecs yet).
            let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            for (header, iovec) in headers.iter_mut().zip(iovecs.iter_mut()) {
                header.msg_hdr.msg_iov = iovec;
                header.msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: every header points at one iovec over a distinct SLOT_BYTES slot of
            // self.buffers, all of which outlive the call.
            let received = unsafe {
                libc::recvmmsg(
                    socket.as_raw_fd(),
                    headers.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if received < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let received = received as usize;
            for (length, header) in lengths.iter_mut().zip(&headers[..received]) {
                *length = (
                    header.msg_len as usize,
                    header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
                );
            }
            Ok(received)
        })?;
        let datagrams = self.buffers.chunks_exact(SLOT_BYTES).zip(&lengths[..count]);
        ingest.accept_batch(
            datagrams.map(|(slot, &(length, truncated))| (!truncated).then(|| &slot[..length])),
            now_ms,
        );
        Ok(count)
    }

    #[cfg(not(target_os = "linux"))]
    fn read_batch(
        &mut self,
        socket: &UdpSocket,
        ingest: &Ingest,
        now_ms: u64,
    ) -> std::io::Result<usize> {
        let (length, _peer) = socket.try_recv_from(&mut self.buffers)?;
        ingest.accept(&self.buffers[..length], now_ms);
        Ok(1)
    }
}
