//! The Lambda internal extension against a stand-in of the Extensions API on loopback: it registers,
//! delivers an invocation's records before asking for the next event, and asks by the deadline.

use std::convert::Infallible;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_api_call_recorder::attribution::InvocationInfo;
use aws_api_call_recorder::extension::{ExtensionError, LambdaExtension, Lifecycle};
use aws_api_call_recorder::{Recorder, RecorderConfig, RecorderOptions, Whole};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::{Semaphore, mpsc};

const CALL: &[u8] = br#"{"Version":1,"ClientId":"","Type":"ApiCall","Service":"STS","Api":"GetCallerIdentity","Timestamp":1795357598164,"AttemptCount":1,"Region":"us-west-2","FinalHttpStatusCode":200,"Latency":53,"MaxRetriesExceeded":0}"#;

/// In the list of events: answer that request for the next event with an error.
const FAIL: &str = "fail";

/// Serves the Extensions API: registration answers `register_status`; each request for the next
/// event takes the next event of `events` (JSON), or waits forever when there is none. Every
/// request is reported on `requests` when it arrives.
async fn stand_in(
    register_status: StatusCode,
    events: Vec<String>,
) -> (String, mpsc::UnboundedReceiver<String>) {
    stand_in_gated(register_status, events, None).await
}

/// [`stand_in`] whose answer to the registration waits for a permit of `gate`, when given.
async fn stand_in_gated(
    register_status: StatusCode,
    events: Vec<String>,
    gate: Option<Arc<Semaphore>>,
) -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (report, requests) = mpsc::unbounded_channel();
    let events = Arc::new(Mutex::new(events.into_iter()));
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let report = report.clone();
            let events = events.clone();
            let gate = gate.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let report = report.clone();
                    let events = events.clone();
                    let gate = gate.clone();
                    async move {
                        let path = request.uri().path().to_owned();
                        let name = request
                            .headers()
                            .get("lambda-extension-name")
                            .map(|v| v.to_str().unwrap().to_owned());
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        let _ = report.send(path.clone());
                        if path == "/2020-01-01/extension/register" {
                            assert_eq!(name.as_deref(), Some("recorder-test"));
                            assert_eq!(&body[..], br#"{"events":["INVOKE"]}"#);
                            if let Some(gate) = gate {
                                gate.acquire().await.unwrap().forget();
                            }
                            let answer = Response::builder()
                                .status(register_status)
                                .header("Lambda-Extension-Identifier", "ext-1")
                                .body(Full::new(Bytes::from_static(
                                    br#"{"errorMessage":"refused on purpose"}"#,
                                )))
                                .unwrap();
                            return Ok::<_, Infallible>(answer);
                        }
                        let event = events.lock().unwrap().next();
                        match event {
                            Some(failure) if failure == FAIL => Ok(Response::builder()
                                .status(StatusCode::INTERNAL_SERVER_ERROR)
                                .body(Full::new(Bytes::from_static(b"{}")))
                                .unwrap()),
                            Some(event) => Ok(Response::new(Full::new(Bytes::from(event)))),
                            None => std::future::pending().await,
                        }
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (address, requests)
}

/// Built on a blocking thread: the first recorder of the process starts the recorder's runtime,
/// which must not happen (nor a losing runtime be dropped) inside an async context.
async fn file_recorder(dir: &std::path::Path) -> (Arc<Recorder>, std::path::PathBuf) {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || new_file_recorder(&dir))
        .await
        .unwrap()
}

fn new_file_recorder(dir: &std::path::Path) -> (Arc<Recorder>, std::path::PathBuf) {
    let file = dir.join("records.jsonl");
    let options = RecorderOptions {
        port: Some(Whole(0)),
        host: Some("127.0.0.1".into()),
        file: Some(file.to_string_lossy().into_owned()),
        init_phase: Some(true),
        ..Default::default()
    };
    let recorder = Recorder::new(RecorderConfig::resolve(options, |_| None).unwrap()).unwrap();
    (Arc::new(recorder), file)
}

/// Registers an extension of `recorder` with the stand-in at `api`, off the async workers (the
/// registration blocks, as it does in a Node.js process during init).
async fn register(
    recorder: Arc<Recorder>,
    api: String,
) -> Result<Arc<LambdaExtension>, ExtensionError> {
    tokio::task::spawn_blocking(move || {
        LambdaExtension::register(
            recorder,
            &api,
            "recorder-test",
            Duration::from_secs(5),
            Lifecycle::Frozen,
        )
    })
    .await
    .unwrap()
}

fn epoch_ms_in(from_now: Duration) -> u128 {
    (SystemTime::now() + from_now)
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

fn invoke(request_id: &str, deadline_in: Duration) -> String {
    format!(
        r#"{{"eventType":"INVOKE","deadlineMs":{},"requestId":"{request_id}","invokedFunctionArn":"arn:aws:lambda:us-west-2:123456789012:function:f"}}"#,
        epoch_ms_in(deadline_in)
    )
}

fn records(file: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn send(to: SocketAddr, payload: &[u8]) {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(payload, to)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_registration_is_an_error_with_lambdas_message() {
    let dir = tempdir();
    let (api, _requests) = stand_in(StatusCode::FORBIDDEN, vec![]).await;
    let (recorder, _) = file_recorder(&dir).await;
    let error = register(recorder, api).await.unwrap_err();
    assert!(matches!(error, ExtensionError::Refused { .. }), "{error}");
    assert!(error.to_string().contains("refused on purpose"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_begun_registration_returns_before_lambda_answers_and_finishing_waits_for_the_answer() {
    let dir = tempdir();
    let gate = Arc::new(Semaphore::new(0));
    let (api, mut requests) = stand_in_gated(StatusCode::OK, vec![], Some(gate.clone())).await;
    let (recorder, _) = file_recorder(&dir).await;
    let begin = tokio::task::spawn_blocking(move || {
        LambdaExtension::begin_registration(
            recorder,
            &api,
            "recorder-test",
            Duration::from_secs(5),
            Lifecycle::Frozen,
        )
    });
    let begun = tokio::time::timeout(Duration::from_secs(2), begin)
        .await
        .expect("beginning does not wait for Lambda's answer")
        .unwrap()
        .unwrap();
    // Sent, and not answered: the caller went on meanwhile.
    assert_eq!(
        requests.recv().await.unwrap(),
        "/2020-01-01/extension/register"
    );
    assert_eq!(gate.available_permits(), 0);
    gate.add_permits(1);
    tokio::task::spawn_blocking(move || begun.finish())
        .await
        .unwrap()
        .unwrap();
    // Accepted: the event loop asks for the next event.
    assert_eq!(
        requests.recv().await.unwrap(),
        "/2020-01-01/extension/event/next"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_registration_lambda_never_answers_ends_at_its_timeout() {
    let dir = tempdir();
    let gate = Arc::new(Semaphore::new(0));
    let (api, _requests) = stand_in_gated(StatusCode::OK, vec![], Some(gate)).await;
    let (recorder, _) = file_recorder(&dir).await;
    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    let waited = tokio::task::spawn_blocking(move || {
        LambdaExtension::begin_registration(
            recorder,
            &api,
            "recorder-test",
            timeout,
            Lifecycle::Frozen,
        )
        .and_then(|begun| begun.finish())
    })
    .await
    .unwrap();
    let Err(error) = waited else {
        panic!("no answer is no extension")
    };
    assert!(
        matches!(error, ExtensionError::Timeout(t) if t == timeout),
        "{error}"
    );
    assert!(started.elapsed() >= timeout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_delivered_before_the_next_event_is_asked_for() {
    let dir = tempdir();
    let (api, mut requests) = stand_in(
        StatusCode::OK,
        vec![invoke("request-1", Duration::from_secs(30))],
    )
    .await;
    let (recorder, file) = file_recorder(&dir).await;
    let receiver = recorder.start().unwrap();
    let extension = register(recorder.clone(), api).await.unwrap();
    assert_eq!(
        requests.recv().await.unwrap(),
        "/2020-01-01/extension/register"
    );
    assert_eq!(
        requests.recv().await.unwrap(),
        "/2020-01-01/extension/event/next"
    );

    let invocation = recorder.begin_invocation(InvocationInfo {
        aws_request_id: Some("request-1".into()),
        ..Default::default()
    });
    extension.started("request-1");
    send(receiver, CALL);
    // Not released yet: nothing delivered, and the extension has not asked for the next event.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(requests.try_recv().is_err());
    assert!(records(&file).is_empty());

    extension.release(invocation, "request-1", Duration::from_millis(500));
    assert_eq!(
        requests.recv().await.unwrap(),
        "/2020-01-01/extension/event/next"
    );
    // It asked for the next event only after delivering.
    let delivered = records(&file);
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["awsRequestId"], "request-1");
    assert_eq!(delivered[0]["phase"], "invoke");
    assert!(extension.running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_release_the_next_event_is_asked_for_by_the_deadline_less_the_margin() {
    let dir = tempdir();
    let (api, mut requests) = stand_in(
        StatusCode::OK,
        vec![invoke("request-1", Duration::from_millis(900))],
    )
    .await;
    let (recorder, file) = file_recorder(&dir).await;
    let receiver = recorder.start().unwrap();
    let extension = register(recorder.clone(), api).await.unwrap();
    requests.recv().await.unwrap();
    requests.recv().await.unwrap();
    let started = Instant::now();
    recorder.begin_invocation(InvocationInfo {
        aws_request_id: Some("request-1".into()),
        ..Default::default()
    });
    // The handler began and never settles (a function timing out).
    extension.started("request-1");
    send(receiver, CALL);
    assert_eq!(
        requests.recv().await.unwrap(),
        "/2020-01-01/extension/event/next"
    );
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(900),
        "asked after {waited:?}"
    );
    assert!(
        waited >= Duration::from_millis(300),
        "asked after {waited:?}"
    );
    // What was recorded so far went out first.
    assert_eq!(records(&file).len(), 1);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "acr-extension-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_barrier_proves_earlier_datagrams_arrived_and_is_not_counted_itself() {
    let dir = tempdir();
    let (recorder, _) = file_recorder(&dir).await;
    let receiver = recorder.start().unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..200 {
        socket.send_to(CALL, receiver).unwrap();
    }
    let until = Instant::now() + Duration::from_secs(5);
    assert!(aws_api_call_recorder::barrier::pass(receiver, until).await);
    // Taken in without waiting for the receiver's next wake-up: all 200, and the marker not at all.
    let stats = recorder.stats();
    assert_eq!(stats.received, 200);
    assert_eq!(stats.parsed, 200);
    assert_eq!(stats.malformed, 0);
    assert_eq!(recorder.records_json().len(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request_for_the_next_event_is_retried() {
    let dir = tempdir();
    let (api, mut requests) = stand_in(
        StatusCode::OK,
        vec![
            FAIL.to_owned(),
            FAIL.to_owned(),
            invoke("request-1", Duration::from_secs(30)),
        ],
    )
    .await;
    let (recorder, file) = file_recorder(&dir).await;
    let receiver = recorder.start().unwrap();
    let extension = register(recorder.clone(), api).await.unwrap();
    for _ in 0..4 {
        requests.recv().await.unwrap();
    }
    let invocation = recorder.begin_invocation(InvocationInfo {
        aws_request_id: Some("request-1".into()),
        ..Default::default()
    });
    extension.started("request-1");
    send(receiver, CALL);
    extension.release(invocation, "request-1", Duration::from_millis(500));
    assert_eq!(
        requests.recv().await.unwrap(),
        "/2020-01-01/extension/event/next"
    );
    assert_eq!(records(&file).len(), 1);
    assert!(extension.running());
    assert!(
        extension.last_error().unwrap().contains("500"),
        "{:?}",
        extension.last_error()
    );
}
