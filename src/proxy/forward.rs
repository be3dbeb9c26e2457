//! HTTP/1.1 forwarding: request heads are parsed (in place, with `httparse`) only to learn where a
//! message ends and what to record; the bytes themselves go upstream as the client sent them, header
//! order and case included, and the response comes back the same way. Bodies are streamed in
//! bounded pieces (`Content-Length`, chunked, `aws-chunked` inside either, or until close), never
//! held whole. Keep-alive connections carry one request after another.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;

use super::record::{BODY_PREFIX, ERROR_BODY_PREFIX, Outcome, RequestFacts, ResponseFacts};
use super::seen::SeenRequests;
use super::{Destination, Shared};
use crate::intake::epoch_millis;
use crate::stats::Stats;

/// The largest request or response head read.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Headers in one head at most.
const MAX_HEADERS: usize = 128;
/// The largest chunk-size or trailer line.
const MAX_LINE_BYTES: usize = 8 * 1024;
/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Once the response is complete, how long the client may take to finish a request body the
/// upstream did not wait for before the connection is closed.
const UPLOAD_GRACE: Duration = Duration::from_secs(5);

/// A stream the proxy talks to.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A client connection: plain TCP, or TLS the proxy terminated.
pub trait ClientIo: Io + 'static {
    fn tcp(&self) -> &TcpStream;
}

impl ClientIo for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl ClientIo for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// Closes a connection with a TCP reset, which is what a client sees of a refused or reset upstream.
pub fn reset(tcp: &TcpStream) {
    let _ = socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO));
}

/// A reader with its own buffer, so bytes read past one message stay for the next.
pub struct Buffered<R> {
    pub inner: R,
    pub buf: BytesMut,
}

impl<R: AsyncRead + Unpin> Buffered<R> {
    pub fn new(inner: R, buf: BytesMut) -> Self {
        Buffered { inner, buf }
    }

    /// Reads more; 0 at the end of the stream.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        self.inner.read_buf(&mut self.buf).await
    }
}

/// A parsed request head: its bytes, and what forwarding and recording need.
pub struct RequestHead {
    pub bytes: BytesMut,
    pub method: String,
    pub target: String,
    pub host: Option<String>,
    pub framing: Framing,
    pub keep_alive: bool,
    /// Facts for the record; read only when the request is recorded.
    pub facts: Option<RequestFacts>,
}

/// Where a message's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Why a head could not be read.
#[derive(Debug)]
pub enum HeadError {
    /// Not HTTP, too large, or framing that cannot be followed.
    Malformed,
    Io(io::Error),
}

/// Reads one request head; `None` when the client closed between requests.
pub async fn read_request_head<R: AsyncRead + Unpin>(
    reader: &mut Buffered<R>,
    record: impl Fn(&str) -> bool,
) -> Result<Option<RequestHead>, HeadError> {
    loop {
        if !reader.buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(&reader.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let head = request_head(&request, &record)?;
                    let bytes = reader.buf.split_to(len);
                    return Ok(Some(RequestHead { bytes, ..head }));
                }
                Ok(httparse::Status::Partial) if reader.buf.len() < MAX_HEAD_BYTES => {}
                _ => return Err(HeadError::Malformed),
            }
        }
        match reader.fill().await {
            Ok(0) if reader.buf.is_empty() => return Ok(None),
            Ok(0) => return Err(HeadError::Malformed),
            Ok(_) => {}
            Err(e) => return Err(HeadError::Io(e)),
        }
    }
}

fn request_head(
    request: &httparse::Request<'_, '_>,
    record: &impl Fn(&str) -> bool,
) -> Result<RequestHead, HeadError> {
    let method = request.method.unwrap_or_default().to_owned();
    let target = request.path.unwrap_or_default().to_owned();
    let version = request.version.unwrap_or(1);
    let mut host = None;
    let mut length = None;
    let mut chunked = false;
    let mut connection_close = version == 0;
    for header in request.headers.iter() {
        let value = std::str::from_utf8(header.value).map_err(|_| HeadError::Malformed);
        if header.name.eq_ignore_ascii_case("host") {
            host = Some(value?.trim().to_owned());
        } else if header.name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value?.trim().parse().map_err(|_| HeadError::Malformed)?;
            if length.is_some_and(|m| m != n) {
                return Err(HeadError::Malformed);
            }
            length = Some(n);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            let codings = value?.to_ascii_lowercase();
            // Only `chunked` last can be followed (RFC 9112 §6.3); anything else is refused.
            if !codings.trim_end().ends_with("chunked") {
                return Err(HeadError::Malformed);
            }
            chunked = true;
        } else if header.name.eq_ignore_ascii_case("connection") {
            let value = value?.to_ascii_lowercase();
            if value.split(',').any(|t| t.trim() == "close") {
                connection_close = true;
            } else if value.split(',').any(|t| t.trim() == "keep-alive") {
                connection_close = false;
            }
        }
    }
    let framing = if chunked {
        Framing::Chunked
    } else {
        match length {
            Some(0) | None => Framing::None,
            Some(n) => Framing::Length(n),
        }
    };
    let facts_host = authority_host(host.as_deref().unwrap_or(""));
    let facts = record(&facts_host).then(|| {
        let mut facts = RequestFacts::from_head(&method, &facts_host, &target, request.headers);
        facts.started = Some(Instant::now());
        facts.timestamp_ms = epoch_millis();
        facts
    });
    Ok(RequestHead {
        bytes: BytesMut::new(),
        method,
        target,
        host,
        framing,
        keep_alive: !connection_close,
        facts,
    })
}

/// The host of `host[:port]` (or `[v6]:port`), lower case.
pub fn authority_host(authority: &str) -> String {
    let authority = authority.trim();
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                authority
            }
        })
    };
    host.to_ascii_lowercase()
}

/// `host` and `port` of an authority, with a default port.
pub fn split_authority(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let host = authority_host(authority);
    if host.is_empty() {
        return None;
    }
    let port = match authority.trim().rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse().ok()?
        }
        _ => default_port,
    };
    Some((host, port))
}

/// A parsed response head.
struct ResponseHead {
    bytes: BytesMut,
    status: u16,
    framing_hint: (Option<u64>, bool),
    keep_alive: bool,
    facts: ResponseFacts,
}

async fn read_response_head<R: AsyncRead + Unpin>(
    reader: &mut Buffered<R>,
) -> Result<ResponseHead, HeadError> {
    loop {
        if !reader.buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&reader.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = response.code.unwrap_or(0);
                    let mut length = None;
                    let mut chunked = false;
                    let mut close = response.version == Some(0);
                    for header in response.headers.iter() {
                        let value = String::from_utf8_lossy(header.value).to_ascii_lowercase();
                        if header.name.eq_ignore_ascii_case("content-length") {
                            length = Some(value.trim().parse().map_err(|_| HeadError::Malformed)?);
                        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                            chunked = value.trim_end().ends_with("chunked");
                        } else if header.name.eq_ignore_ascii_case("connection") {
                            if value.split(',').any(|t| t.trim() == "close") {
                                close = true;
                            } else if value.split(',').any(|t| t.trim() == "keep-alive") {
                                close = false;
                            }
                        }
                    }
                    let facts = ResponseFacts::from_head(status, response.headers);
                    let bytes = reader.buf.split_to(len);
                    return Ok(ResponseHead {
                        bytes,
                        status,
                        framing_hint: (length, chunked),
                        keep_alive: !close,
                        facts,
                    });
                }
                Ok(httparse::Status::Partial) if reader.buf.len() < MAX_HEAD_BYTES => {}
                _ => return Err(HeadError::Malformed),
            }
        }
        match reader.fill().await {
            Ok(0) if reader.buf.is_empty() => {
                return Err(HeadError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            Ok(0) => return Err(HeadError::Malformed),
            Ok(_) => {}
            Err(e) => return Err(HeadError::Io(e)),
        }
    }
}

/// Which side of a copy failed.
#[derive(Debug)]
pub enum CopyError {
    /// Reading failed or the stream ended early.
    Source(io::Error),
    /// Writing failed.
    Sink(io::Error),
    /// The body's framing was not valid.
    Malformed,
}

/// Keeps the first `limit` body bytes (after framing) when asked to.
struct Capture {
    bytes: Vec<u8>,
    limit: usize,
    /// Body bytes seen, kept or not.
    seen: u64,
}

impl Capture {
    fn none() -> Self {
        Capture::up_to(0)
    }

    fn up_to(limit: usize) -> Self {
        Capture {
            bytes: Vec::new(),
            limit,
            seen: 0,
        }
    }

    /// Whether the whole body was kept.
    fn whole(&self) -> bool {
        self.seen <= self.limit as u64
    }

    fn add(&mut self, data: &[u8]) {
        self.seen += data.len() as u64;
        let room = self.limit - self.bytes.len();
        if room > 0 {
            self.bytes.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
}

enum ChunkState {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

/// Copies one body from `src` to `dst` as it is, its framing followed to find where it ends.
async fn copy_body<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    src: &mut Buffered<R>,
    dst: &mut W,
    framing: Framing,
    capture: &mut Capture,
) -> Result<(), CopyError> {
    match framing {
        Framing::None => return Ok(()),
        Framing::Length(mut left) => {
            while left > 0 {
                if src.buf.is_empty() && fill_or_eof(src).await? {
                    return Err(CopyError::Source(io::ErrorKind::UnexpectedEof.into()));
                }
                let n = src
                    .buf
                    .len()
                    .min(usize::try_from(left).unwrap_or(usize::MAX));
                capture.add(&src.buf[..n]);
                dst.write_all(&src.buf[..n])
                    .await
                    .map_err(CopyError::Sink)?;
                src.buf.advance(n);
                left -= n as u64;
                dst.flush().await.map_err(CopyError::Sink)?;
            }
        }
        Framing::UntilClose => loop {
            if src.buf.is_empty() && fill_or_eof(src).await? {
                break;
            }
            capture.add(&src.buf);
            dst.write_all(&src.buf).await.map_err(CopyError::Sink)?;
            src.buf.clear();
            dst.flush().await.map_err(CopyError::Sink)?;
        },
        Framing::Chunked => {
            let mut state = ChunkState::Size;
            loop {
                let consumed = scan_chunked(&src.buf, &mut state, capture)?;
                if consumed > 0 {
                    dst.write_all(&src.buf[..consumed])
                        .await
                        .map_err(CopyError::Sink)?;
                    src.buf.advance(consumed);
                    dst.flush().await.map_err(CopyError::Sink)?;
                }
                if matches!(state, ChunkState::Done) {
                    break;
                }
                if src.buf.len() > MAX_LINE_BYTES {
                    return Err(CopyError::Malformed);
                }
                if fill_or_eof(src).await? {
                    return Err(CopyError::Source(io::ErrorKind::UnexpectedEof.into()));
                }
            }
        }
    }
    dst.flush().await.map_err(CopyError::Sink)
}

/// Reads more; true at the end of the stream.
async fn fill_or_eof<R: AsyncRead + Unpin>(src: &mut Buffered<R>) -> Result<bool, CopyError> {
    Ok(src.fill().await.map_err(CopyError::Source)? == 0)
}

/// Walks chunked framing over `buf` as far as it goes; returns how many bytes are whole pieces of
/// it (to be forwarded) and leaves `state` where the next bytes continue.
fn scan_chunked(
    buf: &[u8],
    state: &mut ChunkState,
    capture: &mut Capture,
) -> Result<usize, CopyError> {
    let mut pos = 0;
    loop {
        match state {
            ChunkState::Size => {
                let Some(end) = memchr::memchr(b'\n', &buf[pos..]) else {
                    return Ok(pos);
                };
                let line = &buf[pos..pos + end];
                let digits = line
                    .split(|&b| b == b';' || b == b'\r')
                    .next()
                    .unwrap_or_default();
                let digits = std::str::from_utf8(digits)
                    .map_err(|_| CopyError::Malformed)?
                    .trim();
                let size = u64::from_str_radix(digits, 16).map_err(|_| CopyError::Malformed)?;
                pos += end + 1;
                *state = if size == 0 {
                    ChunkState::Trailer
                } else {
                    ChunkState::Data(size)
                };
            }
            ChunkState::Data(left) => {
                let n = (buf.len() - pos).min(usize::try_from(*left).unwrap_or(usize::MAX));
                capture.add(&buf[pos..pos + n]);
                pos += n;
                *left -= n as u64;
                if *left > 0 {
                    return Ok(pos);
                }
                *state = ChunkState::DataEnd;
            }
            ChunkState::DataEnd => match buf.get(pos..pos + 2) {
                Some(b"\r\n") => {
                    pos += 2;
                    *state = ChunkState::Size;
                }
                Some(_) => return Err(CopyError::Malformed),
                None => return Ok(pos),
            },
            ChunkState::Trailer => {
                let Some(end) = memchr::memchr(b'\n', &buf[pos..]) else {
                    return Ok(pos);
                };
                let empty = end == 0 || (end == 1 && buf[pos] == b'\r');
                pos += end + 1;
                if empty {
                    *state = ChunkState::Done;
                }
            }
            ChunkState::Done => return Ok(pos),
        }
    }
}

/// The connection to where requests go.
pub struct Upstream {
    pub destination: Destination,
    reader: Buffered<ReadHalf<Box<dyn Io>>>,
    writer: WriteHalf<Box<dyn Io>>,
}

impl Upstream {
    pub fn new(destination: Destination, stream: Box<dyn Io>) -> Self {
        let (reader, writer) = tokio::io::split(stream);
        Upstream {
            destination,
            reader: Buffered::new(reader, BytesMut::with_capacity(READ_CHUNK)),
            writer,
        }
    }

    /// Whether a kept connection is still open with nothing unasked-for waiting on it: one read is
    /// tried without waiting; pending means open and quiet.
    async fn is_usable(&mut self) -> bool {
        if !self.reader.buf.is_empty() {
            return false;
        }
        let inner = &mut self.reader.inner;
        std::future::poll_fn(|cx| {
            let mut probe = [0u8; 1];
            let mut probe = tokio::io::ReadBuf::new(&mut probe);
            match std::pin::Pin::new(&mut *inner).poll_read(cx, &mut probe) {
                std::task::Poll::Pending => std::task::Poll::Ready(true),
                std::task::Poll::Ready(_) => std::task::Poll::Ready(false),
            }
        })
        .await
    }
}

/// How an exchange ended.
enum Exchange {
    /// Done; the connection may carry another request when `keep_alive`.
    Done { keep_alive: bool },
    /// The upstream answered `101 Switching Protocols`: bytes now flow both ways untouched.
    Upgraded,
    /// The client sent something that is not HTTP: close.
    Malformed,
    /// The upstream failed before answering: the client is reset, as it would have been.
    UpstreamFailed,
    /// The client went away, or the response broke off: close.
    Closed,
}

/// Serves requests on one client connection until it closes. `first` is a head already read;
/// `upstream` a connection already made.
pub async fn serve<C: ClientIo>(
    client: C,
    leftover: BytesMut,
    first: Option<RequestHead>,
    mut upstream: Option<Upstream>,
    route: super::Route,
    shared: Arc<Shared>,
) {
    let (reader, writer) = tokio::io::split(client);
    let mut reader = Buffered::new(reader, leftover);
    let mut writer = writer;
    let mut next = first;
    let record = |host: &str| route.records(host);
    loop {
        let head = match next.take() {
            Some(head) => head,
            None => match read_request_head(&mut reader, record).await {
                Ok(Some(head)) => head,
                Ok(None) | Err(HeadError::Io(_)) => break,
                Err(HeadError::Malformed) => {
                    Stats::add(&shared.stats().not_understood, 1);
                    break;
                }
            },
        };
        Stats::add(&shared.stats().requests, 1);
        let Some(destination) = route.destination(&head, &shared) else {
            Stats::add(&shared.stats().not_understood, 1);
            let _ = writer
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            break;
        };
        match exchange(
            &mut reader,
            &mut writer,
            head,
            destination,
            &mut upstream,
            &shared,
        )
        .await
        {
            Exchange::Done { keep_alive: true } => continue,
            Exchange::Done { keep_alive: false } | Exchange::Closed => break,
            Exchange::Malformed => {
                Stats::add(&shared.stats().not_understood, 1);
                break;
            }
            Exchange::UpstreamFailed => {
                let client = reader.inner.unsplit(writer);
                reset(client.tcp());
                return;
            }
            Exchange::Upgraded => {
                if let Some(up) = upstream.take() {
                    let client = reader.inner.unsplit(writer);
                    let upstream = up.reader.inner.unsplit(up.writer);
                    super::server::tunnel(client, reader.buf, upstream, up.reader.buf).await;
                }
                return;
            }
        }
    }
    let _ = writer.shutdown().await;
}

/// Forwards one request and its response.
async fn exchange<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    client_reader: &mut Buffered<R>,
    client_writer: &mut W,
    head: RequestHead,
    destination: Destination,
    upstream: &mut Option<Upstream>,
    shared: &Arc<Shared>,
) -> Exchange {
    let RequestHead {
        bytes,
        method,
        framing,
        keep_alive: request_keep_alive,
        facts,
        ..
    } = head;
    let reuse = match upstream.as_mut() {
        Some(up) if up.destination == destination => up.is_usable().await,
        _ => false,
    };
    if !reuse {
        *upstream = None;
        match shared.connect(&destination).await {
            Ok(stream) => *upstream = Some(Upstream::new(destination, stream)),
            Err(error) => {
                Stats::add(&shared.stats().upstream_failed, 1);
                if let Some(facts) = facts {
                    shared.record_failure(facts, &error);
                }
                return Exchange::UpstreamFailed;
            }
        }
    }
    let up = upstream.as_mut().expect("connected above");
    if let Err(error) = up.writer.write_all(&bytes).await {
        Stats::add(&shared.stats().upstream_failed, 1);
        *upstream = None;
        if let Some(facts) = facts {
            shared.record_failure(facts, &error);
        }
        return Exchange::UpstreamFailed;
    }
    drop(bytes);
    let wants_body = facts.as_ref().is_some_and(|f| f.wants_body);
    let mut body = if wants_body {
        Capture::up_to(BODY_PREFIX)
    } else {
        Capture::none()
    };
    let is_head = method.eq_ignore_ascii_case("HEAD");
    let recorded = facts.is_some().then_some(&shared.intake.proxied);
    let (upload_done, downloaded) = match transfer(
        client_reader,
        client_writer,
        up,
        framing,
        &mut body,
        is_head,
        recorded,
    )
    .await
    {
        Transfer::Both {
            upload_done,
            relayed,
        } => (upload_done, relayed),
        Transfer::ClientBrokeOff { malformed } => {
            *upstream = None;
            return if malformed {
                Exchange::Malformed
            } else {
                Exchange::Closed
            };
        }
    };
    if let Some(mut facts) = facts {
        facts.set_body_prefix(&body.bytes, body.whole());
        let outcome = match &downloaded {
            Ok(response) => response.outcome.clone(),
            Err(error) => failure_outcome(&error.to_string()),
        };
        shared.record(facts, outcome);
    }
    match downloaded {
        Ok(response) if response.upgraded => Exchange::Upgraded,
        Ok(response) => {
            let keep_alive = request_keep_alive && response.keep_alive && upload_done;
            if !keep_alive {
                *upstream = None;
            }
            Exchange::Done { keep_alive }
        }
        Err(RelayError::NoResponse(_)) => {
            Stats::add(&shared.stats().upstream_failed, 1);
            *upstream = None;
            Exchange::UpstreamFailed
        }
        Err(RelayError::Broken(_)) => {
            Stats::add(&shared.stats().upstream_failed, 1);
            *upstream = None;
            Exchange::Closed
        }
        Err(RelayError::ClientGone) => {
            *upstream = None;
            Exchange::Closed
        }
    }
}

enum Transfer {
    Both {
        upload_done: bool,
        relayed: Result<Relayed, RelayError>,
    },
    /// The client stopped sending its body, or sent bad framing.
    ClientBrokeOff { malformed: bool },
}

/// Streams the request body up and the response down at once (a client may wait for
/// `100 Continue`, and an upstream may answer before the body is in).
async fn transfer<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    client_reader: &mut Buffered<R>,
    client_writer: &mut W,
    up: &mut Upstream,
    framing: Framing,
    form: &mut Capture,
    is_head: bool,
    recorded: Option<&SeenRequests>,
) -> Transfer {
    let upload = copy_body(client_reader, &mut up.writer, framing, form);
    let download = relay_response(&mut up.reader, client_writer, is_head, recorded);
    tokio::pin!(upload, download);
    let mut uploaded = None;
    let relayed = loop {
        tokio::select! {
            result = &mut upload, if uploaded.is_none() => {
                match result {
                    Err(CopyError::Source(_)) => return Transfer::ClientBrokeOff { malformed: false },
                    Err(CopyError::Malformed) => return Transfer::ClientBrokeOff { malformed: true },
                    other => uploaded = Some(other.is_ok()),
                }
            }
            result = &mut download => break result,
        }
    };
    let upload_done = match uploaded {
        Some(done) => done,
        None => matches!(
            tokio::time::timeout(UPLOAD_GRACE, &mut upload).await,
            Ok(Ok(()))
        ),
    };
    Transfer::Both {
        upload_done,
        relayed,
    }
}

/// The outcome of an attempt that got no response.
pub fn failure_outcome(message: &str) -> Outcome {
    Outcome {
        sdk_exception: Some(("ProxyUpstreamError".to_owned(), message.to_owned())),
        ..Default::default()
    }
}

struct Relayed {
    outcome: Outcome,
    keep_alive: bool,
    upgraded: bool,
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    /// The upstream closed or failed before any response.
    #[error("no response from upstream: {0}")]
    NoResponse(String),
    /// The response broke off, or was not valid HTTP.
    #[error("response from upstream broke off: {0}")]
    Broken(String),
    #[error("the client closed the connection")]
    ClientGone,
}

/// Relays the response (interim `1xx` heads first) from the upstream to the client. A recorded
/// response's request ids are noted in `recorded` before the client can see them.
async fn relay_response<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    up: &mut Buffered<R>,
    client: &mut W,
    is_head: bool,
    recorded: Option<&SeenRequests>,
) -> Result<Relayed, RelayError> {
    let mut interim = false;
    loop {
        let head = match read_response_head(up).await {
            Ok(head) => head,
            Err(HeadError::Io(e)) if !interim => return Err(RelayError::NoResponse(e.to_string())),
            Err(HeadError::Io(e)) => return Err(RelayError::Broken(e.to_string())),
            Err(HeadError::Malformed) => {
                return Err(RelayError::Broken("not an HTTP response".to_owned()));
            }
        };
        if let Some(seen) = recorded {
            let facts = &head.facts;
            for id in [&facts.amzn_request_id, &facts.amz_request_id]
                .into_iter()
                .flatten()
            {
                seen.saw(id);
            }
        }
        client
            .write_all(&head.bytes)
            .await
            .map_err(|_| RelayError::ClientGone)?;
        if (100..200).contains(&head.status) && head.status != 101 {
            client.flush().await.map_err(|_| RelayError::ClientGone)?;
            interim = true;
            continue;
        }
        if head.status == 101 {
            client.flush().await.map_err(|_| RelayError::ClientGone)?;
            return Ok(Relayed {
                outcome: head.facts.outcome(&[]),
                keep_alive: false,
                upgraded: true,
            });
        }
        let framing = if is_head || head.status == 204 || head.status == 304 {
            Framing::None
        } else {
            match head.framing_hint {
                (_, true) => Framing::Chunked,
                (Some(0), false) => Framing::None,
                (Some(n), false) => Framing::Length(n),
                (None, false) => Framing::UntilClose,
            }
        };
        let mut capture = if recorded.is_some() && head.status >= 300 {
            Capture::up_to(ERROR_BODY_PREFIX)
        } else {
            Capture::none()
        };
        match copy_body(up, client, framing, &mut capture).await {
            Ok(()) => {}
            Err(CopyError::Sink(_)) => return Err(RelayError::ClientGone),
            Err(CopyError::Source(e)) => return Err(RelayError::Broken(e.to_string())),
            Err(CopyError::Malformed) => {
                return Err(RelayError::Broken("bad chunked framing".to_owned()));
            }
        }
        return Ok(Relayed {
            outcome: head.facts.outcome(&capture.bytes),
            keep_alive: head.keep_alive && framing != Framing::UntilClose,
            upgraded: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(input: &[u8]) -> (usize, bool, Vec<u8>) {
        let mut state = ChunkState::Size;
        let mut capture = Capture::up_to(1024);
        let n = scan_chunked(input, &mut state, &mut capture).unwrap();
        (n, matches!(state, ChunkState::Done), capture.bytes)
    }

    #[test]
    fn chunked_framing_is_followed_to_its_end() {
        let body = b"5;chunk-signature=abc\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAA\r\n\r\nNEXT";
        let (n, done, data) = scan_all(body);
        assert!(done);
        assert_eq!(&body[n..], b"NEXT");
        assert_eq!(data, b"hello");
        // Cut anywhere, it continues where it stopped.
        for cut in 0..body.len() - 4 {
            let mut state = ChunkState::Size;
            let mut capture = Capture::none();
            let first = scan_chunked(&body[..cut], &mut state, &mut capture).unwrap();
            let rest = scan_chunked(&body[first..], &mut state, &mut capture).unwrap();
            assert!(matches!(state, ChunkState::Done), "cut at {cut}");
            assert_eq!(first + rest, body.len() - 4);
        }
        let mut state = ChunkState::Size;
        assert!(scan_chunked(b"zz\r\n", &mut state, &mut Capture::none()).is_err());
        let mut state = ChunkState::Size;
        assert!(scan_chunked(b"1\r\nab\r\n", &mut state, &mut Capture::none()).is_err());
    }

    #[test]
    fn authorities() {
        assert_eq!(
            split_authority("s3.amazonaws.com:443", 80),
            Some(("s3.amazonaws.com".into(), 443))
        );
        assert_eq!(
            split_authority("Example.COM", 80),
            Some(("example.com".into(), 80))
        );
        assert_eq!(
            split_authority("[::1]:8080", 80),
            Some(("::1".into(), 8080))
        );
        assert_eq!(split_authority("", 80), None);
    }
}
