//! A barrier for datagrams already sent: proof that they have been taken in, without waiting a fixed
//! time.
//!
//! SDKs in this process send their CSM datagrams from the process's own event loop. Once the loop
//! has turned, those sends have been made; a marker datagram sent to the same address after them is
//! queued behind them (loopback keeps the order), so when the receiver sees the marker, everything
//! sent before it has been taken in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::Notify;

/// Starts every marker. A NUL byte never starts a CSM datagram (JSON), so no event is mistaken for one.
const MARKER_PREFIX: &[u8] = b"\0api-call-recorder barrier ";

static NEXT_MARKER: AtomicU64 = AtomicU64::new(1);
static LAST_SEEN: AtomicU64 = AtomicU64::new(0);
static ARRIVED: Notify = Notify::const_new();

/// The sequence number of a marker datagram, or `None` for any other datagram.
pub fn marker_sequence(datagram: &[u8]) -> Option<u64> {
    let digits = datagram.strip_prefix(MARKER_PREFIX)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Called by the receiver after the datagrams taken in with marker `sequence` are in the buffer.
pub fn arrived(sequence: u64) {
    LAST_SEEN.fetch_max(sequence, Ordering::AcqRel);
    ARRIVED.notify_waiters();
}

/// Sends a marker to the receiver at `receiver` and waits until it has been taken in, or `until`.
/// Returns whether it was (false: gave up at `until`, or the marker could not be sent).
pub async fn pass(receiver: SocketAddr, until: Instant) -> bool {
    let sequence = NEXT_MARKER.fetch_add(1, Ordering::AcqRel);
    let target = reachable(receiver);
    let local: SocketAddr = match target.ip() {
        IpAddr::V4(_) => (Ipv4Addr::LOCALHOST, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::LOCALHOST, 0).into(),
    };
    let mut marker = MARKER_PREFIX.to_vec();
    marker.extend_from_slice(sequence.to_string().as_bytes());
    // A blocking send of one datagram on loopback does not block.
    let sent = UdpSocket::bind(local).and_then(|socket| socket.send_to(&marker, target));
    if sent.is_err() {
        return false;
    }
    loop {
        let notified = ARRIVED.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if LAST_SEEN.load(Ordering::Acquire) >= sequence {
            return true;
        }
        if tokio::time::timeout_at(until.into(), notified)
            .await
            .is_err()
        {
            return LAST_SEEN.load(Ordering::Acquire) >= sequence;
        }
    }
}

/// A wildcard bind address is reached through loopback.
fn reachable(receiver: SocketAddr) -> SocketAddr {
    let ip = match receiver.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, receiver.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_told_from_csm_datagrams() {
        assert_eq!(marker_sequence(b"\0api-call-recorder barrier 42"), Some(42));
        assert_eq!(marker_sequence(br#"{"Type":"ApiCall"}"#), None);
        assert_eq!(marker_sequence(b"\0api-call-recorder barrier x"), None);
        assert_eq!(marker_sequence(b""), None);
    }

    #[tokio::test]
    async fn a_marker_nobody_receives_gives_up_at_the_deadline() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let until = Instant::now() + std::time::Duration::from_millis(20);
        assert!(!pass(silent.local_addr().unwrap(), until).await);
        assert!(Instant::now() >= until);
    }
}
