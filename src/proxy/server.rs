//! The listening side: accepts connections on 127.0.0.1, reads the first request head, and either
//! decrypts a `CONNECT` tunnel to an AWS host, passes any other tunnel through byte for byte, or
//! forwards plain proxy requests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::ca::is_aws_host;
use super::forward::{self, Buffered, HeadError, Io, Upstream, read_request_head, reset};
use super::{Destination, Route, Shared};
use crate::stats::Stats;

/// How long a client may take to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection Established\r\n\r\n";
const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const BAD_GATEWAY: &[u8] =
    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Accepts connections until `cancel`; every `sweep_every`, records calls that waited too long
/// for a retry.
pub async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    sweep_every: Duration,
) {
    let mut sweep = tokio::time::interval(sweep_every);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = sweep.tick() => {
                let events = shared.calls.sweep(Instant::now());
                shared.ingest(events);
            }
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    Stats::add(&shared.stats().connections, 1);
                    let shared = shared.clone();
                    let cancel = cancel.clone();
                    tokio::spawn(async move {
                        tokio::select! {
                            () = cancel.cancelled() => {}
                            () = handle(tcp, shared) => {}
                        }
                    });
                }
                // Out of descriptors, or a connection reset before it was accepted: go on.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

async fn handle(tcp: TcpStream, shared: Arc<Shared>) {
    let _ = tcp.set_nodelay(true);
    let mut reader = Buffered::new(tcp, BytesMut::with_capacity(8 * 1024));
    let head = match read_request_head(&mut reader, is_aws_host).await {
        Ok(Some(head)) => head,
        Ok(None) | Err(HeadError::Io(_)) => return,
        Err(HeadError::Malformed) => {
            Stats::add(&shared.stats().not_understood, 1);
            return;
        }
    };
    let Buffered {
        inner: mut tcp,
        buf: leftover,
    } = reader;
    if !head.method.eq_ignore_ascii_case("CONNECT") {
        forward::serve(tcp, leftover, Some(head), None, Route::Plain, shared).await;
        return;
    }
    let Some((host, port)) = forward::split_authority(&head.target, 443) else {
        Stats::add(&shared.stats().not_understood, 1);
        let _ = tcp.write_all(BAD_REQUEST).await;
        return;
    };
    if is_aws_host(&host) {
        intercept(tcp, leftover, host, port, shared).await;
    } else {
        pass_through(tcp, leftover, host, port, shared).await;
    }
}

/// Terminates TLS for an AWS host with a leaf certificate for it, then forwards its requests.
async fn intercept(
    mut tcp: TcpStream,
    leftover: BytesMut,
    host: String,
    port: u16,
    shared: Arc<Shared>,
) {
    if !leftover.is_empty() {
        // A client sent bytes before the tunnel was established: not a TLS client of a proxy.
        Stats::add(&shared.stats().not_understood, 1);
        return;
    }
    let destination = shared.upstream.clone().unwrap_or_else(|| Destination {
        host: host.clone(),
        port,
        tls: true,
    });
    // Connected first: an upstream that refuses is seen by the client as a reset tunnel, at once.
    let upstream = match shared.connect(&destination).await {
        Ok(stream) => stream,
        Err(_) => {
            Stats::add(&shared.stats().upstream_failed, 1);
            reset(&tcp);
            return;
        }
    };
    let config = match shared.ca.server_config(&host) {
        Ok(config) => config,
        Err(_) => {
            Stats::add(&shared.stats().not_understood, 1);
            return;
        }
    };
    if tcp.write_all(ESTABLISHED).await.is_err() {
        return;
    }
    let accept = tokio_rustls::TlsAcceptor::from(config).accept(tcp);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            match alert_received(&error) {
                Some(alert) => {
                    Stats::add(&shared.stats().refused, 1);
                    shared.warn_refused(&host, &alert);
                }
                None => Stats::add(&shared.stats().not_understood, 1),
            }
            return;
        }
        Err(_) => return,
    };
    Stats::add(&shared.stats().decrypted, 1);
    let upstream = Upstream::new(destination, upstream);
    let route = Route::Intercepted { host, port };
    forward::serve(tls, BytesMut::new(), None, Some(upstream), route, shared).await;
}

/// The alert a client sent during the handshake, if that is how it failed.
fn alert_received(error: &std::io::Error) -> Option<String> {
    match error.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::AlertReceived(alert) => Some(format!("{alert:?}")),
        _ => None,
    }
}

/// A tunnel to a host the proxy does not decrypt: bytes both ways, untouched.
async fn pass_through(
    mut tcp: TcpStream,
    leftover: BytesMut,
    host: String,
    port: u16,
    shared: Arc<Shared>,
) {
    let destination = Destination {
        host,
        port,
        tls: false,
    };
    let remote = match shared.connect(&destination).await {
        Ok(remote) => remote,
        Err(_) => {
            Stats::add(&shared.stats().upstream_failed, 1);
            let _ = tcp.write_all(BAD_GATEWAY).await;
            return;
        }
    };
    Stats::add(&shared.stats().tunnelled, 1);
    if tcp.write_all(ESTABLISHED).await.is_err() {
        return;
    }
    tunnel(tcp, leftover, remote, BytesMut::new()).await;
}

/// Copies bytes both ways until both sides are done. `a_read` was read from `a` already and goes
/// to `b` first; `b_read` likewise.
pub async fn tunnel<A: Io, B: Io>(mut a: A, a_read: BytesMut, mut b: B, b_read: BytesMut) {
    if !a_read.is_empty() && b.write_all(&a_read).await.is_err() {
        return;
    }
    if !b_read.is_empty() && a.write_all(&b_read).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
}
