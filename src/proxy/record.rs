//! Requests seen by the proxy, as CSM events in the schema SDKs send: an `ApiCallAttempt` per
//! request and an `ApiCall` per call. Attempts of one call are grouped by the SDK's
//! `amz-sdk-invocation-id` (with `amz-sdk-request: attempt=N; max=M`) where it sends them; any other
//! request is a call of its own.
//!
//! What is read from a request: the SigV4 credential scope (access key id, date, region, service;
//! from `Authorization` or a presigned URL's `X-Amz-Credential`), `x-amz-target`, the `Action` of a
//! query-protocol request, the user agent and the SDK's invocation headers. From a response: the
//! status, the request ids and the error code and message (from `x-amzn-ErrorType` or a bounded
//! prefix of the error body). Never kept: bodies, the `Authorization` header, the signature,
//! `x-amz-security-token`.
//!
//! Naming a REST operation and reading its input back (which resources it names) takes the service
//! models and the IAM table, which the package's JavaScript holds: each event can therefore carry
//! the request's [`RequestParts`] to the caller that names it (see [`super::NamingQueue`]). The parts
//! leave out every secret header and signature parameter; a JSON or form body is included only
//! whole and within [`BODY_PREFIX`], in memory, to be read for identifiers and dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

/// How much of an error response body is read for its code and message.
pub const ERROR_BODY_PREFIX: usize = 4096;
/// How much of a JSON or form-encoded request body is kept: a form's `Action` is read from it, and
/// a body within it is given to the naming of the call.
pub const BODY_PREFIX: usize = 16 * 1024;
/// Request headers never given to anyone: credentials.
const SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "x-amz-security-token",
    "cookie",
];
/// The CSM limits on the text fields the SDKs cut (botocore, aws-sdk v2).
const MAX_MESSAGE_CHARS: usize = 512;
const MAX_USER_AGENT_CHARS: usize = 256;
const MAX_FIELD_CHARS: usize = 128;
/// A call whose last attempt could be retried is closed this long after it, if no attempt follows.
pub const PENDING_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Calls awaiting a retry at most; beyond it the oldest are closed at once.
const MAX_PENDING_CALLS: usize = 10_000;

/// What the record needs from a request head (no secret is ever copied here).
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    pub host: String,
    pub service: Option<String>,
    pub region: Option<String>,
    pub access_key: Option<String>,
    pub api: Option<String>,
    pub user_agent: Option<String>,
    pub invocation_id: Option<String>,
    pub attempt: Option<u32>,
    pub max_attempts: Option<u32>,
    /// A form-encoded body without an `Action` in the query: its prefix is read for one.
    pub wants_form_action: bool,
    /// A JSON or form-encoded body: its first [`BODY_PREFIX`] bytes are kept.
    pub wants_body: bool,
    pub started: Option<Instant>,
    pub timestamp_ms: u64,
    /// What naming the call needs from the request.
    pub parts: Arc<RequestParts>,
}

/// The parts of a request its operation and input are read from: never a credential header, a
/// signature or a security token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestParts {
    pub method: String,
    /// The path and query as sent, without signature and token parameters.
    pub target: String,
    pub host: String,
    /// Lower-case names, in the order sent (repeated headers joined with `, `).
    pub headers: Vec<(String, String)>,
    /// A JSON or form body that ended within [`BODY_PREFIX`] (lossy UTF-8).
    pub body: Option<String>,
}

/// One event the proxy made, with the request it was made from.
#[derive(Debug, Clone)]
pub struct ProxyEvent {
    pub json: String,
    pub request: Arc<RequestParts>,
}

/// What the record needs from a response head and error body.
#[derive(Debug, Clone, Default)]
pub struct ResponseFacts {
    pub status: Option<u16>,
    pub error_type: Option<String>,
    pub amzn_request_id: Option<String>,
    pub amz_request_id: Option<String>,
    pub amz_id2: Option<String>,
}

/// How an attempt ended.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub status: Option<u16>,
    pub aws_exception: Option<String>,
    pub aws_exception_message: Option<String>,
    /// The attempt got no response: the upstream could not be reached or broke off.
    pub sdk_exception: Option<(String, String)>,
    /// The response's request ids (`x-amz-request-id`, `x-amzn-RequestId`, `x-amz-id-2`).
    pub amz_request_id: Option<String>,
    pub amzn_request_id: Option<String>,
    pub amz_id2: Option<String>,
}

impl RequestFacts {
    /// Reads the facts from a parsed request head.
    pub fn from_head(
        method: &str,
        host: &str,
        target: &str,
        headers: &[httparse::Header<'_>],
    ) -> Self {
        let mut facts = RequestFacts {
            host: host.to_owned(),
            ..Default::default()
        };
        let mut parts = RequestParts {
            method: method.to_owned(),
            target: without_secret_parameters(target),
            host: host.to_owned(),
            ..Default::default()
        };
        let mut form = false;
        for header in headers {
            let name = header.name;
            let Ok(value) = std::str::from_utf8(header.value) else {
                continue;
            };
            parts.add_header(name, value);
            if name.eq_ignore_ascii_case("authorization") {
                if let Some(scope) = credential_in_authorization(value) {
                    facts.set_scope(scope);
                }
            } else if name.eq_ignore_ascii_case("x-amz-target") {
                facts.api = value.rsplit('.').next().map(clip_field);
            } else if name.eq_ignore_ascii_case("user-agent") {
                facts.user_agent = Some(clip(value, MAX_USER_AGENT_CHARS));
            } else if name.eq_ignore_ascii_case("amz-sdk-invocation-id") {
                facts.invocation_id = Some(clip_field(value.trim()));
            } else if name.eq_ignore_ascii_case("amz-sdk-request") {
                for part in value.split(';') {
                    let (key, number) = part.trim().split_once('=').unwrap_or(("", ""));
                    match key.trim() {
                        "attempt" => facts.attempt = number.trim().parse().ok(),
                        "max" => facts.max_attempts = number.trim().parse().ok(),
                        _ => {}
                    }
                }
            } else if name.eq_ignore_ascii_case("content-type") {
                let kind = value.trim_start().to_ascii_lowercase();
                form = kind.starts_with("application/x-www-form-urlencoded");
                facts.wants_body = form || kind.contains("json");
            }
        }
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        for (key, value) in query_pairs(query) {
            if key == "X-Amz-Credential" && facts.access_key.is_none() {
                if let Some(scope) = parse_scope(&value) {
                    facts.set_scope(scope);
                }
            } else if key == "Action" && facts.api.is_none() {
                facts.api = Some(clip_field(&value));
            }
        }
        facts.wants_form_action = form && facts.api.is_none();
        if facts.service.is_none() {
            facts.service = service_from_host(host);
        }
        if facts.region.is_none() {
            facts.region = region_from_host(host);
        }
        facts.parts = Arc::new(parts);
        facts
    }

    fn set_scope(&mut self, scope: Scope<'_>) {
        self.access_key = Some(clip_field(scope.access_key));
        self.region = Some(clip_field(scope.region));
        self.service = Some(clip_field(scope.service));
    }

    /// Takes what the body's first bytes tell: a form's `Action`, and the body itself for the
    /// naming when it ended within them (`whole`).
    pub fn set_body_prefix(&mut self, prefix: &[u8], whole: bool) {
        if !self.wants_body {
            return;
        }
        if self.wants_form_action && self.api.is_none() {
            let text = String::from_utf8_lossy(prefix);
            // The last pair may be cut by the prefix bound: only a pair followed by `&` is whole,
            // unless the body ended within the prefix.
            let mut pairs: Vec<&str> = text.split('&').collect();
            if !whole {
                pairs.pop();
            }
            if let Some(value) = pairs.iter().find_map(|pair| pair.strip_prefix("Action=")) {
                self.api = Some(clip_field(&percent_decode(value)));
            }
        }
        if whole && !prefix.is_empty() {
            Arc::make_mut(&mut self.parts).body =
                Some(String::from_utf8_lossy(prefix).into_owned());
        }
    }
}

impl RequestParts {
    fn add_header(&mut self, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        if SECRET_HEADERS.contains(&name.as_str()) {
            return;
        }
        match self.headers.iter_mut().find(|(known, _)| *known == name) {
            Some((_, joined)) => {
                joined.push_str(", ");
                joined.push_str(value.trim());
            }
            None => self.headers.push((name, value.trim().to_owned())),
        }
    }
}

/// A request target without the query parameters that carry a signature or a security token.
fn without_secret_parameters(target: &str) -> String {
    let Some((path, query)) = target.split_once('?') else {
        return target.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let key = percent_decode(pair.split_once('=').map_or(*pair, |(k, _)| k));
            !is_secret_parameter(&key)
        })
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

fn is_secret_parameter(key: &str) -> bool {
    ["X-Amz-Signature", "Signature", "X-Amz-Security-Token"]
        .iter()
        .any(|secret| key.eq_ignore_ascii_case(secret))
}

impl ResponseFacts {
    pub fn from_head(status: u16, headers: &[httparse::Header<'_>]) -> Self {
        let mut facts = ResponseFacts {
            status: Some(status),
            ..Default::default()
        };
        for header in headers {
            let Ok(value) = std::str::from_utf8(header.value) else {
                continue;
            };
            let value = value.trim();
            let name = header.name;
            if name.eq_ignore_ascii_case("x-amzn-errortype") {
                // `Code:http://internal...` or `Code`
                let code = value.split(':').next().unwrap_or(value);
                facts.error_type = Some(clip_field(code));
            } else if name.eq_ignore_ascii_case("x-amzn-requestid")
                || name.eq_ignore_ascii_case("x-amzn-request-id")
            {
                facts.amzn_request_id = Some(clip_field(value));
            } else if name.eq_ignore_ascii_case("x-amz-request-id") {
                facts.amz_request_id = Some(clip_field(value));
            } else if name.eq_ignore_ascii_case("x-amz-id-2") {
                facts.amz_id2 = Some(clip(value, MAX_MESSAGE_CHARS));
            }
        }
        facts
    }

    /// The attempt's outcome, with the error code and message from the header or the body prefix.
    pub fn outcome(&self, error_body: &[u8]) -> Outcome {
        let status = self.status;
        let mut outcome = Outcome {
            status,
            amz_request_id: self.amz_request_id.clone(),
            amzn_request_id: self.amzn_request_id.clone(),
            amz_id2: self.amz_id2.clone(),
            ..Default::default()
        };
        if status.is_some_and(|s| s >= 300) {
            let (code, message) = error_from_body(error_body);
            outcome.aws_exception = self.error_type.clone().or(code);
            outcome.aws_exception_message = message;
        }
        outcome
    }
}

/// The parts of a SigV4 credential scope the record keeps.
struct Scope<'a> {
    access_key: &'a str,
    region: &'a str,
    service: &'a str,
}

/// `AKID/20250101/us-east-1/s3/aws4_request`.
fn parse_scope(credential: &str) -> Option<Scope<'_>> {
    let mut parts = credential.trim().split('/');
    let access_key = parts.next()?;
    let _date = parts.next()?;
    let region = parts.next()?;
    let service = parts.next()?;
    (parts.next()? == "aws4_request" && !access_key.is_empty() && !service.is_empty()).then_some(
        Scope {
            access_key,
            region,
            service,
        },
    )
}

/// The `Credential=` of a SigV4 `Authorization` header; nothing else of the header is read.
fn credential_in_authorization(value: &str) -> Option<Scope<'_>> {
    let rest = value.trim().strip_prefix("AWS4-")?;
    let start = rest.find("Credential=")? + "Credential=".len();
    let credential = rest[start..].split([',', ' ']).next()?;
    parse_scope(credential)
}

fn service_from_host(host: &str) -> Option<String> {
    let labels: Vec<&str> = host.split('.').collect();
    if labels.iter().any(|l| l.eq_ignore_ascii_case("s3")) {
        return Some("s3".to_owned());
    }
    labels
        .first()
        .filter(|l| !l.is_empty())
        .map(|l| clip_field(l))
}

fn region_from_host(host: &str) -> Option<String> {
    host.split('.')
        .find(|label| {
            let parts: Vec<&str> = label.split('-').collect();
            parts.len() >= 3
                && parts[0].len() == 2
                && parts.last().is_some_and(|n| n.parse::<u8>().is_ok())
        })
        .map(clip_field)
}

/// The code and message of an error body: JSON (`__type`/`code`, `message`) or XML (`<Code>`,
/// `<Message>`). Only the prefix given is read.
fn error_from_body(body: &[u8]) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(trimmed) {
            let field = |names: &[&str]| {
                names.iter().find_map(|name| {
                    map.iter()
                        .find(|(key, _)| key.eq_ignore_ascii_case(name))
                        .and_then(|(_, v)| v.as_str())
                })
            };
            let code = field(&["__type", "code"])
                .map(|c| c.rsplit('#').next().unwrap_or(c))
                .map(|c| c.split(':').next().unwrap_or(c))
                .map(clip_field);
            let message = field(&["message", "errorMessage"]).map(|m| clip(m, MAX_MESSAGE_CHARS));
            return (code, message);
        }
        return (None, None);
    }
    if trimmed.starts_with('<') {
        let element = |name: &str| {
            let open = format!("<{name}>");
            let start = text.find(&open)? + open.len();
            let end = text[start..].find('<')? + start;
            Some(xml_unescape(&text[start..end]))
        };
        let code = element("Code").map(|c| clip_field(&c));
        let message = element("Message").map(|m| clip(&m, MAX_MESSAGE_CHARS));
        return (code, message);
    }
    (None, None)
}

fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// `key=value` pairs of a query string, percent-decoded. Values of signature parameters are never
/// decoded or returned.
fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key);
        if is_secret_parameter(&key) {
            return None;
        }
        Some((key, percent_decode(value)))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn clip(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => text[..at].to_owned(),
        None => text.to_owned(),
    }
}

fn clip_field(text: &str) -> String {
    clip(text, MAX_FIELD_CHARS)
}

/// Whether an SDK would try an attempt that ended so again (5xx, throttling, no response).
fn retryable(outcome: &Outcome) -> bool {
    const THROTTLING: &[&str] = &[
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
    ];
    outcome.sdk_exception.is_some()
        || outcome.status.is_some_and(|s| s >= 500 || s == 429)
        || outcome
            .aws_exception
            .as_deref()
            .is_some_and(|code| THROTTLING.contains(&code))
}

/// A call awaiting a possible retry.
#[derive(Debug)]
struct PendingCall {
    facts: RequestFacts,
    first_started: Instant,
    last_seen: Instant,
    attempts: u32,
    outcome: Outcome,
}

/// Builds the events and groups attempts into calls.
#[derive(Debug)]
pub struct CallTracker {
    pending: Mutex<HashMap<String, PendingCall>>,
    drop_access_key: bool,
}

impl CallTracker {
    pub fn new(drop_access_key: bool) -> Self {
        CallTracker {
            pending: Mutex::new(HashMap::new()),
            drop_access_key,
        }
    }

    /// The events one finished attempt gives: its `ApiCallAttempt`, then the `ApiCall` of every
    /// call that ends with it or has waited too long for a retry.
    pub fn attempt_finished(
        &self,
        facts: RequestFacts,
        outcome: Outcome,
        now: Instant,
    ) -> Vec<ProxyEvent> {
        let started = facts.started.unwrap_or(now);
        let mut events = vec![self.attempt_event(&facts, &outcome, now - started)];
        let mut pending = self.lock();
        events.extend(Self::expired(&mut pending, now));
        let Some(id) = facts.invocation_id.clone() else {
            events.push(call_event(&facts, &outcome, 1, now - started, false));
            return events;
        };
        let entry = pending.remove(&id);
        let (first_started, attempts) = match entry {
            Some(call) => (call.first_started, call.attempts + 1),
            None => (started, 1),
        };
        let attempts = facts.attempt.map_or(attempts, |n| n.max(attempts));
        let exhausted = facts.max_attempts.is_some_and(|max| attempts >= max);
        if !retryable(&outcome) || exhausted {
            let max_exceeded = exhausted && retryable(&outcome);
            events.push(call_event(
                &facts,
                &outcome,
                attempts,
                now - first_started,
                max_exceeded,
            ));
        } else {
            if pending.len() >= MAX_PENDING_CALLS {
                events.extend(Self::close_all(&mut pending));
            }
            pending.insert(
                id,
                PendingCall {
                    facts,
                    first_started,
                    last_seen: now,
                    attempts,
                    outcome,
                },
            );
        }
        events
    }

    /// The `ApiCall` of every call that has waited for a retry longer than
    /// [`PENDING_CALL_TIMEOUT`].
    pub fn sweep(&self, now: Instant) -> Vec<ProxyEvent> {
        Self::expired(&mut self.lock(), now)
    }

    /// The `ApiCall` of every call still waiting for a retry (the proxy stops).
    pub fn close(&self) -> Vec<ProxyEvent> {
        Self::close_all(&mut self.lock())
    }

    fn expired(pending: &mut HashMap<String, PendingCall>, now: Instant) -> Vec<ProxyEvent> {
        let ids: Vec<String> = pending
            .iter()
            .filter(|(_, call)| now.duration_since(call.last_seen) >= PENDING_CALL_TIMEOUT)
            .map(|(id, _)| id.clone())
            .collect();
        ids.into_iter()
            .filter_map(|id| pending.remove(&id))
            .map(|call| pending_call_event(&call))
            .collect()
    }

    fn close_all(pending: &mut HashMap<String, PendingCall>) -> Vec<ProxyEvent> {
        let mut calls: Vec<PendingCall> = pending.drain().map(|(_, call)| call).collect();
        calls.sort_by_key(|call| call.first_started);
        calls.iter().map(pending_call_event).collect()
    }

    fn attempt_event(
        &self,
        facts: &RequestFacts,
        outcome: &Outcome,
        latency: Duration,
    ) -> ProxyEvent {
        let mut event = Event::default();
        event.push("Version", 1);
        event.push("Type", "ApiCallAttempt");
        common_fields(&mut event, facts);
        event.push("Timestamp", facts.timestamp_ms);
        event.push("Fqdn", clip_field(&facts.host));
        if let Some(key) = facts.access_key.as_ref().filter(|_| !self.drop_access_key) {
            event.push("AccessKey", key.clone());
        }
        if let Some(status) = outcome.status {
            event.push("HttpStatusCode", status);
        }
        insert_opt(&mut event, "XAmzRequestId", &outcome.amz_request_id);
        insert_opt(&mut event, "XAmznRequestId", &outcome.amzn_request_id);
        insert_opt(&mut event, "XAmzId2", &outcome.amz_id2);
        insert_opt(&mut event, "AwsException", &outcome.aws_exception);
        insert_opt(
            &mut event,
            "AwsExceptionMessage",
            &outcome.aws_exception_message,
        );
        if let Some((name, message)) = &outcome.sdk_exception {
            event.push("SdkException", name.clone());
            event.push("SdkExceptionMessage", message.clone());
        }
        event.push("AttemptLatency", millis(latency));
        finish(event, facts)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingCall>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn pending_call_event(call: &PendingCall) -> ProxyEvent {
    let latency = call.last_seen.duration_since(call.first_started);
    let exhausted = call
        .facts
        .max_attempts
        .is_some_and(|max| call.attempts >= max);
    call_event(
        &call.facts,
        &call.outcome,
        call.attempts,
        latency,
        exhausted,
    )
}

fn call_event(
    facts: &RequestFacts,
    outcome: &Outcome,
    attempts: u32,
    latency: Duration,
    max_retries_exceeded: bool,
) -> ProxyEvent {
    let mut event = Event::default();
    event.push("Version", 1);
    event.push("Type", "ApiCall");
    common_fields(&mut event, facts);
    event.push("Timestamp", facts.timestamp_ms);
    event.push("AttemptCount", attempts);
    if let Some(status) = outcome.status {
        event.push("FinalHttpStatusCode", status);
    }
    insert_opt(&mut event, "FinalAwsException", &outcome.aws_exception);
    insert_opt(
        &mut event,
        "FinalAwsExceptionMessage",
        &outcome.aws_exception_message,
    );
    if let Some((name, message)) = &outcome.sdk_exception {
        event.push("FinalSdkException", name.clone());
        event.push("FinalSdkExceptionMessage", message.clone());
    }
    event.push("Latency", millis(latency));
    event.push("MaxRetriesExceeded", u8::from(max_retries_exceeded));
    finish(event, facts)
}

fn common_fields(event: &mut Event, facts: &RequestFacts) {
    insert_opt(event, "Service", &facts.service);
    insert_opt(event, "Api", &facts.api);
    insert_opt(event, "Region", &facts.region);
    insert_opt(event, "UserAgent", &facts.user_agent);
    if facts.api.is_none() {
        // The operation is not known from the request head; naming it needs the service models.
        event.push("ApiUnknown", true);
    }
}

/// An event's fields in the order SDKs write them.
#[derive(Default)]
struct Event(Vec<(&'static str, Value)>);

impl Event {
    fn push(&mut self, name: &'static str, value: impl Into<Value>) {
        self.0.push((name, value.into()));
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

fn insert_opt(event: &mut Event, name: &'static str, value: &Option<String>) {
    if let Some(value) = value {
        event.push(name, value.clone());
    }
}

fn finish(event: Event, facts: &RequestFacts) -> ProxyEvent {
    ProxyEvent {
        json: serde_json::to_string(&event).expect("an event serializes"),
        request: facts.parts.clone(),
    }
}

fn millis(duration: Duration) -> u64 {
    duration.as_millis().min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(name: &'a str, value: &'a str) -> httparse::Header<'a> {
        httparse::Header {
            name,
            value: value.as_bytes(),
        }
    }

    #[test]
    fn scope_gives_key_region_and_service_and_nothing_secret() {
        let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/eu-west-1/sqs/aws4_request, SignedHeaders=host;x-amz-date, Signature=deadbeefcafe";
        let facts = RequestFacts::from_head(
            "POST",
            "sqs.eu-west-1.amazonaws.com",
            "/",
            &[
                header("Authorization", auth),
                header("X-Amz-Target", "AmazonSQS.CreateQueue"),
                header("X-Amz-Security-Token", "TOKENSECRET"),
            ],
        );
        assert_eq!(facts.access_key.as_deref(), Some("AKIDEXAMPLE"));
        assert_eq!(facts.region.as_deref(), Some("eu-west-1"));
        assert_eq!(facts.service.as_deref(), Some("sqs"));
        assert_eq!(facts.api.as_deref(), Some("CreateQueue"));
        let debug = format!("{facts:?}");
        assert!(!debug.contains("deadbeef") && !debug.contains("TOKENSECRET"));
        // The parts given to the naming keep the other headers, lower case, and no credential.
        let names: Vec<&str> = facts
            .parts
            .headers
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(names, ["x-amz-target"]);
        assert_eq!(facts.parts.method, "POST");
    }

    #[test]
    fn presigned_urls_give_their_scope_but_never_their_signature() {
        let target = "/bucket/key?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDP%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=abc123secret&X-Amz-Security-Token=tok";
        let facts = RequestFacts::from_head("GET", "bucket.s3.amazonaws.com", target, &[]);
        assert_eq!(facts.access_key.as_deref(), Some("AKIDP"));
        assert_eq!(facts.service.as_deref(), Some("s3"));
        let pairs: Vec<_> = query_pairs(target.split_once('?').unwrap().1).collect();
        assert!(pairs.iter().all(|(_, v)| v != "abc123secret" && v != "tok"));
        assert_eq!(
            facts.parts.target,
            "/bucket/key?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDP%2F20250101%2Fus-east-1%2Fs3%2Faws4_request"
        );
        let only_secrets = RequestFacts::from_head("GET", "h", "/k?x-amz-signature=s", &[]);
        assert_eq!(only_secrets.parts.target, "/k");
    }

    #[test]
    fn form_action_is_read_from_the_prefix_only_when_whole() {
        let mut facts = RequestFacts::from_head(
            "POST",
            "sts.amazonaws.com",
            "/",
            &[header(
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
        );
        assert!(facts.wants_form_action);
        let body = b"Action=GetCallerIdentity&Version=2011-06-15";
        facts.set_body_prefix(body, true);
        assert_eq!(facts.api.as_deref(), Some("GetCallerIdentity"));
        assert_eq!(
            facts.parts.body.as_deref().map(str::as_bytes),
            Some(&body[..])
        );
        let mut cut = RequestFacts {
            wants_form_action: true,
            wants_body: true,
            ..Default::default()
        };
        let mut prefix = b"Version=1&Action=Get".to_vec();
        prefix.resize(BODY_PREFIX, b'x');
        cut.set_body_prefix(&prefix, false);
        assert_eq!(cut.api, None);
        // A body cut by the prefix is not given to the naming: it could not be parsed.
        assert_eq!(cut.parts.body, None);
    }

    #[test]
    fn only_json_and_form_bodies_are_kept() {
        let json = RequestFacts::from_head(
            "POST",
            "dynamodb.us-east-1.amazonaws.com",
            "/",
            &[header("Content-Type", "application/x-amz-json-1.0")],
        );
        assert!(json.wants_body && !json.wants_form_action);
        let mut binary = RequestFacts::from_head(
            "PUT",
            "b.s3.amazonaws.com",
            "/k",
            &[header("Content-Type", "application/octet-stream")],
        );
        binary.set_body_prefix(b"payload", true);
        assert_eq!(binary.parts.body, None);
    }

    #[test]
    fn errors_from_header_json_and_xml() {
        let response = ResponseFacts::from_head(
            400,
            &[header(
                "x-amzn-ErrorType",
                "ResourceNotFoundException:http://internal.amazon.com/",
            )],
        );
        let outcome = response.outcome(br#"{"message":"Requested resource not found"}"#);
        assert_eq!(
            outcome.aws_exception.as_deref(),
            Some("ResourceNotFoundException")
        );
        assert_eq!(
            outcome.aws_exception_message.as_deref(),
            Some("Requested resource not found")
        );
        let json = ResponseFacts::from_head(400, &[]).outcome(
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceInUseException","Message":"in use"}"#,
        );
        assert_eq!(
            json.aws_exception.as_deref(),
            Some("ResourceInUseException")
        );
        assert_eq!(json.aws_exception_message.as_deref(), Some("in use"));
        let xml = ResponseFacts::from_head(404, &[]).outcome(
            b"<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The bucket &amp; more</Message></Error>",
        );
        assert_eq!(xml.aws_exception.as_deref(), Some("NoSuchBucket"));
        assert_eq!(
            xml.aws_exception_message.as_deref(),
            Some("The bucket & more")
        );
        assert_eq!(
            ResponseFacts::from_head(200, &[])
                .outcome(b"<Code>X</Code>")
                .aws_exception,
            None
        );
    }

    fn parse(event: &str) -> Value {
        serde_json::from_str(event).unwrap()
    }

    #[test]
    fn retries_of_one_invocation_are_one_call() {
        let tracker = CallTracker::new(false);
        let t0 = Instant::now();
        let facts = |attempt: u32| RequestFacts {
            host: "dynamodb.us-east-1.amazonaws.com".into(),
            service: Some("dynamodb".into()),
            api: Some("GetItem".into()),
            invocation_id: Some("inv-1".into()),
            attempt: Some(attempt),
            max_attempts: Some(3),
            started: Some(t0),
            ..Default::default()
        };
        let failed = Outcome {
            status: Some(500),
            ..Default::default()
        };
        let first = tracker.attempt_finished(facts(1), failed.clone(), t0);
        assert_eq!(first.len(), 1, "{first:?}");
        let second = tracker.attempt_finished(
            facts(2),
            Outcome {
                status: Some(200),
                ..Default::default()
            },
            t0 + Duration::from_millis(20),
        );
        assert_eq!(second.len(), 2);
        let call = parse(&second[1].json);
        assert_eq!(call["Type"], "ApiCall");
        assert_eq!(call["AttemptCount"], 2);
        assert_eq!(call["FinalHttpStatusCode"], 200);
        assert_eq!(call["MaxRetriesExceeded"], 0);
        // Every attempt fails: the last allowed one ends the call.
        for n in 1..=3 {
            let mut f = facts(n);
            f.invocation_id = Some("inv-2".into());
            let events = tracker.attempt_finished(f, failed.clone(), t0);
            assert_eq!(events.len(), if n == 3 { 2 } else { 1 });
            if n == 3 {
                let call = parse(&events[1].json);
                assert_eq!(call["AttemptCount"], 3);
                assert_eq!(call["MaxRetriesExceeded"], 1);
            }
        }
        // Without an invocation id, each request is a call.
        let mut alone = facts(1);
        alone.invocation_id = None;
        alone.api = None;
        let events = tracker.attempt_finished(alone, failed.clone(), t0);
        assert_eq!(events.len(), 2);
        assert_eq!(parse(&events[1].json)["ApiUnknown"], true);
        // A retryable attempt with no follower is closed on the sweep or at the end.
        let mut lone = facts(1);
        lone.invocation_id = Some("inv-3".into());
        assert_eq!(tracker.attempt_finished(lone, failed, t0).len(), 1);
        assert!(tracker.sweep(t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(tracker.sweep(t0 + PENDING_CALL_TIMEOUT).len(), 1);
        assert!(tracker.close().is_empty());
    }

    #[test]
    fn access_key_can_be_left_out() {
        let facts = RequestFacts {
            access_key: Some("AKIDX".into()),
            ..Default::default()
        };
        let now = Instant::now();
        let kept = CallTracker::new(false).attempt_finished(facts.clone(), Outcome::default(), now);
        assert!(kept[0].json.contains("AKIDX"));
        let dropped = CallTracker::new(true).attempt_finished(facts, Outcome::default(), now);
        assert!(dropped.iter().all(|e| !e.json.contains("AKIDX")));
    }
}
