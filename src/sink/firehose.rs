//! Amazon Data Firehose delivery with `PutRecordBatch`: batches within the service limits, sent
//! concurrently; only the entries that failed are resent, with exponential backoff and jitter; the
//! whole delivery ends at the caller's deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_firehose::Client;
use aws_sdk_firehose::config::http::HttpResponse;
use aws_sdk_firehose::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_firehose::operation::put_record_batch::PutRecordBatchOutput;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record as FirehoseRecord;
use bytes::Bytes;
use tokio::sync::{OnceCell, Semaphore};
use tokio::task::JoinSet;

use super::{BoxFuture, Delivery, Sink, SinkError};
use crate::record::Record;

/// Most records in one `PutRecordBatch` call.
pub const MAX_BATCH_RECORDS: usize = 500;
/// Most bytes in one `PutRecordBatch` request. Counted as the request body carries them: base64
/// data plus JSON framing.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// JSON around each record in the request body: `{"Data":""},`.
const RECORD_FRAMING_BYTES: usize = 12;
/// JSON around the records: `{"DeliveryStreamName":"…","Records":[]}`, with a stream name of up to 64.
const REQUEST_FRAMING_BYTES: usize = 128;
/// Largest record Firehose accepts, before base64 encoding.
pub const MAX_RECORD_BYTES: usize = 1000 * 1024;
/// Batches in flight at once for one flush.
const MAX_CONCURRENT_BATCHES: usize = 4;
/// First retry delay; doubled each retry, with full jitter.
const BASE_BACKOFF: Duration = Duration::from_millis(50);
/// Largest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Longest one call may take, within the deadline.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends records to a Firehose delivery stream, one newline-terminated JSON object per record.
#[derive(Debug)]
pub struct FirehoseSink {
    stream: Arc<str>,
    /// Built on first use and reused across flushes, so connections stay alive. The recorder keeps
    /// one sink per process, hence one client.
    client: OnceCell<Result<Client, String>>,
}

impl FirehoseSink {
    /// A sink whose client is configured from the environment on first use.
    pub fn new(delivery_stream_name: String) -> Self {
        FirehoseSink {
            stream: delivery_stream_name.into(),
            client: OnceCell::new(),
        }
    }

    /// A sink that uses `client` as it is.
    pub fn with_client(delivery_stream_name: String, client: Client) -> Self {
        FirehoseSink {
            stream: delivery_stream_name.into(),
            client: OnceCell::new_with(Some(Ok(client))),
        }
    }

    async fn deliver_all(&self, records: Vec<Record>, deadline: Instant) -> Delivery {
        let total = records.len();
        let client = match self.client.get_or_init(client_from_env).await {
            Ok(client) => client.clone(),
            Err(message) => return Delivery::failed(total, self.error(message.clone())),
        };
        let (batches, oversized) = batch(records);
        let mut delivery = Delivery {
            failed: oversized as u64,
            ..Default::default()
        };
        if oversized > 0 {
            delivery.error = Some(self.error(format!(
                "{oversized} records over the {MAX_RECORD_BYTES}-byte Firehose record limit were dropped"
            )));
        }
        let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_BATCHES));
        let mut tasks = JoinSet::new();
        let mut sizes = std::collections::HashMap::new();
        for entries in batches {
            let (client, stream, permits) = (client.clone(), self.stream.clone(), permits.clone());
            let size = entries.len() as u64;
            let task = tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                send_batch(&client, &stream, entries, deadline).await
            });
            sizes.insert(task.id(), size);
        }
        while let Some(joined) = tasks.join_next_with_id().await {
            match joined {
                Ok((_, outcome)) => {
                    delivery.delivered += outcome.delivered;
                    delivery.failed += outcome.failed;
                    delivery.retried += outcome.retried;
                    delivery.requests += outcome.requests;
                    if let Some(message) = outcome.error {
                        delivery.error.get_or_insert_with(|| self.error(message));
                    }
                }
                // A batch that panicked or was cancelled delivered nothing anyone can tell: its
                // records count as failed, so every record is still counted once.
                Err(error) => {
                    delivery.failed += sizes.get(&error.id()).copied().unwrap_or(0);
                    let why = if error.is_panic() {
                        "panicked"
                    } else {
                        "was cancelled"
                    };
                    delivery
                        .error
                        .get_or_insert_with(|| self.error(format!("a PutRecordBatch task {why}")));
                }
            }
        }
        delivery
    }

    fn error(&self, message: String) -> SinkError {
        SinkError::Firehose {
            stream: self.stream.to_string(),
            message,
        }
    }
}

impl Sink for FirehoseSink {
    fn name(&self) -> &'static str {
        "firehose"
    }

    fn deliver<'a>(&'a self, records: Vec<Record>, deadline: Instant) -> BoxFuture<'a, Delivery> {
        Box::pin(self.deliver_all(records, deadline))
    }
}

/// Encodes records as newline-terminated JSON and splits them into batches within the limits.
/// Returns the batches and how many records were too large to send at all.
pub fn batch(records: Vec<Record>) -> (Vec<Vec<Bytes>>, usize) {
    let mut batches = Vec::new();
    let mut current: Vec<Bytes> = Vec::new();
    let mut current_bytes = 0;
    let mut oversized = 0;
    for record in records {
        let mut data = Vec::with_capacity(record.event_json().len() + 160);
        record.write_json(&mut data);
        data.push(b'\n');
        if data.len() > MAX_RECORD_BYTES {
            oversized += 1;
            continue;
        }
        let encoded = base64_len(data.len()) + RECORD_FRAMING_BYTES;
        if !current.is_empty()
            && (current.len() == MAX_BATCH_RECORDS
                || REQUEST_FRAMING_BYTES + current_bytes + encoded > MAX_BATCH_BYTES)
        {
            batches.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
        current_bytes += encoded;
        current.push(Bytes::from(data));
    }
    if !current.is_empty() {
        batches.push(current);
    }
    (batches, oversized)
}

fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

#[derive(Debug, Default)]
struct BatchOutcome {
    delivered: u64,
    failed: u64,
    retried: u64,
    requests: u64,
    error: Option<String>,
}

/// A record still to be delivered. The data is shared, so a resend copies nothing.
struct Pending {
    data: Bytes,
    resent: bool,
}

/// Sends one batch, resending only the entries that failed, until all are in or the deadline passes.
async fn send_batch(
    client: &Client,
    stream: &str,
    entries: Vec<Bytes>,
    deadline: Instant,
) -> BatchOutcome {
    let mut pending: Vec<Pending> = entries
        .into_iter()
        .map(|data| Pending {
            data,
            resent: false,
        })
        .collect();
    let mut outcome = BatchOutcome::default();
    for attempt in 0u32.. {
        let now = Instant::now();
        if now >= deadline {
            outcome.failed += pending.len() as u64;
            outcome.error.get_or_insert_with(|| {
                format!(
                    "deadline reached with {} records undelivered",
                    pending.len()
                )
            });
            break;
        }
        outcome.requests += 1;
        let timeout = (deadline - now).min(ATTEMPT_TIMEOUT);
        let cut_by_deadline = timeout < ATTEMPT_TIMEOUT;
        let reason = match put_record_batch(client, stream, &pending, timeout).await {
            Ok(response) if response.failed_put_count() == 0 => {
                outcome.delivered += pending.len() as u64;
                // Earlier attempts' errors were overcome: nothing to report.
                outcome.error = None;
                break;
            }
            Ok(response) => {
                let sent = pending.len() as u64;
                let reason;
                (pending, reason) = keep_refused(pending, &response);
                outcome.delivered += sent - pending.len() as u64;
                reason
            }
            Err(Failure {
                retryable: false,
                reason,
                ..
            }) => {
                outcome.failed += pending.len() as u64;
                outcome.error = Some(reason);
                break;
            }
            // A retry the deadline cut short says nothing new: the service's last answer is the cause.
            Err(Failure {
                timed_out: true, ..
            }) if cut_by_deadline && outcome.error.is_some() => {
                let previous = outcome.error.take().unwrap_or_default();
                format!("{previous}; the deadline ended the retry in flight")
            }
            Err(Failure { reason, .. }) => reason,
        };
        for entry in pending.iter_mut().filter(|entry| !entry.resent) {
            entry.resent = true;
            outcome.retried += 1;
        }
        outcome.error = Some(reason);
        let delay = backoff(attempt).min(deadline.saturating_duration_since(Instant::now()));
        tokio::time::sleep(delay).await;
    }
    outcome
}

/// A `PutRecordBatch` call that failed as a whole.
struct Failure {
    retryable: bool,
    timed_out: bool,
    reason: String,
}

/// One `PutRecordBatch` call with the pending entries, bounded by `timeout`.
async fn put_record_batch(
    client: &Client,
    stream: &str,
    pending: &[Pending],
    timeout: Duration,
) -> Result<PutRecordBatchOutput, Failure> {
    let records = pending
        .iter()
        .map(|entry| {
            FirehoseRecord::builder()
                .data(Blob::from_maybe_shared(entry.data.clone()))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .expect("a record with data always builds");
    let request = client
        .put_record_batch()
        .delivery_stream_name(stream)
        .set_records(Some(records));
    match tokio::time::timeout(timeout, request.send()).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(error)) => {
            let (retryable, reason) = classify(&error);
            Err(Failure {
                retryable,
                timed_out: false,
                reason,
            })
        }
        Err(_elapsed) => Err(Failure {
            retryable: true,
            timed_out: true,
            reason: format!("PutRecordBatch timed out after {} ms", timeout.as_millis()),
        }),
    }
}

/// The entries whose response carries an error code, in order, and a reason naming the first code.
fn keep_refused(pending: Vec<Pending>, response: &PutRecordBatchOutput) -> (Vec<Pending>, String) {
    let responses = response.request_responses();
    let mut first_error = None;
    let refused: Vec<Pending> = pending
        .into_iter()
        .enumerate()
        .filter(|(index, _)| match responses.get(*index) {
            Some(entry) if entry.error_code().is_none() => false,
            entry => {
                if first_error.is_none() {
                    first_error = entry.and_then(|e| e.error_code()).map(str::to_owned);
                }
                true
            }
        })
        .map(|(_, entry)| entry)
        .collect();
    let reason = format!(
        "{} records failed ({})",
        refused.len(),
        first_error.unwrap_or_else(|| "no error code".into())
    );
    (refused, reason)
}

/// Full-jitter exponential backoff.
fn backoff(attempt: u32) -> Duration {
    let cap = BASE_BACKOFF
        .saturating_mul(1 << attempt.min(16))
        .min(MAX_BACKOFF);
    cap.mul_f64(fastrand::f64())
}

/// Whether an error is worth retrying, and a message for it.
fn classify<E: ProvideErrorMetadata + std::fmt::Debug>(
    error: &SdkError<E, HttpResponse>,
) -> (bool, String) {
    match error {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            let code = inner.code().unwrap_or("UnknownError");
            let message = format!(
                "{code}: {}",
                redact(inner.message().unwrap_or("no message"))
            );
            // Throttling comes as ServiceUnavailableException; any 5xx is the service's trouble.
            let retryable = service.raw().status().is_server_error()
                || matches!(code, "ServiceUnavailableException" | "ThrottlingException");
            (retryable, message)
        }
        SdkError::TimeoutError(_) => (true, "request timed out".into()),
        SdkError::DispatchFailure(failure) => (true, format!("cannot reach Firehose: {failure:?}")),
        SdkError::ResponseError(_) => (true, "unreadable response from Firehose".into()),
        SdkError::ConstructionFailure(_) => {
            (false, "cannot build the PutRecordBatch request".into())
        }
        _ => (false, "unexpected SDK error".into()),
    }
}

/// The first line of a service error message, without credentials. Signature errors append the
/// canonical request on later lines, and that lists `x-amz-security-token` with its value.
fn redact(message: &str) -> String {
    let mut line = message.lines().next().unwrap_or("").to_owned();
    for name in ["AWS_SESSION_TOKEN", "AWS_SECRET_ACCESS_KEY"] {
        if let Some(secret) = std::env::var(name).ok().filter(|s| s.len() >= 8) {
            line = line.replace(&secret, "[redacted]");
        }
    }
    line
}

/// Builds the client from the environment without blocking on IMDS: the region must come from
/// `AWS_REGION`/`AWS_DEFAULT_REGION`; environment credentials are used directly when present.
/// `AWS_ENDPOINT_URL_FIREHOSE` / `AWS_ENDPOINT_URL` are honoured by aws-config.
async fn client_from_env() -> Result<Client, String> {
    let region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .ok()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| "no region: set AWS_REGION (Lambda sets it)".to_owned())?;
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region))
        // Retries are ours: only failed entries are resent, and the deadline bounds them.
        .retry_config(aws_config::retry::RetryConfig::disabled());
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    Ok(Client::new(&loader.load().await))
}
