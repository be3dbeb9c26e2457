//! The recording proxy: an HTTP proxy on 127.0.0.1 that programs reach through `HTTPS_PROXY` and
//! `HTTP_PROXY`. `CONNECT` tunnels to AWS endpoints are decrypted with a certificate made for the
//! host by the run's own CA ([`ca`]); every request in them is forwarded unchanged ([`forward`]) to
//! the real endpoint or to an upstream URL, and recorded as CSM events ([`record`]) through the
//! recorder's intake, like datagrams. Tunnels to any other host pass through untouched
//! ([`server`]).

pub mod ca;
pub mod forward;
pub mod record;
pub mod seen;
pub mod server;

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::crypto::CryptoProvider;
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::ca::{CaFiles, CertificateAuthority};
use self::forward::{Io, RequestHead};
use self::record::{CallTracker, Outcome, ProxyEvent, RequestFacts};
use crate::error::{Coded, ErrorCode};
use crate::intake::{Intake, epoch_millis};
use crate::stats::{ProxyCounters, RecordingPath, Stats};

/// How long connecting to an upstream may take (TCP and TLS), before the client is reset.
pub const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often calls left waiting for a retry are checked.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Warnings kept for the caller to take, at most.
const MAX_WARNINGS: usize = 64;
/// Events waiting to be named, at most; past it they are recorded as they are.
pub const MAX_EVENTS_TO_NAME: usize = 10_000;

/// Why the proxy cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    #[error("invalid upstream URL {url:?}: {reason}")]
    Upstream { url: String, reason: &'static str },
    #[error("cannot make the proxy's certificates: {0}")]
    Certificate(String),
    #[error("cannot write the proxy's CA files in {path}: {source}")]
    Files {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen for proxy connections on tcp 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    #[error("the proxy is already running")]
    Running,
}

impl Coded for ProxyError {
    fn code(&self) -> ErrorCode {
        match self {
            ProxyError::Upstream { .. } => ErrorCode::Config,
            _ => ErrorCode::Proxy,
        }
    }
}

/// How to start the proxy.
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    /// `http://host:port` or `https://host:port`: every decrypted request goes there instead of to
    /// the endpoint it names, unchanged (its `Host` header and signature included).
    pub upstream: Option<String>,
    /// The directory the private CA directory is made in (default: the system's temporary one).
    pub ca_parent: Option<PathBuf>,
    /// The caller names each event before it is recorded: events wait in the recorder's
    /// [`NamingQueue`] with their request, to be taken and ingested again.
    pub hold_for_naming: bool,
}

/// Events waiting for the caller to name them (the service models and the IAM table are in the
/// package's JavaScript): taken with their requests, then ingested by the caller. Bounded: when it
/// is full an event is recorded as it is and counted (`unnamed`), never lost.
#[derive(Debug, Default)]
pub struct NamingQueue {
    events: Mutex<VecDeque<ProxyEvent>>,
}

impl NamingQueue {
    /// Queues `event`, or gives it back when the queue is full.
    fn push(&self, event: ProxyEvent) -> Option<ProxyEvent> {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        if events.len() >= MAX_EVENTS_TO_NAME {
            return Some(event);
        }
        events.push_back(event);
        None
    }

    /// Every waiting event, oldest first.
    pub fn take(&self) -> Vec<ProxyEvent> {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        events.drain(..).collect()
    }
}

/// Where requests are sent: a host, a port, and whether TLS is spoken there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl Destination {
    /// Parses `http://host[:port][/]` or `https://...`.
    pub fn from_url(url: &str) -> Result<Self, ProxyError> {
        let invalid = |reason| ProxyError::Upstream {
            url: url.to_owned(),
            reason,
        };
        let (tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err(invalid("it must start with http:// or https://"));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(invalid("it must be a scheme, a host and a port only"));
        }
        let (host, port) = forward::split_authority(authority, if tls { 443 } else { 80 })
            .ok_or_else(|| invalid("it names no host"))?;
        Ok(Destination { host, port, tls })
    }
}

/// How the requests of one client connection are routed.
#[derive(Debug, Clone)]
pub enum Route {
    /// A decrypted `CONNECT` tunnel to an AWS host: every request goes there (or upstream).
    Intercepted { host: String, port: u16 },
    /// Plain proxy requests (`GET http://host/...`): each names its own destination.
    Plain,
}

impl Route {
    /// Whether the requests to `host` on this route are recorded.
    fn records(&self, host: &str) -> bool {
        match self {
            Route::Intercepted { .. } => true,
            Route::Plain => ca::is_aws_host(host),
        }
    }

    fn destination(&self, head: &RequestHead, shared: &Shared) -> Option<Destination> {
        match self {
            Route::Intercepted { host, port } => {
                Some(shared.upstream.clone().unwrap_or_else(|| Destination {
                    host: host.clone(),
                    port: *port,
                    tls: true,
                }))
            }
            Route::Plain => {
                let rest = head.target.strip_prefix("http://")?;
                let authority = rest.split(['/', '?']).next()?;
                let (host, port) = forward::split_authority(authority, 80)?;
                match &shared.upstream {
                    Some(upstream) if ca::is_aws_host(&host) => Some(upstream.clone()),
                    _ => Some(Destination {
                        host,
                        port,
                        tls: false,
                    }),
                }
            }
        }
    }
}

/// What every connection of one proxy shares.
pub struct Shared {
    intake: Arc<Intake>,
    ca: CertificateAuthority,
    upstream: Option<Destination>,
    client_tls: Arc<rustls::ClientConfig>,
    calls: CallTracker,
    naming: Option<Arc<NamingQueue>>,
    warnings: Mutex<Vec<String>>,
    warned_hosts: Mutex<HashSet<String>>,
}

impl Shared {
    fn stats(&self) -> &ProxyCounters {
        &self.intake.stats.proxy
    }

    /// Connects to `destination`, TLS included, within [`UPSTREAM_CONNECT_TIMEOUT`].
    async fn connect(&self, destination: &Destination) -> std::io::Result<Box<dyn Io>> {
        let connect = async {
            let tcp = TcpStream::connect((destination.host.as_str(), destination.port)).await?;
            let _ = tcp.set_nodelay(true);
            if !destination.tls {
                return Ok(Box::new(tcp) as Box<dyn Io>);
            }
            let name = rustls::pki_types::ServerName::try_from(destination.host.clone())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            let tls = tokio_rustls::TlsConnector::from(self.client_tls.clone())
                .connect(name, tcp)
                .await?;
            Ok(Box::new(tls) as Box<dyn Io>)
        };
        match tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, connect).await {
            Ok(result) => result,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "connecting to {}:{} took over {} s",
                    destination.host,
                    destination.port,
                    UPSTREAM_CONNECT_TIMEOUT.as_secs()
                ),
            )),
        }
    }

    fn record(&self, facts: RequestFacts, outcome: Outcome) {
        let events = self.calls.attempt_finished(facts, outcome, Instant::now());
        self.ingest(events);
    }

    fn record_failure(&self, facts: RequestFacts, error: &std::io::Error) {
        self.record(facts, forward::failure_outcome(&error.to_string()));
    }

    fn ingest(&self, events: Vec<ProxyEvent>) {
        let now = epoch_millis();
        for event in events {
            let unnamed = match &self.naming {
                Some(queue) => match queue.push(event) {
                    None => continue,
                    Some(event) => {
                        Stats::add(&self.stats().unnamed, 1);
                        event
                    }
                },
                None => event,
            };
            self.intake
                .accept_in_process(RecordingPath::Proxy, unnamed.json.as_bytes(), now, None);
        }
    }

    /// One warning per host whose client refused the run's certificate.
    fn warn_refused(&self, host: &str, alert: &str) {
        let first = self
            .warned_hosts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_owned());
        if !first {
            return;
        }
        let message = format!(
            "a client refused the recording proxy's certificate for {host} (TLS alert: {alert}): it \
             does not trust the run's CA, so its calls to {host} are not recorded and fail. Point it \
             at the CA bundle through the variable it reads (AWS_CA_BUNDLE, SSL_CERT_FILE, \
             REQUESTS_CA_BUNDLE or NODE_EXTRA_CA_CERTS), or run without the proxy (--no-proxy)"
        );
        let mut warnings = self.warnings.lock().unwrap_or_else(|p| p.into_inner());
        if warnings.len() < MAX_WARNINGS {
            warnings.push(message);
        }
    }
}

/// A running proxy. Dropping it stops accepting and removes the CA files.
pub struct Proxy {
    address: SocketAddr,
    files: CaFiles,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    /// The variables a program needs to use the proxy and trust its CA, in order.
    env: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("address", &self.address)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// The proxy variables, each in both cases (programs read one or the other).
const PROXY_VARIABLES: [&str; 4] = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"];
/// Never proxied: loopback, and the EC2 instance metadata and ECS container credentials addresses
/// (credentials, not API calls; they must reach the host itself).
const NO_PROXY_VARIABLES: [&str; 2] = ["NO_PROXY", "no_proxy"];
pub const NO_PROXY_HOSTS: &str = "127.0.0.1,localhost,::1,169.254.169.254,169.254.170.2";
/// The CA bundle variables: the aws CLI and botocore, Go and OpenSSL, Python requests, Node.js.
const BUNDLE_VARIABLES: [&str; 3] = ["AWS_CA_BUNDLE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"];
/// Node.js adds these certificates to its own roots; the CA alone is enough.
const NODE_CA_VARIABLE: &str = "NODE_EXTRA_CA_CERTS";

impl Proxy {
    /// Makes the CA and its files, binds 127.0.0.1 on a free port and starts serving on `runtime`.
    /// With `hold_for_naming`, events wait in `naming` for the caller.
    pub fn start(
        options: ProxyOptions,
        intake: Arc<Intake>,
        naming: Arc<NamingQueue>,
        runtime: &Handle,
    ) -> Result<Self, ProxyError> {
        let upstream = options
            .upstream
            .as_deref()
            .map(Destination::from_url)
            .transpose()?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let ca = CertificateAuthority::new(provider.clone())?;
        let (roots_pem, roots) = ca::read_roots(&ca::system_roots_path());
        let parent = options.ca_parent.unwrap_or_else(std::env::temp_dir);
        let files = CaFiles::write(&parent, ca.cert_pem(), &roots_pem)?;
        let client_tls = client_config(provider, roots)?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(ProxyError::Bind)?;
        listener.set_nonblocking(true).map_err(ProxyError::Bind)?;
        let address = listener.local_addr().map_err(ProxyError::Bind)?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(ProxyError::Bind)?
        };
        let shared = Arc::new(Shared {
            calls: CallTracker::new(intake.drop_access_key),
            naming: options.hold_for_naming.then_some(naming),
            intake,
            ca,
            upstream,
            client_tls,
            warnings: Mutex::new(Vec::new()),
            warned_hosts: Mutex::new(HashSet::new()),
        });
        let cancel = CancellationToken::new();
        let task = runtime.spawn(server::accept_loop(
            listener,
            shared.clone(),
            cancel.clone(),
            SWEEP_EVERY,
        ));
        let env = proxy_env(address, &files);
        Ok(Proxy {
            address,
            files,
            cancel,
            task: Some(task),
            shared,
            env,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn ca_dir(&self) -> &Path {
        self.files.dir()
    }

    pub fn ca_cert_path(&self) -> &Path {
        self.files.cert_path()
    }

    pub fn ca_bundle_path(&self) -> &Path {
        self.files.bundle_path()
    }

    /// The variables a program sets to record through the proxy.
    pub fn env(&self) -> &[(&'static str, String)] {
        &self.env
    }

    /// Warnings since the last call (clients that refused the CA), oldest first.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .shared
                .warnings
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        )
    }

    /// Stops accepting, closes the connections, records the calls still waiting for a retry and
    /// removes the CA files.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let events = self.shared.calls.close();
        self.shared.ingest(events);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn proxy_env(address: SocketAddr, files: &CaFiles) -> Vec<(&'static str, String)> {
    let url = format!("http://{address}");
    let bundle = files.bundle_path().display().to_string();
    let mut env: Vec<(&'static str, String)> = Vec::new();
    env.extend(PROXY_VARIABLES.iter().map(|name| (*name, url.clone())));
    env.extend(
        NO_PROXY_VARIABLES
            .iter()
            .map(|name| (*name, NO_PROXY_HOSTS.to_owned())),
    );
    env.extend(BUNDLE_VARIABLES.iter().map(|name| (*name, bundle.clone())));
    env.push((NODE_CA_VARIABLE, files.cert_path().display().to_string()));
    env
}

/// TLS to real endpoints (and to an https upstream): the system's roots, HTTP/1.1.
fn client_config(
    provider: Arc<CryptoProvider>,
    roots: Vec<rustls::pki_types::CertificateDer<'static>>,
) -> Result<Arc<rustls::ClientConfig>, ProxyError> {
    let mut store = rustls::RootCertStore::empty();
    let _ = store.add_parsable_certificates(roots);
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ProxyError::Certificate(e.to_string()))?
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_naming_queue_is_bounded_and_gives_back_what_does_not_fit() {
        let queue = NamingQueue::default();
        let event = |n: usize| ProxyEvent {
            json: format!("{{\"n\":{n}}}"),
            request: Arc::default(),
        };
        for n in 0..MAX_EVENTS_TO_NAME {
            assert!(queue.push(event(n)).is_none());
        }
        let refused = queue
            .push(event(MAX_EVENTS_TO_NAME))
            .expect("the queue is full");
        assert_eq!(refused.json, format!("{{\"n\":{MAX_EVENTS_TO_NAME}}}"));
        let taken = queue.take();
        assert_eq!(taken.len(), MAX_EVENTS_TO_NAME);
        assert_eq!(taken[0].json, "{\"n\":0}");
        assert!(queue.take().is_empty());
        assert!(queue.push(event(0)).is_none());
    }

    #[test]
    fn upstream_urls() {
        assert_eq!(
            Destination::from_url("http://127.0.0.1:5000").unwrap(),
            Destination {
                host: "127.0.0.1".into(),
                port: 5000,
                tls: false
            }
        );
        assert_eq!(
            Destination::from_url("https://localhost.localstack.cloud/").unwrap(),
            Destination {
                host: "localhost.localstack.cloud".into(),
                port: 443,
                tls: true
            }
        );
        for bad in [
            "127.0.0.1:5000",
            "http://",
            "http://h:1/path",
            "ftp://h",
            "http://u@h",
        ] {
            let error = Destination::from_url(bad).unwrap_err();
            assert_eq!(error.code(), ErrorCode::Config, "{bad}");
        }
    }
}
