//! Calls by service and operation, errors, retries and latency percentiles, aggregated as events
//! stream past. The same summary as `cli/summary.js` makes from recordings read back from files
//! (the shape of `summary --json`); a test checks that both agree on the same events.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::csm::outcome::{is_error_call, is_failed_attempt};
use crate::csm::{CsmEvent, EventType};

/// Latencies counted by value: exact nearest-rank percentiles in memory bounded by the number of
/// distinct values (milliseconds), however long the stream runs.
#[derive(Debug, Default)]
struct Latencies {
    counts: BTreeMap<i64, u64>,
    total: u64,
}

impl Latencies {
    fn add(&mut self, latency: i64) {
        *self.counts.entry(latency).or_default() += 1;
        self.total += 1;
    }

    /// The nearest-rank `p`th percentile; `None` when there are no values.
    fn percentile(&self, p: u64) -> Option<i64> {
        if self.total == 0 {
            return None;
        }
        let rank = (p * self.total).div_ceil(100).clamp(1, self.total);
        let mut seen = 0;
        self.counts.iter().find_map(|(&value, &count)| {
            seen += count;
            (seen >= rank).then_some(value)
        })
    }
}

#[derive(Debug, Default)]
struct ApiEntry {
    calls: u64,
    errors: u64,
    retried_calls: u64,
    retries: u64,
    latencies: Latencies,
}

/// Collects events and summarizes them. Calls are `ApiCall` events.
#[derive(Debug, Default)]
pub struct Summary {
    /// By service, then operation; sorted when reported. Looked up by borrowed names, so a call of
    /// a known operation allocates nothing.
    apis: HashMap<String, HashMap<String, ApiEntry>>,
    /// Error kinds in the order they first appeared, and where each is in that list.
    errors: Vec<ErrorKind>,
    error_index: HashMap<(String, String, String), usize>,
    latencies: Latencies,
    attempts: u64,
    failed_attempts: u64,
}

impl Summary {
    pub fn add(&mut self, event: &CsmEvent<'_>) {
        match event.event_type {
            EventType::ApiCallAttempt => {
                self.attempts += 1;
                self.failed_attempts += u64::from(is_failed_attempt(event));
                return;
            }
            EventType::ApiCall => {}
            EventType::Other(_) => return,
        }
        let service = event.service.as_deref().unwrap_or("?");
        let api = event.api.as_deref().unwrap_or("?");
        let operations = match self.apis.get_mut(service) {
            Some(operations) => operations,
            None => self.apis.entry(service.to_owned()).or_default(),
        };
        let entry = match operations.get_mut(api) {
            Some(entry) => entry,
            None => operations.entry(api.to_owned()).or_default(),
        };
        entry.calls += 1;
        let retries = event.attempt_count.unwrap_or(1).saturating_sub(1).max(0) as u64;
        if retries > 0 {
            entry.retried_calls += 1;
            entry.retries += retries;
        }
        if let Some(latency) = event.latency {
            entry.latencies.add(latency);
            self.latencies.add(latency);
        }
        if is_error_call(event) {
            entry.errors += 1;
            let error = describe_error(event);
            let key = (service.to_owned(), api.to_owned(), error);
            let index = *self.error_index.entry(key).or_insert_with_key(|key| {
                self.errors.push(ErrorKind {
                    service: key.0.clone(),
                    api: key.1.clone(),
                    error: key.2.clone(),
                    count: 0,
                });
                self.errors.len() - 1
            });
            self.errors[index].count += 1;
        }
    }

    /// The summary as plain data.
    pub fn report(&self) -> SummaryReport {
        let mut by_api: Vec<ApiSummary> = self
            .apis
            .iter()
            .flat_map(|(service, operations)| {
                operations
                    .iter()
                    .map(move |(api, entry)| (service, api, entry))
            })
            .map(|(service, api, entry)| ApiSummary {
                service: service.clone(),
                api: api.clone(),
                calls: entry.calls,
                errors: entry.errors,
                retried_calls: entry.retried_calls,
                retries: entry.retries,
                p50: entry.latencies.percentile(50),
                p99: entry.latencies.percentile(99),
            })
            .collect();
        by_api.sort_by(|a, b| (&a.service, &a.api).cmp(&(&b.service, &b.api)));
        let total = |field: fn(&ApiSummary) -> u64| by_api.iter().map(field).sum();
        let mut error_kinds = self.errors.clone();
        error_kinds.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.service.cmp(&b.service))
        });
        SummaryReport {
            calls: total(|entry| entry.calls),
            errors: total(|entry| entry.errors),
            retried_calls: total(|entry| entry.retried_calls),
            retries: total(|entry| entry.retries),
            attempts: self.attempts,
            failed_attempts: self.failed_attempts,
            latency_ms: Percentiles {
                p50: self.latencies.percentile(50),
                p99: self.latencies.percentile(99),
            },
            by_api,
            error_kinds,
        }
    }
}

/// How a failed call ended: its final status (or `no response`) and exception.
fn describe_error(event: &CsmEvent<'_>) -> String {
    let status = event
        .final_http_status_code
        .map_or_else(|| "no response".to_owned(), |status| status.to_string());
    let exception = [&event.final_aws_exception, &event.final_sdk_exception]
        .into_iter()
        .find_map(|value| value.as_deref().filter(|text| !text.is_empty()))
        .or((event.max_retries_exceeded == Some(1)).then_some("MaxRetriesExceeded"));
    match exception {
        Some(exception) => format!("{status} {exception}"),
        None => status,
    }
}

/// What [`Summary::report`] gives: the shape `summary --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryReport {
    pub calls: u64,
    pub errors: u64,
    pub retried_calls: u64,
    pub retries: u64,
    pub attempts: u64,
    pub failed_attempts: u64,
    pub latency_ms: Percentiles,
    /// Sorted by service, then operation (by code point).
    pub by_api: Vec<ApiSummary>,
    /// Most frequent first.
    pub error_kinds: Vec<ErrorKind>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub p50: Option<i64>,
    pub p99: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiSummary {
    pub service: String,
    pub api: String,
    pub calls: u64,
    pub errors: u64,
    pub retried_calls: u64,
    pub retries: u64,
    pub p50: Option<i64>,
    pub p99: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorKind {
    pub service: String,
    pub api: String,
    pub error: String,
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csm::parse_event;

    fn summarize(events: &[&str]) -> SummaryReport {
        let mut summary = Summary::default();
        for json in events {
            summary.add(&parse_event(json.as_bytes(), false).unwrap());
        }
        summary.report()
    }

    #[test]
    fn nothing_summarized_has_no_percentiles() {
        let report = summarize(&[]);
        assert_eq!((report.calls, report.latency_ms.p50), (0, None));
        assert!(report.by_api.is_empty() && report.error_kinds.is_empty());
    }

    #[test]
    fn nearest_rank_percentiles_over_every_call() {
        let events: Vec<String> = (1..=100)
            .map(|n| {
                format!(r#"{{"Type":"ApiCall","Service":"S3","Api":"GetObject","Latency":{n}}}"#)
            })
            .collect();
        let events: Vec<&str> = events.iter().map(String::as_str).collect();
        let report = summarize(&events);
        assert_eq!(
            report.latency_ms,
            Percentiles {
                p50: Some(50),
                p99: Some(99)
            }
        );
        assert_eq!(report.by_api[0].calls, 100);
        let one = summarize(&[r#"{"Type":"ApiCall","Latency":7}"#]);
        assert_eq!(
            one.latency_ms,
            Percentiles {
                p50: Some(7),
                p99: Some(7)
            }
        );
        assert_eq!(
            (one.by_api[0].service.as_str(), one.by_api[0].api.as_str()),
            ("?", "?")
        );
    }

    #[test]
    fn retries_errors_and_attempts_are_counted_apart() {
        let report = summarize(&[
            r#"{"Type":"ApiCallAttempt","HttpStatusCode":503}"#,
            r#"{"Type":"ApiCallAttempt","HttpStatusCode":200}"#,
            r#"{"Type":"ApiCall","Service":"DynamoDB","Api":"PutItem","AttemptCount":2,"FinalHttpStatusCode":200}"#,
            r#"{"Type":"ApiCall","Service":"S3","Api":"GetObject","FinalHttpStatusCode":404,"FinalAwsException":"NoSuchKey"}"#,
            r#"{"Type":"ApiCall","Service":"S3","Api":"GetObject","FinalHttpStatusCode":404,"FinalAwsException":"NoSuchKey"}"#,
            r#"{"Type":"ApiCall","Service":"Lambda","Api":"Invoke","FinalSdkException":"ECONNREFUSED","AttemptCount":3,"MaxRetriesExceeded":1}"#,
        ]);
        assert_eq!((report.attempts, report.failed_attempts), (2, 1));
        assert_eq!(
            (
                report.calls,
                report.errors,
                report.retried_calls,
                report.retries
            ),
            (4, 3, 2, 3)
        );
        let services: Vec<&str> = report.by_api.iter().map(|e| e.service.as_str()).collect();
        assert_eq!(services, ["DynamoDB", "Lambda", "S3"]);
        let kinds: Vec<(&str, u64)> = report
            .error_kinds
            .iter()
            .map(|e| (e.error.as_str(), e.count))
            .collect();
        assert_eq!(
            kinds,
            [("404 NoSuchKey", 2), ("no response ECONNREFUSED", 1)]
        );
    }
}
