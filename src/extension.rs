//! Delivery after the response, as a Lambda internal extension.
//!
//! Lambda freezes an execution environment only once the runtime and every registered extension
//! have asked for the next event. Registered as an extension of the runtime's own process, the
//! recorder lets the function respond as soon as its handler settles, and delivers that
//! invocation's records before asking for the next event: invocation N+1 cannot begin before that,
//! so attribution stays exact. Every path asks for the next event by the invocation's deadline
//! (minus a margin), whatever the sink does.
//!
//! Where the environment is never frozen (Lambda Managed Instances, many invocations at once),
//! Lambda refuses INVOKE registrations: the extension registers for SHUTDOWN, records are
//! delivered in the background (bounded in time and count), and at SHUTDOWN whatever is left is
//! delivered within the shutdown budget.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use tokio::sync::Notify;

use crate::error::{Coded, ErrorCode};
use crate::recorder::{FlushReport, Recorder};

/// Kept back from an invocation's deadline: the extension has asked for the next event by then.
pub use crate::limits::DEADLINE_MARGIN;
/// How long after an INVOKE event the wrapper has to begin running the handler. A function whose
/// handler is not the wrapper (a module that wraps another export) is not held until its deadline.
pub const UNWRAPPED_GRACE: Duration = Duration::from_millis(1000);
/// Longest pause between retries of a failed request for the next event.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Bound on releases waiting for their INVOKE event (one is usual).
const MAX_PENDING_RELEASES: usize = 64;
use crate::limits::{BACKGROUND_DELIVERY_INTERVAL, BACKGROUND_DELIVERY_RECORDS};

/// Whether Lambda freezes the environment between invocations, which decides how records are
/// delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// On-demand Lambda: one invocation at a time, frozen in between; delivery after each response.
    Frozen,
    /// Lambda Managed Instances: invocations overlap and the environment is never frozen;
    /// delivery in the background and at SHUTDOWN.
    NeverFrozen,
}

impl Lifecycle {
    /// The lifecycle the Lambda environment variables describe.
    pub fn of_environment() -> Self {
        Self::from_vars(
            std::env::var("AWS_LAMBDA_INITIALIZATION_TYPE")
                .ok()
                .as_deref(),
            std::env::var_os("AWS_LAMBDA_MAX_CONCURRENCY").is_some(),
        )
    }

    fn from_vars(initialization_type: Option<&str>, max_concurrency_set: bool) -> Self {
        if initialization_type == Some("lambda-managed-instances") || max_concurrency_set {
            Lifecycle::NeverFrozen
        } else {
            Lifecycle::Frozen
        }
    }

    /// What the wrapper is told: `afterResponse` or `background`.
    pub fn delivery(self) -> &'static str {
        match self {
            Lifecycle::Frozen => "afterResponse",
            Lifecycle::NeverFrozen => "background",
        }
    }

    /// The events to register for: an internal extension cannot have SHUTDOWN on on-demand Lambda,
    /// and cannot have INVOKE where the environment is never frozen.
    fn events_body(self) -> &'static str {
        match self {
            Lifecycle::Frozen => r#"{"events":["INVOKE"]}"#,
            Lifecycle::NeverFrozen => r#"{"events":["SHUTDOWN"]}"#,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExtensionError {
    #[error("cannot reach the Lambda Extensions API at {api}: {source}")]
    Http {
        api: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("cannot read the Lambda Extensions API's answer: {0}")]
    Body(#[source] hyper::Error),
    #[error("the Lambda Extensions API refused {what} ({status}): {message}")]
    Refused {
        what: &'static str,
        status: StatusCode,
        message: String,
    },
    #[error("the Lambda Extensions API sent an event that cannot be read: {0}")]
    Event(#[source] serde_json::Error),
    #[error("the Lambda Extensions API did not answer the registration within {0:?}")]
    Timeout(Duration),
    #[error("invalid Lambda runtime API address {0:?}")]
    Address(String),
    #[error("the recorder's runtime is gone")]
    RuntimeGone,
}

impl Coded for ExtensionError {
    fn code(&self) -> ErrorCode {
        ErrorCode::Extension
    }
}

/// What the extension hears from the wrapper: invocation `invocation` (the recorder's id) of Lambda
/// request `request_id` has settled; its datagrams are all sent, and the barrier may take until
/// `drain_until`.
#[derive(Debug, Clone)]
struct Release {
    invocation: u64,
    drain_until: Instant,
}

/// The records the extension could not deliver since last asked, for the wrapper to warn about.
#[derive(Debug, Default, Clone)]
pub struct Undelivered {
    pub failed: u64,
    pub records: u64,
    pub error: Option<String>,
}

/// A registered internal extension, shared by its event loop and the wrapper.
#[derive(Debug)]
pub struct LambdaExtension {
    releases: Mutex<HashMap<String, Release>>,
    /// Requests whose handler the wrapper has begun running.
    started: Mutex<HashSet<String>>,
    released: Notify,
    running: AtomicBool,
    stopped_because: Mutex<Option<String>>,
    /// The last error of the Extensions API, for diagnostics.
    last_error: Mutex<Option<String>>,
    undelivered: Mutex<Undelivered>,
    /// Held by a background delivery while it runs: the SHUTDOWN delivery waits for it, so the
    /// process does not end in the middle of one.
    delivering: tokio::sync::Mutex<()>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    event_type: String,
    #[serde(default)]
    deadline_ms: Option<u64>,
    #[serde(default)]
    request_id: Option<String>,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct ExtensionsApi {
    api: String,
    http: HttpClient,
}

impl ExtensionsApi {
    fn new(api: &str) -> Result<Self, ExtensionError> {
        if api.is_empty() || api.contains('/') || api.chars().any(char::is_whitespace) {
            return Err(ExtensionError::Address(api.to_owned()));
        }
        let http = Client::builder(TokioExecutor::new())
            // The environment may be frozen for minutes between requests; a pooled connection is
            // only reused when it is still open.
            .pool_idle_timeout(None)
            .build_http();
        Ok(ExtensionsApi {
            api: api.to_owned(),
            http,
        })
    }

    async fn send(
        &self,
        request: Request<Full<Bytes>>,
        what: &'static str,
    ) -> Result<(hyper::http::response::Parts, Bytes), ExtensionError> {
        let response = self
            .http
            .request(request)
            .await
            .map_err(|source| ExtensionError::Http {
                api: self.api.clone(),
                source,
            })?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(ExtensionError::Body)?
            .to_bytes();
        if !parts.status.is_success() {
            let message = String::from_utf8_lossy(&body);
            return Err(ExtensionError::Refused {
                what,
                status: parts.status,
                message: message
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect(),
            });
        }
        Ok((parts, body))
    }

    /// Registers for the events of `lifecycle`; returns the extension's identifier.
    async fn register(&self, name: &str, lifecycle: Lifecycle) -> Result<String, ExtensionError> {
        let request = Request::post(format!("http://{}/2020-01-01/extension/register", self.api))
            .header("Lambda-Extension-Name", name)
            .header("Content-Type", "application/json")
            .body(Full::new(Bytes::from_static(
                lifecycle.events_body().as_bytes(),
            )))
            .map_err(|_| ExtensionError::Address(self.api.clone()))?;
        let (parts, _) = self.send(request, "the registration").await?;
        parts
            .headers
            .get("lambda-extension-identifier")
            .and_then(|id| id.to_str().ok())
            .map(str::to_owned)
            .ok_or(ExtensionError::Refused {
                what: "the registration",
                status: parts.status,
                message: "no Lambda-Extension-Identifier in the answer".into(),
            })
    }

    /// Waits for the next event (the environment may be frozen meanwhile).
    async fn next_event(&self, id: &str) -> Result<Event, ExtensionError> {
        let request = Request::get(format!(
            "http://{}/2020-01-01/extension/event/next",
            self.api
        ))
        .header("Lambda-Extension-Identifier", id)
        .body(Full::new(Bytes::new()))
        .map_err(|_| ExtensionError::Address(self.api.clone()))?;
        let (_, body) = self.send(request, "the request for the next event").await?;
        serde_json::from_slice(&body).map_err(ExtensionError::Event)
    }
}

/// A registration sent and not yet answered ([`LambdaExtension::begin_registration`]).
pub struct PendingRegistration {
    answer: std::sync::mpsc::Receiver<Result<Arc<LambdaExtension>, ExtensionError>>,
    deadline: Instant,
    timeout: Duration,
    lifecycle: Lifecycle,
}

impl PendingRegistration {
    /// Blocks the calling thread until Lambda has answered the registration or its timeout passed.
    ///
    /// Blocking on purpose: Lambda accepts registrations only during init, which ends when the
    /// runtime first asks for an invocation; waiting before the caller's init returns cannot lose
    /// that race.
    pub fn finish(self) -> Result<Arc<LambdaExtension>, ExtensionError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let extension = self
            .answer
            .recv_timeout(left)
            .map_err(|error| match error {
                std::sync::mpsc::RecvTimeoutError::Timeout => ExtensionError::Timeout(self.timeout),
                std::sync::mpsc::RecvTimeoutError::Disconnected => ExtensionError::RuntimeGone,
            })??;
        // On the caller's thread, as the SIGTERM handlers of the JS side are installed after it.
        #[cfg(unix)]
        if self.lifecycle == Lifecycle::NeverFrozen {
            sigterm::hold_until_delivered();
        }
        Ok(extension)
    }
}

impl LambdaExtension {
    /// Registers an internal extension named `name` with the Extensions API at `api` (host:port,
    /// as in `AWS_LAMBDA_RUNTIME_API`), blocking the calling thread until Lambda has answered or
    /// `timeout` passed. Its event loop runs on the recorder's runtime.
    pub fn register(
        recorder: Arc<Recorder>,
        api: &str,
        name: &str,
        timeout: Duration,
        lifecycle: Lifecycle,
    ) -> Result<Arc<LambdaExtension>, ExtensionError> {
        Self::begin_registration(recorder, api, name, timeout, lifecycle)?.finish()
    }

    /// Sends the registration on the recorder's runtime and returns at once; the caller does
    /// other init work (loading the function) meanwhile and then waits with
    /// [`PendingRegistration::finish`]. Once Lambda accepts, the extension's event loop starts
    /// whether or not anyone waits: a registered extension that never asked for its next event would
    /// keep Lambda's init from ending.
    pub fn begin_registration(
        recorder: Arc<Recorder>,
        api: &str,
        name: &str,
        timeout: Duration,
        lifecycle: Lifecycle,
    ) -> Result<PendingRegistration, ExtensionError> {
        let client = ExtensionsApi::new(api)?;
        let runtime = recorder.runtime().clone();
        let (sender, answer) = std::sync::mpsc::channel();
        let name = name.to_owned();
        runtime.spawn(async move {
            let registered = client.register(&name, lifecycle).await;
            let _ = sender
                .send(registered.map(|id| LambdaExtension::start(recorder, client, id, lifecycle)));
        });
        Ok(PendingRegistration {
            answer,
            deadline: Instant::now() + timeout,
            timeout,
            lifecycle,
        })
    }

    /// The registered extension, its event loop (and, where the environment is never frozen, its
    /// background delivery) started on the current runtime.
    fn start(
        recorder: Arc<Recorder>,
        client: ExtensionsApi,
        id: String,
        lifecycle: Lifecycle,
    ) -> Arc<LambdaExtension> {
        let extension = Arc::new(LambdaExtension {
            releases: Mutex::new(HashMap::new()),
            started: Mutex::new(HashSet::new()),
            released: Notify::new(),
            running: AtomicBool::new(true),
            stopped_because: Mutex::new(None),
            last_error: Mutex::new(None),
            undelivered: Mutex::new(Undelivered::default()),
            delivering: tokio::sync::Mutex::new(()),
        });
        if lifecycle == Lifecycle::NeverFrozen {
            tokio::spawn(deliver_in_background(extension.clone(), recorder.clone()));
        }
        tokio::spawn(event_loop(extension.clone(), recorder, client, id));
        extension
    }

    /// The wrapper's word that invocation `invocation` of request `request_id` has settled and its
    /// datagrams are sent; the barrier may take up to `drain`.
    pub fn release(&self, invocation: u64, request_id: &str, drain: Duration) {
        let release = Release {
            invocation,
            drain_until: Instant::now() + drain,
        };
        let mut releases = lock(&self.releases);
        // Releases the event loop never takes (it stopped) must not pile up.
        if releases.len() >= MAX_PENDING_RELEASES {
            releases.clear();
        }
        releases.insert(request_id.to_owned(), release);
        drop(releases);
        self.released.notify_waiters();
    }

    /// The wrapper's word that it began running the handler for request `request_id`.
    pub fn started(&self, request_id: &str) {
        let mut started = lock(&self.started);
        if started.len() >= MAX_PENDING_RELEASES {
            started.clear();
        }
        started.insert(request_id.to_owned());
        drop(started);
        self.released.notify_waiters();
    }

    /// The last error of the Extensions API, if any (the event loop retries after one).
    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// Whether the event loop still runs (it ends only at shutdown).
    pub fn running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// Why the event loop stopped, once it has.
    pub fn stopped_because(&self) -> Option<String> {
        lock(&self.stopped_because).clone()
    }

    /// Takes the count of records not delivered since the last call.
    pub fn take_undelivered(&self) -> Undelivered {
        std::mem::take(&mut *lock(&self.undelivered))
    }

    /// Waits for the release of `request_id` until `until`; gives up after [`UNWRAPPED_GRACE`]
    /// when the wrapper has not even begun the request.
    async fn released(&self, request_id: &str, until: Instant) -> Option<Release> {
        let grace_until = (Instant::now() + UNWRAPPED_GRACE).min(until);
        loop {
            let notified = self.released.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(release) = lock(&self.releases).remove(request_id) {
                lock(&self.started).remove(request_id);
                return Some(release);
            }
            let begun = lock(&self.started).contains(request_id);
            let wait_until = if begun { until } else { grace_until };
            if tokio::time::timeout_at(wait_until.into(), notified)
                .await
                .is_err()
            {
                let release = lock(&self.releases).remove(request_id);
                let begun = lock(&self.started).contains(request_id);
                if release.is_some() || !begun || Instant::now() >= until {
                    lock(&self.started).remove(request_id);
                    return release;
                }
            }
        }
    }

    fn count(&self, report: &FlushReport) {
        if report.failed == 0 {
            return;
        }
        let mut undelivered = lock(&self.undelivered);
        undelivered.failed += report.failed;
        undelivered.records += report.records;
        if report.error.is_some() {
            undelivered.error = report.error.clone();
        }
    }
}

async fn event_loop(
    extension: Arc<LambdaExtension>,
    recorder: Arc<Recorder>,
    client: ExtensionsApi,
    id: String,
) {
    let mut failures: u32 = 0;
    let stopped = loop {
        let event = match client.next_event(&id).await {
            Ok(event) => {
                failures = 0;
                event
            }
            Err(error) => {
                // Lambda waits for every registered extension before it freezes or invokes again,
                // so giving up would stall the function: retry, backing off up to a second.
                *lock(&extension.last_error) = Some(error.to_string());
                failures = failures.saturating_add(1);
                let backoff = Duration::from_millis(10u64 << failures.min(7)).min(MAX_BACKOFF);
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        match event.event_type.as_str() {
            "INVOKE" => {
                let report = after_invocation(&extension, &recorder, &event).await;
                extension.count(&report);
            }
            "SHUTDOWN" => {
                // The background delivery stops taking records: this flush delivers the rest.
                extension.running.store(false, Ordering::Release);
                let _delivering = extension.delivering.lock().await;
                let deadline = event
                    .deadline_ms
                    .map_or_else(Instant::now, instant_of_epoch_ms);
                let report = recorder
                    .flush(crate::recorder::FlushOptions {
                        drain: Duration::ZERO,
                        deadline,
                    })
                    .await;
                extension.count(&report);
                #[cfg(unix)]
                sigterm::delivered();
                break "the environment shuts down".to_owned();
            }
            // Events of later versions of the API: nothing to do for them.
            _ => {}
        }
    };
    *lock(&extension.stopped_because) = Some(stopped);
    extension.running.store(false, Ordering::Release);
}

/// Delivers what is buffered whenever [`BACKGROUND_DELIVERY_RECORDS`] are, and at least every
/// [`BACKGROUND_DELIVERY_INTERVAL`] while any are, until the event loop stops (at SHUTDOWN, which
/// delivers the rest). Runs on the recorder's runtime, off the JS threads.
async fn deliver_in_background(extension: Arc<LambdaExtension>, recorder: Arc<Recorder>) {
    let mut due = Instant::now() + BACKGROUND_DELIVERY_INTERVAL;
    while extension.running() {
        let arrived = recorder.arrived().notified();
        let _ = tokio::time::timeout_at(due.into(), arrived).await;
        let buffered = recorder.buffered();
        let now = Instant::now();
        if buffered >= BACKGROUND_DELIVERY_RECORDS || (now >= due && buffered > 0) {
            let _delivering = extension.delivering.lock().await;
            if !extension.running() {
                break;
            }
            let deadline = now + recorder.config().flush_timeout;
            let report = recorder.deliver_buffered(deadline).await;
            extension.count(&report);
        }
        if Instant::now() >= due {
            due = Instant::now() + BACKGROUND_DELIVERY_INTERVAL;
        }
    }
}

/// Waits for the wrapper to release the invocation, proves its datagrams arrived, ends it and
/// delivers: all by the invocation's deadline less the margin.
async fn after_invocation(
    extension: &LambdaExtension,
    recorder: &Recorder,
    event: &Event,
) -> FlushReport {
    let config = recorder.config();
    let limit = event
        .deadline_ms
        .map(|ms| {
            instant_of_epoch_ms(ms)
                .checked_sub(DEADLINE_MARGIN)
                .unwrap_or_else(Instant::now)
        })
        // Without a deadline (never so in Lambda), the flush timeout bounds the wait.
        .unwrap_or_else(|| Instant::now() + config.flush_timeout);
    let release = match &event.request_id {
        Some(request_id) => extension.released(request_id, limit).await,
        None => None,
    };
    let Some(release) = release else {
        // The handler has not settled by the deadline (the function is timing out), or the
        // wrapper did not run: deliver what was recorded so far.
        return recorder
            .flush(crate::recorder::FlushOptions {
                drain: Duration::ZERO,
                deadline: limit,
            })
            .await;
    };
    let drain_until = release.drain_until.min(limit);
    let deliver_by = limit.min(Instant::now() + config.flush_timeout);
    let receiver = recorder.local_addr();
    let settled = async move {
        if let Some(receiver) = receiver {
            crate::barrier::pass(receiver, drain_until).await;
        }
    };
    recorder
        .finish_invocation_when(release.invocation, settled, deliver_by)
        .await
}

/// The instant of a wall-clock time in epoch milliseconds, as Lambda gives deadlines.
fn instant_of_epoch_ms(epoch_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let now = Instant::now();
    if epoch_ms >= now_ms {
        now + Duration::from_millis(epoch_ms - now_ms)
    } else {
        now.checked_sub(Duration::from_millis(now_ms - epoch_ms))
            .unwrap_or(now)
    }
}

/// Lambda sends SHUTDOWN to the extension and SIGTERM to the process at once; Node.js's own
/// handler (or the default action) would end the process before the SHUTDOWN delivery. Where the
/// environment is never frozen (no JS of the recorder runs on the main thread there, the only one
/// SIGTERM reaches), a SIGTERM that arrives first is held until that delivery is done, then handed
/// to the handler it would have reached. Only async-signal-safe calls in the handler.
#[cfg(unix)]
mod sigterm {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, Ordering};

    static RECEIVED: AtomicBool = AtomicBool::new(false);
    static DELIVERED: AtomicBool = AtomicBool::new(false);
    /// The disposition SIGTERM had before: Node.js's, a listener's (libuv) or the default.
    static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

    extern "C" fn on_sigterm(_: libc::c_int) {
        RECEIVED.store(true, Ordering::SeqCst);
        if DELIVERED.load(Ordering::SeqCst) {
            pass_on();
        }
    }

    fn pass_on() {
        let Some(previous) = PREVIOUS.get() else {
            return;
        };
        // SAFETY: sigaction and raise are async-signal-safe; `previous` was read by sigaction.
        unsafe {
            libc::sigaction(libc::SIGTERM, previous, std::ptr::null_mut());
            libc::raise(libc::SIGTERM);
        }
    }

    /// Holds SIGTERM until [`delivered`].
    pub fn hold_until_delivered() {
        // SAFETY: a zeroed sigaction filled in by the kernel, then a handler that touches atomics
        // and async-signal-safe calls only.
        unsafe {
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGTERM, std::ptr::null(), &mut previous) != 0 {
                return;
            }
            if PREVIOUS.set(previous).is_err() {
                return;
            }
            let mut hold: libc::sigaction = std::mem::zeroed();
            hold.sa_sigaction = on_sigterm as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut hold.sa_mask);
            libc::sigaction(libc::SIGTERM, &hold, std::ptr::null_mut());
        }
    }

    /// The SHUTDOWN delivery is done: a SIGTERM held, or one to come, goes where it would have.
    pub fn delivered() {
        DELIVERED.store(true, Ordering::SeqCst);
        if RECEIVED.load(Ordering::SeqCst) {
            pass_on();
        }
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::Lifecycle;

    #[test]
    fn managed_instances_are_never_frozen() {
        assert_eq!(
            Lifecycle::from_vars(Some("on-demand"), false),
            Lifecycle::Frozen
        );
        assert_eq!(Lifecycle::from_vars(None, false), Lifecycle::Frozen);
        assert_eq!(
            Lifecycle::from_vars(Some("lambda-managed-instances"), false),
            Lifecycle::NeverFrozen
        );
        assert_eq!(
            Lifecycle::from_vars(Some("on-demand"), true),
            Lifecycle::NeverFrozen
        );
        assert!(Lifecycle::NeverFrozen.events_body().contains("SHUTDOWN"));
        assert!(!Lifecycle::NeverFrozen.events_body().contains("INVOKE"));
    }
}
