//! The UDP receiver: reads CSM datagrams off the socket, off the JS thread, and hands them to the
//! [`Intake`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::RecorderError;
use crate::intake::{Intake, epoch_millis};
use crate::stats::Stats;

/// Receive buffer where datagrams are read one at a time: any UDP datagram fits, so an oversized one
/// is seen whole and counted, never truncated into something that might parse. (With `recvmmsg` the
/// kernel flags truncation instead.)
#[cfg(not(target_os = "linux"))]
const RECV_BUFFER_BYTES: usize = 64 * 1024;
/// Kernel socket buffer requested, so bursts are not lost while the receiver is descheduled.
pub const SOCKET_RCVBUF_BYTES: usize = 4 * 1024 * 1024;

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
        intake: Arc<Intake>,
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
        let task = runtime.spawn(receive_loop(socket, intake, cancel.clone(), sweep_requests));
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
    intake: Arc<Intake>,
    cancel: CancellationToken,
    mut sweep_requests: mpsc::Receiver<oneshot::Sender<()>>,
) {
    let mut reader = DatagramReader::new();
    // Made once: each wake-up polls it rather than registering a new waiter with the token.
    let cancelled = cancel.cancelled();
    tokio::pin!(cancelled);
    loop {
        // After a receive error the socket may stay readable with the same error: wait before the
        // next read instead of spinning.
        let pause = reader.errors.pause();
        tokio::select! {
            biased;
            () = &mut cancelled => {
                reader.read_queued(&socket, &intake);
                break;
            }
            Some(done) = sweep_requests.recv() => {
                // Everything queued now, even past one wake-up's worth (bounded against a flood).
                for _ in 0..MAX_SWEEP_WAKES {
                    if reader.read_queued(&socket, &intake) < MAX_DATAGRAMS_PER_WAKE {
                        break;
                    }
                }
                let _ = done.send(());
            }
            () = pause_for(pause), if pause.is_some() => {
                reader.read_queued(&socket, &intake);
            }
            ready = socket.readable(), if pause.is_none() => {
                match ready {
                    Ok(()) => {
                        reader.read_queued(&socket, &intake);
                    }
                    Err(_) => reader.errors.record(&intake.stats),
                }
            }
        }
    }
}

/// Sleeps for `pause`. A future that is not built is not polled either: `select!` builds the
/// futures of disabled branches too, so the timer is only set up when there is a pause.
async fn pause_for(pause: Option<Duration>) {
    if let Some(pause) = pause {
        tokio::time::sleep(pause).await;
    }
}

/// Consecutive receive errors (other than "would block"), and how long to wait before reading
/// again: 1 ms, doubling up to 1 s, until a read succeeds.
#[derive(Debug, Default)]
struct ReceiveErrors {
    consecutive: u32,
}

const FIRST_ERROR_PAUSE: Duration = Duration::from_millis(1);
const LONGEST_ERROR_PAUSE: Duration = Duration::from_secs(1);

impl ReceiveErrors {
    fn record(&mut self, stats: &Stats) {
        Stats::add(&stats.receive_errors, 1);
        self.consecutive = self.consecutive.saturating_add(1);
    }

    fn clear(&mut self) {
        self.consecutive = 0;
    }

    fn pause(&self) -> Option<Duration> {
        let doublings = self.consecutive.checked_sub(1)?.min(10);
        Some(
            FIRST_ERROR_PAUSE
                .saturating_mul(1 << doublings)
                .min(LONGEST_ERROR_PAUSE),
        )
    }
}

/// Datagrams taken per wake-up before the loop looks at stop and sweep requests again.
const MAX_DATAGRAMS_PER_WAKE: usize = 4096;
/// Bound on one sweep, so a flood cannot hold a flush forever (4096 × 64 datagrams).
const MAX_SWEEP_WAKES: usize = 64;

/// Reads datagrams off the socket to the intake, many per system call where the OS allows.
struct DatagramReader {
    /// `BATCH` slots of `SLOT_BYTES` (Linux) or one slot of `RECV_BUFFER_BYTES`.
    buffers: Vec<u8>,
    errors: ReceiveErrors,
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
            errors: ReceiveErrors::default(),
        }
    }

    /// Reads until the socket would block or `MAX_DATAGRAMS_PER_WAKE` datagrams were read (the rest
    /// stays queued and readiness stays set, so the loop comes straight back). Returns the count.
    fn read_queued(&mut self, socket: &UdpSocket, intake: &Intake) -> usize {
        let now_ms = epoch_millis();
        let mut taken = 0;
        while taken < MAX_DATAGRAMS_PER_WAKE {
            match self.read_batch(socket, intake, now_ms) {
                Ok(0) => break,
                Ok(n) => {
                    self.errors.clear();
                    taken += n;
                }
                // All taken.
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    self.errors.clear();
                    break;
                }
                // It concerns no datagram we could read; counted, and the loop waits before retrying.
                Err(_) => {
                    self.errors.record(&intake.stats);
                    break;
                }
            }
        }
        taken
    }

    #[cfg(target_os = "linux")]
    fn read_batch(
        &mut self,
        socket: &UdpSocket,
        intake: &Intake,
        now_ms: u64,
    ) -> std::io::Result<usize> {
        use std::os::fd::AsRawFd;
        let mut lengths = [(0usize, false); BATCH];
        let count = socket.try_io(tokio::io::Interest::READABLE, || {
            let mut slots = self.buffers.chunks_exact_mut(SLOT_BYTES);
            let mut iovecs: [libc::iovec; BATCH] = std::array::from_fn(|_| {
                let slot = slots.next().expect("the buffer holds BATCH slots");
                libc::iovec {
                    iov_base: slot.as_mut_ptr().cast(),
                    iov_len: SLOT_BYTES,
                }
            });
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
        intake.accept_batch(
            datagrams.map(|(slot, &(length, truncated))| (!truncated).then(|| &slot[..length])),
            now_ms,
        );
        Ok(count)
    }

    #[cfg(not(target_os = "linux"))]
    fn read_batch(
        &mut self,
        socket: &UdpSocket,
        intake: &Intake,
        now_ms: u64,
    ) -> std::io::Result<usize> {
        let (length, _peer) = socket.try_recv_from(&mut self.buffers)?;
        intake.accept(&self.buffers[..length], now_ms);
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_errors_are_counted_and_back_off_until_a_read_succeeds() {
        let stats = Stats::default();
        let mut errors = ReceiveErrors::default();
        assert_eq!(errors.pause(), None);
        let pauses: Vec<Duration> = (0..14)
            .map(|_| {
                errors.record(&stats);
                errors.pause().unwrap()
            })
            .collect();
        assert_eq!(pauses[0], Duration::from_millis(1));
        assert_eq!(pauses[1], Duration::from_millis(2));
        assert_eq!(pauses[9], Duration::from_millis(512));
        assert!(pauses[10..].iter().all(|p| *p == LONGEST_ERROR_PAUSE));
        assert_eq!(stats.snapshot().receive_errors, 14);
        errors.clear();
        assert_eq!(errors.pause(), None);
    }
}
