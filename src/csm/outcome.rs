//! What counts as a failure. The CLI's `--only-errors` filter and its summary read events through
//! these rules; `cli/records.js` states the same rules for recordings read back from files, and a
//! test feeds both the same events.

use super::event::{CsmEvent, EventType};

/// An `ApiCall` is an error when the call did not succeed in the end: its final HTTP status is 400
/// or more, it reports a final service or SDK exception (a connection error has no status at all),
/// or its retries ran out. A call that failed first and then succeeded on a retry is not an error.
pub fn is_error_call(event: &CsmEvent<'_>) -> bool {
    event.event_type == EventType::ApiCall
        && (event
            .final_http_status_code
            .is_some_and(|status| status >= 400)
            || present(&event.final_aws_exception)
            || present(&event.final_sdk_exception)
            || event.max_retries_exceeded == Some(1))
}

/// An `ApiCallAttempt` failed when its HTTP status is 400 or more or it reports an exception.
pub fn is_failed_attempt(event: &CsmEvent<'_>) -> bool {
    event.event_type == EventType::ApiCallAttempt
        && (event.http_status_code.is_some_and(|status| status >= 400)
            || present(&event.aws_exception)
            || present(&event.sdk_exception))
}

/// What `--only-errors` keeps: failed calls and failed attempts (attempts retried successfully too).
pub fn is_error(event: &CsmEvent<'_>) -> bool {
    is_error_call(event) || is_failed_attempt(event)
}

fn present(text: &Option<std::borrow::Cow<'_, str>>) -> bool {
    text.as_deref().is_some_and(|text| !text.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csm::parse_event;

    fn event(json: &str) -> CsmEvent<'_> {
        parse_event(json.as_bytes(), false).unwrap()
    }

    #[test]
    fn a_call_that_succeeded_on_a_retry_is_not_an_error_but_its_failed_attempt_is() {
        let call = event(r#"{"Type":"ApiCall","AttemptCount":2,"FinalHttpStatusCode":200}"#);
        let attempt = event(r#"{"Type":"ApiCallAttempt","HttpStatusCode":503}"#);
        assert!(!is_error(&call));
        assert!(is_failed_attempt(&attempt) && is_error(&attempt));
    }

    #[test]
    fn status_exceptions_and_exhausted_retries_make_errors() {
        for json in [
            r#"{"Type":"ApiCall","FinalHttpStatusCode":404}"#,
            r#"{"Type":"ApiCall","FinalSdkException":"ECONNREFUSED"}"#,
            r#"{"Type":"ApiCall","FinalAwsException":"Throttling","FinalHttpStatusCode":200}"#,
            r#"{"Type":"ApiCall","MaxRetriesExceeded":1}"#,
            r#"{"Type":"ApiCallAttempt","SdkException":"TimeoutError"}"#,
        ] {
            assert!(is_error(&event(json)), "{json}");
        }
        for json in [
            r#"{"Type":"ApiCall","FinalHttpStatusCode":399,"FinalAwsException":""}"#,
            r#"{"Type":"ApiCall","MaxRetriesExceeded":0}"#,
            r#"{"Type":"Other","FinalHttpStatusCode":500}"#,
        ] {
            assert!(!is_error(&event(json)), "{json}");
        }
    }
}
