//! The recording proxy over real loopback sockets: tunnels pass untouched, AWS hosts are decrypted
//! with the run's CA and forwarded byte for byte, failures reach the client as they would without
//! the proxy, and records carry no secret.

mod proxy_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use proxy_support::*;
use serde_json::Value;

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

#[test]
fn plain_http_proxy_requests_to_aws_hosts_are_forwarded_and_recorded() {
    let server = upstream(OK, 1 << 20);
    let recorder = recorder();
    let info = start(&recorder, Some(format!("http://{}", server.addr)));
    let mut stream = TcpStream::connect(info.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Absolute-form, as a client sends a plain-HTTP request to its proxy; forwarded as it is.
    let sent = format!(
        "GET http://sqs.eu-west-1.amazonaws.com/?Action=ListQueues&Version=2012-11-05 HTTP/1.1\r\nHost: sqs.eu-west-1.amazonaws.com\r\nAuthorization: {}\r\n\r\n",
        AUTHORIZATION.replace("us-east-1", "eu-west-1")
    );
    stream.write_all(sent.as_bytes()).unwrap();
    let (status, _) = read_response(&mut stream);
    assert_eq!(status, 200);
    assert_eq!(
        server.received.lock().unwrap().as_slice(),
        &[sent.into_bytes()]
    );
    eventually("the call's records", || records(&recorder).len() == 2);
    let call = &records(&recorder)[1];
    assert_eq!(
        (
            &call["Type"],
            &call["Service"],
            &call["Api"],
            &call["Region"]
        ),
        (
            &Value::from("ApiCall"),
            &Value::from("sqs"),
            &Value::from("ListQueues"),
            &Value::from("eu-west-1")
        )
    );
    assert_eq!(recorder.stats().proxy.decrypted, 0);
    assert_eq!(recorder.stats().proxy.requests, 1);
}

#[test]
fn held_events_wait_with_their_request_parts_and_never_a_credential() {
    let server = upstream(OK, 1 << 20);
    let recorder = recorder();
    recorder
        .start_proxy(aws_api_call_recorder::proxy::ProxyOptions {
            upstream: Some(format!("http://{}", server.addr)),
            hold_for_naming: true,
            ..Default::default()
        })
        .unwrap();
    let info = recorder.proxy_info().unwrap();
    let host = "dynamodb.us-east-1.amazonaws.com";
    let (stream, _) = connect(info.address, &format!("{host}:443"));
    let mut tls = tls_client(stream, host, &ca_roots(&info));
    let body = r#"{"TableName":"ünïcode-table","Item":{"id":{"S":"1"}}}"#;
    let request = format!(
        "POST /?X-Amz-Signature={SIGNATURE}&keep=1 HTTP/1.1\r\nHost: {host}\r\nX-Amz-Target: DynamoDB_20120810.PutItem\r\nX-Amz-Security-Token: {TOKEN}\r\nAuthorization: {AUTHORIZATION}\r\nCookie: session=1\r\nX-Custom: a\r\nx-custom: b\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).unwrap();
    assert_eq!(read_response(&mut tls).0, 200);

    let events = std::sync::Mutex::new(Vec::new());
    eventually("the held events", || {
        let mut events = events.lock().unwrap();
        events.extend(recorder.take_proxy_events());
        events.len() == 2
    });
    let events = events.into_inner().unwrap();
    // Held, not recorded: the caller records them once named.
    assert!(records(&recorder).is_empty());
    for event in &events {
        let parts = &event.request;
        assert_eq!(parts.method, "POST");
        assert_eq!(parts.target, "/?keep=1");
        assert_eq!(parts.host, host);
        assert_eq!(parts.body.as_deref(), Some(body));
        let names: Vec<&str> = parts.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "host",
                "x-amz-target",
                "x-custom",
                "content-type",
                "content-length"
            ]
        );
        assert_eq!(parts.headers[2].1, "a, b");
        let debug = format!("{parts:?}{}", event.json);
        for secret in [TOKEN, SIGNATURE, "session=1"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }
    assert!(recorder.take_proxy_events().is_empty());
}
