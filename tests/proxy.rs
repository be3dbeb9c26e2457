//! The recording proxy over real loopback sockets: tunnels pass untouched, AWS hosts are decrypted
//! with the run's CA and forwarded byte for byte, failures reach the client as they would without
//! the proxy, and records carry no secret.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_api_call_recorder::proxy::ProxyOptions;
use aws_api_call_recorder::{ProxyInfo, Recorder, RecorderConfig, RecorderOptions, Whole};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;

const TOKEN: &str = "FwoGZXIvYXdzEXAMPLESESSIONTOKENdoNotStore";
const SIGNATURE: &str = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
const AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=AKIDPROXYTEST/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token;x-amz-target, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

fn recorder() -> Recorder {
    let options = RecorderOptions {
        port: Some(Whole(0)),
        host: Some("127.0.0.1".into()),
        sink: Some("none".into()),
        ..Default::default()
    };
    Recorder::new(RecorderConfig::resolve(options, |_| None).unwrap()).unwrap()
}

fn start(recorder: &Recorder, upstream: Option<String>) -> ProxyInfo {
    recorder
        .start_proxy(ProxyOptions {
            upstream,
            ca_parent: None,
        })
        .unwrap()
}

fn records(recorder: &Recorder) -> Vec<Value> {
    recorder
        .records_json()
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect()
}

/// Waits until `check` holds (the proxy records once the response is relayed).
fn eventually(what: &str, check: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Opens a tunnel through the proxy; returns the stream and the proxy's answer.
fn connect(proxy: SocketAddr, authority: &str) -> (TcpStream, String) {
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
fn tls_client(
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

fn ca_roots(info: &ProxyInfo) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(&info.ca_cert_path)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Reads one HTTP/1.1 response (Content-Length framed) off `stream`.
fn read_response(stream: &mut impl Read) -> (u16, Vec<u8>) {
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
struct Upstream {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    body_bytes: Arc<Mutex<Vec<u64>>>,
}

fn upstream(response: &'static [u8], keep_bytes: usize) -> Upstream {
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

fn serve_upstream(
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

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nx-amzn-RequestId: req-1234\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\n\r\n{}";

#[test]
fn a_tunnel_to_another_host_passes_bytes_untouched_and_records_nothing() {
    let echo = TcpListener::bind("127.0.0.1:0").unwrap();
    let echo_addr = echo.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = echo.accept().unwrap();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 || stream.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let recorder = recorder();
    let info = start(&recorder, None);
    let (mut stream, answer) = connect(info.address, &echo_addr.to_string());
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Not HTTP, not TLS: bytes of every value, passed as they are.
    let payload: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    stream.write_all(&payload).unwrap();
    let mut back = vec![0u8; payload.len()];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(back, payload);
    let stats = recorder.stats();
    assert_eq!(stats.proxy.tunnelled, 1);
    assert_eq!(stats.proxy.decrypted, 0);
    assert_eq!(stats.proxy.requests, 0);
    assert!(records(&recorder).is_empty());
}

#[test]
fn aws_hosts_are_decrypted_forwarded_byte_for_byte_and_recorded_without_secrets() {
    let server = upstream(OK, 1 << 20);
    let recorder = recorder();
    let info = start(&recorder, Some(format!("http://{}", server.addr)));
    let host = "sqs.us-east-1.amazonaws.com";
    let (stream, answer) = connect(info.address, &format!("{host}:443"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut tls = tls_client(stream, host, &ca_roots(&info));
    let body = br#"{"QueueName":"proxied"}"#;
    // Header case and order as an SDK sends them, odd spacing included.
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nX-Amz-Target: AmazonSQS.CreateQueue\r\nx-amz-date: 20260101T000000Z\r\nX-Amz-Security-Token: {TOKEN}\r\nAuthorization: {AUTHORIZATION}\r\nUser-Agent: aws-sdk-go-v2/1.36.3 os/linux\r\namz-sdk-invocation-id: 7d3c1e2a-0000-4000-8000-000000000001\r\namz-sdk-request: attempt=1; max=3\r\nContent-Type:application/x-amz-json-1.0\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut sent = request.into_bytes();
    sent.extend_from_slice(body);
    tls.write_all(&sent).unwrap();
    let (status, response_body) = read_response(&mut tls);
    assert_eq!(status, 200);
    assert_eq!(response_body, b"{}");
    // ALPN: h2 was offered, HTTP/1.1 chosen.
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(server.received.lock().unwrap().as_slice(), &[sent.clone()]);

    eventually("the first call's records", || records(&recorder).len() == 2);
    let stats = recorder.stats();
    assert_eq!(stats.proxy.decrypted, 1);
    assert_eq!(stats.proxy.requests, 1);
    assert_eq!(stats.paths.proxy.calls, 1);
    assert_eq!(stats.paths.proxy.attempts, 1);
    let all = records(&recorder);
    let (attempt, call) = (&all[0], &all[1]);
    assert_eq!(attempt["Type"], "ApiCallAttempt");
    assert_eq!(call["Type"], "ApiCall");
    for record in [attempt, call] {
        assert_eq!(record["Service"], "sqs");
        assert_eq!(record["Api"], "CreateQueue");
        assert_eq!(record["Region"], "us-east-1");
        assert_eq!(record["UserAgent"], "aws-sdk-go-v2/1.36.3 os/linux");
        assert!(record.get("ApiUnknown").is_none());
    }
    assert_eq!(attempt["AccessKey"], "AKIDPROXYTEST");
    assert_eq!(attempt["HttpStatusCode"], 200);
    assert_eq!(attempt["XAmznRequestId"], "req-1234");
    assert_eq!(attempt["Fqdn"], host);
    assert_eq!(call["FinalHttpStatusCode"], 200);
    assert_eq!(call["AttemptCount"], 1);
    for record in recorder.records_json() {
        assert!(!record.contains(TOKEN), "{record}");
        assert!(!record.contains(SIGNATURE), "{record}");
        assert!(
            !record.contains("QueueName"),
            "a body reached a record: {record}"
        );
    }
}

#[test]
fn a_client_refusing_the_ca_is_counted_and_warned_about_once() {
    let server = upstream(OK, 0);
    let recorder = recorder();
    let info = start(&recorder, Some(format!("http://{}", server.addr)));
    let host = "dynamodb.us-east-1.amazonaws.com";
    for _ in 0..2 {
        let (stream, _) = connect(info.address, &format!("{host}:443"));
        // Trusts no root at all: rustls answers the certificate with an alert.
        let mut tls = tls_client(stream, host, &[]);
        assert!(tls.write_all(b"GET / HTTP/1.1\r\n\r\n").is_err());
    }
    eventually("refusals", || recorder.stats().proxy.refused == 2);
    let warnings = recorder.take_proxy_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains(host), "{}", warnings[0]);
    assert!(warnings[0].contains("--no-proxy") && warnings[0].contains("AWS_CA_BUNDLE"));
}

#[test]
fn chunked_and_aws_chunked_uploads_arrive_byte_exact_and_errors_are_recorded() {
    let error_body =
        "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
    let error = format!(
        "HTTP/1.1 503 Service Unavailable\r\nx-amz-request-id: S3REQ\r\nx-amz-id-2: id2value\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{error_body}",
        error_body.len()
    );
    let server = upstream(Box::leak(error.into_bytes().into_boxed_slice()), 1 << 20);
    let recorder = recorder();
    let info = start(&recorder, Some(format!("http://{}", server.addr)));
    let host = "bucket.s3.amazonaws.com";
    let (stream, _) = connect(info.address, &format!("{host}:443"));
    let mut tls = tls_client(stream, host, &ca_roots(&info));
    let s3_auth = AUTHORIZATION.replace("/sqs/", "/s3/");
    let mut sent = Vec::new();
    for attempt in 1..=2 {
        let head = format!(
            "PUT /key.txt HTTP/1.1\r\nHost: {host}\r\nAuthorization: {s3_auth}\r\nx-amz-security-token: {TOKEN}\r\nContent-Encoding: aws-chunked\r\nx-amz-decoded-content-length: 11\r\nx-amz-trailer: x-amz-checksum-crc32\r\nTransfer-Encoding: chunked\r\namz-sdk-invocation-id: put-1\r\namz-sdk-request: attempt={attempt}; max=2\r\n\r\n"
        );
        let body = b"6;chunk-signature=aaaa\r\nhello \r\n5;chunk-signature=bbbb\r\nworld\r\n0;chunk-signature=cccc\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        // Sent in small pieces, so framing is followed across reads.
        for piece in request.chunks(7) {
            tls.write_all(piece).unwrap();
            tls.flush().unwrap();
        }
        let (status, error_body) = read_response(&mut tls);
        assert_eq!(status, 503, "5xx passed through");
        assert!(error_body.starts_with(b"<Error><Code>SlowDown"));
        sent.push(request);
    }
    assert_eq!(server.received.lock().unwrap().as_slice(), sent.as_slice());
    eventually("both attempts and the call", || {
        records(&recorder).len() == 3
    });
    let all = records(&recorder);
    let attempts: Vec<&Value> = all
        .iter()
        .filter(|r| r["Type"] == "ApiCallAttempt")
        .collect();
    let calls: Vec<&Value> = all.iter().filter(|r| r["Type"] == "ApiCall").collect();
    assert_eq!((attempts.len(), calls.len()), (2, 1));
    assert_eq!(attempts[0]["AwsException"], "SlowDown");
    assert_eq!(
        attempts[0]["AwsExceptionMessage"],
        "Please reduce your request rate."
    );
    assert_eq!(attempts[0]["XAmzRequestId"], "S3REQ");
    assert_eq!(attempts[0]["XAmzId2"], "id2value");
    assert_eq!(calls[0]["Service"], "s3");
    assert_eq!(calls[0]["ApiUnknown"], true);
    assert!(calls[0].get("Api").is_none());
    assert_eq!(calls[0]["AttemptCount"], 2);
    assert_eq!(calls[0]["FinalHttpStatusCode"], 503);
    assert_eq!(calls[0]["FinalAwsException"], "SlowDown");
    assert_eq!(calls[0]["MaxRetriesExceeded"], 1);
    for record in recorder.records_json() {
        assert!(
            !record.contains(TOKEN) && !record.contains(SIGNATURE) && !record.contains("hello")
        );
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_large_body_is_streamed_in_bounded_memory() {
    const BODY: u64 = 256 << 20;
    let server = upstream(OK, 0);
    let recorder = recorder();
    let info = start(&recorder, Some(format!("http://{}", server.addr)));
    let host = "bucket.s3.us-west-2.amazonaws.com";
    let (stream, _) = connect(info.address, &format!("{host}:443"));
    let mut tls = tls_client(stream, host, &ca_roots(&info));
    write!(
        tls,
        "PUT /big HTTP/1.1\r\nHost: {host}\r\nContent-Length: {BODY}\r\n\r\n"
    )
    .unwrap();
    let before = rss_kib();
    let piece = vec![b'x'; 1 << 20];
    let mut peak = before;
    for i in 0..(BODY >> 20) {
        tls.write_all(&piece).unwrap();
        if i % 16 == 0 {
            peak = peak.max(rss_kib());
        }
    }
    let (status, _) = read_response(&mut tls);
    peak = peak.max(rss_kib());
    assert_eq!(status, 200);
    assert_eq!(server.body_bytes.lock().unwrap().as_slice(), &[BODY]);
    let grown_mib = peak.saturating_sub(before) / 1024;
    assert!(
        grown_mib < 48,
        "RSS grew {grown_mib} MiB for a 256 MiB body"
    );
}

#[test]
fn a_refused_upstream_resets_the_client_at_once() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let recorder = recorder();
    let info = start(&recorder, Some(format!("http://{addr}")));
    let started = Instant::now();
    let (mut stream, answer) = connect(info.address, "sts.amazonaws.com:443");
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut rest = Vec::new();
    let read = stream.read_to_end(&mut rest);
    assert!(
        matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
            || rest.is_empty(),
        "{read:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(recorder.stats().proxy.upstream_failed, 1);
}

#[test]
fn malformed_requests_are_counted_and_their_connections_closed() {
    let server = upstream(OK, 0);
    let recorder = recorder();
    let info = start(&recorder, Some(format!("http://{}", server.addr)));
    // Not HTTP at all.
    let mut stream = TcpStream::connect(info.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"\x16\x03\x01\x00\xff garbage\r\n\r\n")
        .unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty());
    // Inside a decrypted tunnel: a request line that is not one, then framing that cannot be
    // followed.
    let host = "sns.us-east-1.amazonaws.com";
    for bad in [
        &b"NOT A REQUEST\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
    ] {
        let (stream, _) = connect(info.address, &format!("{host}:443"));
        let mut tls = tls_client(stream, host, &ca_roots(&info));
        tls.write_all(bad).unwrap();
        let mut rest = Vec::new();
        let _ = tls.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    }
    eventually("four not understood", || {
        recorder.stats().proxy.not_understood == 4
    });
}

#[test]
fn stopping_removes_the_ca_directory() {
    let recorder = recorder();
    let info = start(&recorder, None);
    assert!(info.ca_bundle_path.exists() && info.ca_cert_path.exists());
    let bundle = std::fs::read_to_string(&info.ca_bundle_path).unwrap();
    let cert = std::fs::read_to_string(&info.ca_cert_path).unwrap();
    assert!(
        bundle.starts_with(&cert),
        "the bundle is the CA, then the system roots"
    );
    let names: Vec<&str> = info.env.iter().map(|(name, _)| *name).collect();
    for name in [
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "https_proxy",
        "http_proxy",
        "NO_PROXY",
        "AWS_CA_BUNDLE",
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    aws_api_call_recorder::runtime::handle()
        .unwrap()
        .block_on(recorder.stop_proxy());
    assert!(!info.ca_dir.exists());
    // Dropping a recorder with a running proxy removes its directory too.
    let recorder2 = self::recorder();
    let info2 = start(&recorder2, None);
    drop(recorder2);
    assert!(!info2.ca_dir.exists());
}
