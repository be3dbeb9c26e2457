//! The Firehose sink through the real Rust SDK against a stand-in that speaks Firehose's JSON 1.1
//! protocol on loopback and injects what moto cannot: batch limits, partial failures, throttling,
//! slow responses, refused connections.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_api_call_recorder::attribution::{InvocationInfo, Phase, RecordContext};
use aws_api_call_recorder::record::Record;
use aws_api_call_recorder::sink::{
    FirehoseSink, MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_RECORD_BYTES, Sink, batch,
};
use aws_sdk_firehose::config::{BehaviorVersion, Credentials, Region};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// What the stand-in does with one request.
#[derive(Debug, Clone)]
enum Behavior {
    Accept,
    /// Entries at these indexes get `ServiceUnavailableException`; the rest are accepted.
    FailEntries(Vec<usize>),
    /// The whole call fails with this HTTP status and error type.
    Error(u16, &'static str),
    /// Waits, then accepts.
    Delay(Duration),
}

#[derive(Default)]
struct State {
    script: VecDeque<Behavior>,
    /// Used once the script is exhausted.
    fallback: Option<Behavior>,
    accepted: Vec<String>,
    /// Per request: record count and body size.
    requests: Vec<(usize, usize)>,
    /// How many requests each record's data appeared in.
    seen: HashMap<String, usize>,
}

struct StandIn {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl StandIn {
    async fn start(script: Vec<Behavior>, fallback: Option<Behavior>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            fallback,
            ..Default::default()
        }));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(req, state.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        StandIn { addr, state }
    }

    fn sink(&self) -> FirehoseSink {
        FirehoseSink::with_client("calls".into(), client(&format!("http://{}", self.addr)))
    }

    fn accepted(&self) -> Vec<String> {
        self.state.lock().unwrap().accepted.clone()
    }

    fn requests(&self) -> Vec<(usize, usize)> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Records that were sent in more than one request.
    fn resent(&self) -> usize {
        self.state
            .lock()
            .unwrap()
            .seen
            .values()
            .filter(|n| **n > 1)
            .count()
    }
}

fn client(endpoint: &str) -> aws_sdk_firehose::Client {
    let config = aws_sdk_firehose::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-west-2"))
        .credentials_provider(Credentials::new("AKIATEST", "secret", None, None, "test"))
        .endpoint_url(endpoint)
        .retry_config(aws_sdk_firehose::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_firehose::Client::from_conf(config)
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(target, "Firehose_20150804.PutRecordBatch");
    let request: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(request["DeliveryStreamName"], "calls");
    let data: Vec<String> = request["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(r["Data"].as_str().unwrap())
                .unwrap();
            String::from_utf8(bytes).unwrap()
        })
        .collect();
    let behavior = {
        let mut state = state.lock().unwrap();
        state.requests.push((data.len(), body.len()));
        for d in &data {
            *state.seen.entry(d.clone()).or_default() += 1;
        }
        let fallback = state.fallback.clone().unwrap_or(Behavior::Accept);
        state.script.pop_front().unwrap_or(fallback)
    };
    let failed: Vec<usize> = match &behavior {
        Behavior::Error(status, kind) => {
            let body = json!({ "__type": kind, "message": "injected failure" }).to_string();
            return Ok(response(*status, body));
        }
        Behavior::Delay(wait) => {
            tokio::time::sleep(*wait).await;
            Vec::new()
        }
        Behavior::FailEntries(indexes) => indexes.clone(),
        Behavior::Accept => Vec::new(),
    };
    let mut state = state.lock().unwrap();
    let entries: Vec<Value> = data
        .into_iter()
        .enumerate()
        .map(|(index, d)| {
            if failed.contains(&index) {
                json!({ "ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down." })
            } else {
                state.accepted.push(d);
                json!({ "RecordId": format!("id-{index}") })
            }
        })
        .collect();
    let body =
        json!({ "FailedPutCount": failed.len(), "Encrypted": false, "RequestResponses": entries });
    Ok(response(200, body.to_string()))
}

fn response(status: u16, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-requestid", "stand-in")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn records(count: usize) -> Vec<Record> {
    let context = Arc::new(RecordContext::new(Phase::Invoke, InvocationInfo::default()));
    (0..count)
        .map(|i| {
            Record::new(
                format!(r#"{{"Type":"ApiCall","Service":"S3","Api":"GetObject","Latency":{i}}}"#),
                context.clone(),
                7,
            )
        })
        .collect()
}

fn lines(records: &[Record]) -> Vec<String> {
    let mut expected: Vec<String> = records
        .iter()
        .map(|r| format!("{}\n", r.to_json()))
        .collect();
    expected.sort();
    expected
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn deadline(ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(ms)
}

#[tokio::test]
async fn ten_thousand_records_go_out_in_batches_within_the_limits_exactly_once() {
    let standin = StandIn::start(vec![], None).await;
    let input = records(10_000);
    let expected = lines(&input);
    let delivery = standin.sink().deliver(input, deadline(30_000)).await;
    assert_eq!(
        (delivery.delivered, delivery.failed, delivery.retried),
        (10_000, 0, 0),
        "{:?}",
        delivery.error
    );
    let requests = standin.requests();
    assert_eq!(requests.len(), 20);
    assert_eq!(delivery.requests, 20);
    assert!(
        requests
            .iter()
            .all(|(count, bytes)| *count <= MAX_BATCH_RECORDS && *bytes <= MAX_BATCH_BYTES)
    );
    assert_eq!(sorted(standin.accepted()), expected);
}

#[tokio::test]
async fn only_failed_entries_are_resent_after_partial_failure_and_throttling() {
    let standin = StandIn::start(
        vec![
            Behavior::FailEntries(vec![0, 7, 199]),
            Behavior::Error(400, "ServiceUnavailableException"),
            Behavior::FailEntries(vec![3]),
        ],
        None,
    )
    .await;
    let input = records(1_200);
    let expected = lines(&input);
    let delivery = standin.sink().deliver(input, deadline(20_000)).await;
    assert_eq!(
        (delivery.delivered, delivery.failed),
        (1_200, 0),
        "{:?}",
        delivery.error
    );
    // Exactly once: every record accepted once, none twice.
    assert_eq!(sorted(standin.accepted()), expected);
    // The resends carried only what had failed: at most 3 + one whole batch (the throttled call) + 1.
    let resent = standin.resent();
    assert_eq!(delivery.retried as usize, resent);
    assert!((4..=3 + 500 + 1).contains(&resent), "resent {resent}");
    let sent: usize = standin.requests().iter().map(|(n, _)| n).sum();
    assert!(sent < 1_200 + 505, "sent {sent} entries in all");
}

#[tokio::test]
async fn throttling_past_the_deadline_counts_every_undelivered_record() {
    let standin = StandIn::start(
        vec![],
        Some(Behavior::Error(503, "ServiceUnavailableException")),
    )
    .await;
    let started = Instant::now();
    let delivery = standin.sink().deliver(records(50), deadline(400)).await;
    assert!(
        started.elapsed() < Duration::from_millis(1_000),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        (delivery.delivered, delivery.failed, delivery.retried),
        (0, 50, 50)
    );
    assert!(standin.requests().len() >= 2, "it retried");
    let error = delivery.error.unwrap().to_string();
    assert!(
        error.contains("ServiceUnavailableException") || error.contains("deadline"),
        "{error}"
    );
    assert!(standin.accepted().is_empty());
}

#[tokio::test]
async fn slow_responses_within_the_deadline_are_delivered() {
    let standin = StandIn::start(vec![Behavior::Delay(Duration::from_millis(300))], None).await;
    let input = records(30);
    let expected = lines(&input);
    let delivery = standin.sink().deliver(input, deadline(5_000)).await;
    assert_eq!((delivery.delivered, delivery.failed), (30, 0));
    assert_eq!(sorted(standin.accepted()), expected);
}

#[tokio::test]
async fn a_response_slower_than_the_deadline_ends_the_flush_at_the_deadline() {
    let standin = StandIn::start(vec![], Some(Behavior::Delay(Duration::from_secs(5)))).await;
    let started = Instant::now();
    let delivery = standin.sink().deliver(records(20), deadline(300)).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(1_000),
        "took {took:?}"
    );
    assert_eq!((delivery.delivered, delivery.failed), (0, 20));
}

#[tokio::test]
async fn refused_connections_are_retried_until_the_deadline_then_counted() {
    // Bind and drop to get a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sink =
        FirehoseSink::with_client("calls".into(), client(&format!("http://127.0.0.1:{port}")));
    let started = Instant::now();
    let delivery = sink.deliver(records(10), deadline(500)).await;
    assert!(started.elapsed() < Duration::from_millis(1_500));
    assert_eq!((delivery.delivered, delivery.failed), (0, 10));
    assert!(
        delivery.requests >= 2,
        "retried: {} calls",
        delivery.requests
    );
    assert!(
        delivery
            .error
            .unwrap()
            .to_string()
            .contains("cannot reach Firehose")
    );
}

#[tokio::test]
async fn a_missing_stream_fails_at_once_without_retries() {
    let standin = StandIn::start(
        vec![],
        Some(Behavior::Error(400, "ResourceNotFoundException")),
    )
    .await;
    let delivery = standin.sink().deliver(records(5), deadline(10_000)).await;
    assert_eq!(
        (delivery.delivered, delivery.failed, delivery.retried),
        (0, 5, 0)
    );
    assert_eq!(standin.requests().len(), 1);
    assert!(
        delivery
            .error
            .unwrap()
            .to_string()
            .contains("ResourceNotFoundException")
    );
}

#[test]
fn batches_split_on_bytes_and_oversized_records_are_dropped() {
    let context = Arc::new(RecordContext::new(Phase::Invoke, InvocationInfo::default()));
    let big = |size: usize| {
        Record::new(
            format!(r#"{{"Type":"ApiCall","X":"{}"}}"#, "x".repeat(size)),
            context.clone(),
            0,
        )
    };
    let mut input: Vec<Record> = (0..20).map(|_| big(300 * 1024)).collect();
    input.insert(5, big(MAX_RECORD_BYTES + 1));
    let (batches, oversized) = batch(input);
    assert_eq!(oversized, 1);
    assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 20);
    for b in &batches {
        let body: usize = b
            .iter()
            .map(|d| d.len().div_ceil(3) * 4 + 12)
            .sum::<usize>()
            + 128;
        assert!(
            body <= MAX_BATCH_BYTES,
            "batch of {} records, {body} bytes",
            b.len()
        );
    }
    assert_eq!(
        batches.len(),
        2,
        "10 records of 400 KiB (encoded) fit in 4 MiB"
    );
    assert!(batch(Vec::new()).0.is_empty());
}

/// Panics in the SDK's request pipeline on the request numbered `panic_on` (from 1): a bug in a
/// batch task, as the recorder would meet it.
#[derive(Debug)]
struct PanicOnRequest {
    seen: std::sync::atomic::AtomicUsize,
    panic_on: usize,
}

impl aws_sdk_firehose::config::Intercept for PanicOnRequest {
    fn name(&self) -> &'static str {
        "PanicOnRequest"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_sdk_firehose::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_firehose::config::RuntimeComponents,
        _cfg: &mut aws_sdk_firehose::config::ConfigBag,
    ) -> Result<(), aws_sdk_firehose::error::BoxError> {
        let seen = self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        assert_ne!(seen, self.panic_on, "a bug in a batch task");
        Ok(())
    }
}

#[tokio::test]
async fn a_batch_task_that_panics_counts_its_records_as_failed() {
    let standin = StandIn::start(vec![], None).await;
    let config = client(&format!("http://{}", standin.addr))
        .config()
        .to_builder()
        .interceptor(PanicOnRequest {
            seen: Default::default(),
            panic_on: 2,
        })
        .build();
    let sink =
        FirehoseSink::with_client("calls".into(), aws_sdk_firehose::Client::from_conf(config));
    // Three batches: 500, 500 and 200 records; whichever is sent second panics.
    let delivery = sink.deliver(records(1200), deadline(10_000)).await;
    assert_eq!(
        delivery.delivered + delivery.failed,
        1200,
        "every record counted once"
    );
    assert!(
        [500, 200].contains(&delivery.failed),
        "one batch failed: {delivery:?}"
    );
    assert_eq!(standin.accepted().len() as u64, delivery.delivered);
    let error = delivery.error.expect("the failure is reported").to_string();
    assert!(error.contains("panicked"), "{error}");
}
