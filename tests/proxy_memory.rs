//! The proxy streams a large body in bounded memory. Alone in its own test binary: resident memory
//! is the whole process's, which other tests running beside it would change.

mod proxy_support;

use std::io::Write;

use proxy_support::*;

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
    eprintln!("resident memory grew {grown_mib} MiB while 256 MiB went through the proxy");
    assert!(
        grown_mib < 48,
        "RSS grew {grown_mib} MiB for a 256 MiB body"
    );
}
