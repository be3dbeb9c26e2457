//! csm-floor: the cheapest possible CSM receiver. It binds a UDP socket on loopback and counts
//! datagrams with `recvmmsg`, 64 at a time, without looking at them. Its CPU per message is the
//! floor any real receiver is compared against.
//!
//! `csm-floor 1` takes one datagram per system call instead, to show what batching saves.
//!
//! Protocol (stdin/stdout, one line each):
//! - on start it prints `port=P`;
//! - `stat` prints `received=N cpu_us=U max_rss_kb=K`;
//! - `quit` or end of stdin exits.

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Datagrams taken per `recvmmsg` call, unless the first argument says otherwise.
const BATCH: usize = 64;
/// Room for any UDP datagram, so none is truncated.
const SLOT_BYTES: usize = 64 * 1024;
/// The same kernel receive buffer the addon asks for, so both lose only for lack of CPU.
const RCVBUF_BYTES: libc::c_int = 4 * 1024 * 1024;

fn check(ret: libc::c_int, what: &str) {
    if ret < 0 {
        eprintln!("csm-floor: {what}: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
}

fn bind_loopback() -> (libc::c_int, u16) {
    // SAFETY: plain socket calls on a descriptor this function owns; every pointer passed points
    // to a live, correctly sized local.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        check(fd, "socket");
        let size = RCVBUF_BYTES;
        check(
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &size as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            ),
            "setsockopt(SO_RCVBUF)",
        );
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_port = 0;
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        check(libc::bind(fd, &addr as *const _ as *const libc::sockaddr, len), "bind");
        let mut bound: libc::sockaddr_in = std::mem::zeroed();
        let mut bound_len = len;
        check(
            libc::getsockname(fd, &mut bound as *mut _ as *mut libc::sockaddr, &mut bound_len),
            "getsockname",
        );
        (fd, u16::from_be(bound.sin_port))
    }
}

/// Blocks in `recvmmsg` forever, adding each batch's size to `received`.
fn receive(fd: libc::c_int, batch: usize, received: &AtomicU64) -> ! {
    let mut slots = vec![0u8; batch * SLOT_BYTES];
    let mut iovecs: Vec<libc::iovec> = slots
        .chunks_mut(SLOT_BYTES)
        .map(|slot| libc::iovec { iov_base: slot.as_mut_ptr().cast(), iov_len: SLOT_BYTES })
        .collect();
    // SAFETY: an all-zero mmsghdr is valid (null name, no control data).
    let mut headers: Vec<libc::mmsghdr> = (0..batch).map(|_| unsafe { std::mem::zeroed() }).collect();
    for (header, iovec) in headers.iter_mut().zip(iovecs.iter_mut()) {
        header.msg_hdr.msg_iov = iovec;
        header.msg_hdr.msg_iovlen = 1;
    }
    loop {
        // SAFETY: `headers` points at `batch` headers whose iovecs point into `slots`, all alive for
        // the whole loop.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                headers.as_mut_ptr(),
                batch as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n > 0 {
            received.fetch_add(n as u64, Ordering::Relaxed);
        } else if n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            check(n, "recvmmsg");
        }
    }
}

fn usage() -> (u64, u64) {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    (micros(usage.ru_utime) + micros(usage.ru_stime), usage.ru_maxrss as u64)
}

fn main() {
    let batch = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(BATCH)
        .clamp(1, 1024);
    let (fd, port) = bind_loopback();
    let received = Arc::new(AtomicU64::new(0));
    {
        let received = Arc::clone(&received);
        std::thread::spawn(move || receive(fd, batch, &received));
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "port={port}").unwrap();
    out.flush().unwrap();
    for line in std::io::stdin().lock().lines() {
        match line.as_deref().map(str::trim) {
            Ok("stat") => {
                let (cpu_us, max_rss_kb) = usage();
                let n = received.load(Ordering::Relaxed);
                writeln!(out, "received={n} cpu_us={cpu_us} max_rss_kb={max_rss_kb}").unwrap();
                out.flush().unwrap();
            }
            Ok("quit") | Err(_) => break,
            Ok(_) => {}
        }
    }
    std::process::exit(0);
}
