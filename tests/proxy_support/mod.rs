//! Helpers of the proxy tests: a recorder with its proxy, tunnels and TLS clients through it, and
//! a plain HTTP server standing in for AWS.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_api_call_recorder::proxy::ProxyOptions;
use aws_api_call_recorder::{ProxyInfo, Recorder, RecorderConfig, RecorderOptions, Whole};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;

pub const TOKEN: &str = "FwoGZXIvYXdzEXAMPLESESSIONTOKENdoNotStore";
pub const SIGNATURE: &str = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
pub const AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=AKIDPROXYTEST/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token;x-amz-target, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

pub fn recorder() -> Recorder {
    let options = RecorderOptions {
        port: Some(Whole(0)),
        host: Some("127.0.0.1".into()),
        sink: Some("none".into()),
        ..Default::default()
    };
    Recorder::new(RecorderConfig::resolve(options, |_| None).unwrap()).unwrap()
}

pub fn start(recorder: &Recorder, upstream: Option<String>) -> ProxyInfo {
    recorder
        .start_proxy(ProxyOptions {
            upstream,
            ..Default::default()
        })
        .unwrap()
}

pub fn records(recorder: &Recorder) -> Vec<Value> {
    recorder
        .records_json()
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect()
}

/// Waits until `check` holds (the proxy records once the response is relayed).
pub fn eventually(what: &str, check: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Opens a tunnel through the proxy; returns the stream and the proxy's answer.
pub fn connect(proxy: SocketAddr, authority: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(proxy).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => answer.push(byte[0]),
            _ => break,
        }
    }
    (stream, String::from_utf8_lossy(&answer).into_owned())
}

/// A TLS client over a tunnel, trusting `roots`, offering h2 and http/1.1 as Go does.
pub fn tls_client(
    stream: TcpStream,
    host: &str,
    roots: &[CertificateDer<'static>],
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut store = rustls::RootCertStore::empty();
    store.add_parsable_certificates(roots.iter().cloned());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let name = ServerName::try_from(host.to_owned()).unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    rustls::StreamOwned::new(connection, stream)
}

pub fn ca_roots(info: &ProxyInfo) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(&info.ca_cert_path)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Reads one HTTP/1.1 response (Content-Length framed) off `stream`.
pub fn read_response(stream: &mut impl Read) -> (u16, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(len)) = response.parse(&buf) {
            let length: usize = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
                .unwrap_or(0);
            let status = response.code.unwrap();
            while buf.len() < len + length {
                let n = stream.read(&mut chunk).unwrap();
                assert!(n > 0, "response cut short");
                buf.extend_from_slice(&chunk[..n]);
            }
            return (status, buf[len..len + length].to_vec());
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "no response");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A plain HTTP/1.1 server standing in for AWS: keeps every byte each request arrived as (head and
/// body, framing included) and answers each with `response`. Bodies are counted, not kept, past
/// `keep_bytes`.
pub struct Upstream {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Vec<u8>>>>,
    pub body_bytes: Arc<Mutex<Vec<u64>>>,
}

pub fn upstream(response: &'static [u8], keep_bytes: usize) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let body_bytes = Arc::new(Mutex::new(Vec::new()));
    let (r, b) = (received.clone(), body_bytes.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (r, b) = (r.clone(), b.clone());
            std::thread::spawn(move || serve_upstream(stream, response, keep_bytes, &r, &b));
        }
    });
    Upstream {
        addr,
        received,
        body_bytes,
    }
}

pub fn serve_upstream(
    mut stream: TcpStream,
    response: &[u8],
    keep_bytes: usize,
    received: &Mutex<Vec<Vec<u8>>>,
    body_bytes: &Mutex<Vec<u64>>,
) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut writer = stream.try_clone().unwrap();
    let mut fill = |buf: &mut Vec<u8>| -> bool {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    };
    loop {
        // The head.
        let (head_len, length, chunked) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut request = httparse::Request::new(&mut headers);
            if let Ok(httparse::Status::Complete(len)) = request.parse(&buf) {
                let header = |name: &str| {
                    request
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).into_owned())
                };
                let length: u64 = header("content-length").map_or(0, |v| v.parse().unwrap());
                break (len, length, header("transfer-encoding").is_some());
            }
            if !fill(&mut buf) {
                return;
            }
        };
        let mut kept: Vec<u8> = buf.drain(..head_len).collect();
        let mut body = 0u64;
        if chunked {
            // Kept whole: the chunked tests send small bodies.
            loop {
                // The last chunk, `0` with or without extensions, then the trailers' end.
                if let Some(total) = find(&buf, b"\r\n0")
                    .and_then(|end| find(&buf[end..], b"\r\n\r\n").map(|done| end + done + 4))
                {
                    body = total as u64;
                    kept.extend(buf.drain(..total));
                    break;
                }
                if !fill(&mut buf) {
                    return;
                }
            }
        } else {
            while body < length {
                if buf.is_empty() && !fill(&mut buf) {
                    return;
                }
                let n = buf.len().min((length - body) as usize);
                let room = keep_bytes.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                buf.drain(..n);
                body += n as u64;
            }
        }
        received.lock().unwrap().push(kept);
        body_bytes.lock().unwrap().push(body);
        if writer.write_all(response).is_err() {
            return;
        }
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub const OK: &[u8] = b"HTTP/1.1 200 OK\r\nx-amzn-RequestId: req-1234\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\n\r\n{}";
