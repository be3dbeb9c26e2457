//! Calls recorded twice: a program that sends Client-Side Monitoring datagrams and goes through the
//! recording proxy (botocore, the aws CLI) reports each call both ways. The proxy notes the request
//! id of every response it relays, before the client can see it; a CSM attempt carrying one of those
//! ids is the proxy's attempt again, and so is the `ApiCall` that follows such attempts. Those CSM
//! copies are left out, so each call is recorded once, by the proxy, which also knows its resources.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::csm::{CsmEvent, EventType};

/// Request ids remembered at most; the oldest are forgotten first. CSM datagrams arrive within
/// milliseconds of the response, so only recent ones matter.
const MAX_REMEMBERED: usize = 4096;

/// The request ids the proxy relayed, and the CSM attempts already matched to them.
#[derive(Debug, Default)]
pub struct SeenRequests {
    /// Set once the proxy has noted anything: until then no CSM event is even looked at.
    active: AtomicBool,
    inner: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    ids: HashSet<Box<str>>,
    order: VecDeque<Box<str>>,
    /// Per `(Service, Api)`: CSM attempts matched to proxied requests whose `ApiCall` has not come.
    matched_attempts: HashMap<(Box<str>, Box<str>), i64>,
}

impl SeenRequests {
    /// Notes the request id of a response the proxy is relaying.
    pub fn saw(&self, request_id: &str) {
        if request_id.is_empty() {
            return;
        }
        let mut seen = self.lock();
        if seen.ids.insert(request_id.into()) {
            seen.order.push_back(request_id.into());
            if seen.order.len() > MAX_REMEMBERED
                && let Some(oldest) = seen.order.pop_front()
            {
                seen.ids.remove(&oldest);
            }
        }
        self.active.store(true, Ordering::Release);
    }

    /// Whether a CSM event is the copy of a call the proxy recorded: an attempt whose response the
    /// proxy relayed, or the `ApiCall` that ends as many such attempts as it counts.
    pub fn is_copy(&self, event: &CsmEvent<'_>) -> bool {
        if !self.active.load(Ordering::Acquire) {
            return false;
        }
        let key = (
            event.service.as_deref().unwrap_or_default().into(),
            event.api.as_deref().unwrap_or_default().into(),
        );
        let mut seen = self.lock();
        match event.event_type {
            EventType::ApiCallAttempt => {
                let ids = [&event.x_amzn_request_id, &event.x_amz_request_id];
                let matched = ids
                    .into_iter()
                    .flatten()
                    .any(|id| seen.ids.remove(id.as_ref()));
                if matched {
                    *seen.matched_attempts.entry(key).or_default() += 1;
                }
                matched
            }
            EventType::ApiCall => {
                let attempts = event.attempt_count.unwrap_or(1).max(1);
                match seen.matched_attempts.get_mut(&key) {
                    Some(matched) if *matched >= attempts => {
                        *matched -= attempts;
                        true
                    }
                    _ => false,
                }
            }
            _ => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csm::parse_datagram;

    fn copy(seen: &SeenRequests, datagram: &str) -> bool {
        seen.is_copy(&parse_datagram(datagram.as_bytes(), false).unwrap())
    }

    const ATTEMPT: &str = r#"{"Version":1,"Type":"ApiCallAttempt","Service":"SQS","Api":"ListQueues","XAmznRequestId":"req-1"}"#;
    const CALL: &str =
        r#"{"Version":1,"Type":"ApiCall","Service":"SQS","Api":"ListQueues","AttemptCount":1}"#;

    #[test]
    fn nothing_is_a_copy_until_the_proxy_saw_its_request() {
        let seen = SeenRequests::default();
        assert!(!copy(&seen, ATTEMPT));
        assert!(!copy(&seen, CALL));
        seen.saw("other");
        assert!(!copy(&seen, ATTEMPT));
        assert!(!copy(&seen, CALL));
    }

    #[test]
    fn an_attempt_the_proxy_relayed_and_its_call_are_copies_once() {
        let seen = SeenRequests::default();
        seen.saw("req-1");
        assert!(copy(&seen, ATTEMPT));
        assert!(copy(&seen, CALL));
        // The same datagrams again: a call the proxy did not see.
        assert!(!copy(&seen, ATTEMPT));
        assert!(!copy(&seen, CALL));
        // A retried call is a copy only when the proxy saw every attempt.
        seen.saw("req-2");
        let second = ATTEMPT.replace("req-1", "req-2");
        assert!(copy(&seen, &second));
        assert!(!copy(&seen, &CALL.replace(":1}", ":2}")));
        assert!(copy(&seen, CALL));
    }

    #[test]
    fn only_recent_ids_are_remembered() {
        let seen = SeenRequests::default();
        seen.saw("req-1");
        for n in 0..MAX_REMEMBERED {
            seen.saw(&format!("later-{n}"));
        }
        assert!(!copy(&seen, ATTEMPT));
        assert!(copy(&seen, &ATTEMPT.replace("req-1", "later-9")));
    }
}
