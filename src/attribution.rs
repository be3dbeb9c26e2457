//! Attribution: which function, invocation and phase each record belongs to.

use std::sync::{Arc, Mutex};

use serde::Serialize;

/// When, in the life of a Lambda execution environment, a call was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Before the first invocation began: module load, global initialisation.
    Init,
    /// While an invocation was running (or draining).
    Invoke,
}

impl Phase {
    /// The name records carry (`phase` in JSON, the CSV column).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Init => "init",
            Phase::Invoke => "invoke",
        }
    }
}

/// What the wrapper knows about one invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvocationInfo {
    pub function_name: Option<String>,
    pub function_version: Option<String>,
    pub aws_request_id: Option<String>,
    pub cold_start: Option<bool>,
}

/// The context attached to every record received under it. Shared by all of those records.
#[derive(Debug, PartialEq, Eq)]
pub struct RecordContext {
    /// `None` for records outside any Lambda life cycle (a plain `Recorder`, the command line).
    pub phase: Option<Phase>,
    pub info: InvocationInfo,
    /// For a record attributed by time while several invocations ran: their request ids, one of
    /// which made the call (`info` then names no request). Empty otherwise.
    pub candidates: Vec<String>,
    /// The context's fields as a JSON object body (`"functionName":"f",...`), written once.
    json_fields: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContextFields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    function_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aws_request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    candidate_request_ids: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    phase: Option<Phase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cold_start: Option<bool>,
}

impl RecordContext {
    pub fn new(phase: Phase, info: InvocationInfo) -> Self {
        Self::with_phase(Some(phase), info)
    }

    /// A context with no phase: nothing in a Lambda life cycle to attribute records to.
    pub fn without_phase(info: InvocationInfo) -> Self {
        Self::with_phase(None, info)
    }

    /// The context of a record received while the invocations of `candidates` all ran, with the
    /// function's `info` (no request id): which of them made the call is not known.
    pub fn ambiguous(info: InvocationInfo, candidates: Vec<String>) -> Self {
        let info = InvocationInfo {
            aws_request_id: None,
            cold_start: None,
            ..info
        };
        Self::build(Some(Phase::Invoke), info, candidates)
    }

    fn with_phase(phase: Option<Phase>, info: InvocationInfo) -> Self {
        Self::build(phase, info, Vec::new())
    }

    fn build(phase: Option<Phase>, info: InvocationInfo, candidates: Vec<String>) -> Self {
        let fields = ContextFields {
            function_name: info.function_name.as_deref(),
            function_version: info.function_version.as_deref(),
            aws_request_id: info.aws_request_id.as_deref(),
            candidate_request_ids: &candidates,
            phase,
            cold_start: info.cold_start,
        };
        let object = serde_json::to_string(&fields).expect("context fields always serialize");
        let json_fields = object[1..object.len() - 1].to_owned();
        RecordContext {
            phase,
            info,
            candidates,
            json_fields,
        }
    }

    /// `"functionName":"f","phase":"invoke",...` without braces; empty when there is nothing to add.
    pub fn json_fields(&self) -> &str {
        &self.json_fields
    }
}

/// Tracks the invocations in flight and hands out the context new records are attributed to.
///
/// Attribution rules. A record made in this process whose caller named its invocation (the code that
/// made the call ran in it) belongs to that invocation. Any other record is attributed by time: to
/// the invocation running when it was received. Before the first invocation it is `init`; between
/// invocations it stays with the last one that began. While several invocations run at once, a
/// record attributed by time names them all as candidates and none as its own: never a guess.
#[derive(Debug)]
pub struct InvocationTracker {
    state: Mutex<TrackerState>,
}

#[derive(Debug)]
struct TrackerState {
    current: Arc<RecordContext>,
    active: Vec<(u64, Arc<RecordContext>)>,
    next_id: u64,
}

impl InvocationTracker {
    /// `init_info` describes the function before any invocation (from the Lambda environment
    /// variables); `init_phase` marks records received before the first invocation `init` (under
    /// the Lambda wrapper) rather than leaving them without a phase (a plain recorder).
    pub fn new(init_info: InvocationInfo, init_phase: bool) -> Self {
        let initial = if init_phase {
            RecordContext::new(Phase::Init, init_info)
        } else {
            RecordContext::without_phase(init_info)
        };
        InvocationTracker {
            state: Mutex::new(TrackerState {
                current: Arc::new(initial),
                active: Vec::new(),
                next_id: 1,
            }),
        }
    }

    /// The context of a record attributed by time.
    pub fn current(&self) -> Arc<RecordContext> {
        self.lock().current.clone()
    }

    /// The context of a record whose caller ran in `invocation`: that invocation's while it runs,
    /// else (unknown, ended, or none named) attributed by time.
    pub fn context_for(&self, invocation: Option<u64>) -> Arc<RecordContext> {
        let state = self.lock();
        invocation
            .and_then(|id| state.active.iter().find(|(active, _)| *active == id))
            .map_or_else(|| state.current.clone(), |(_, context)| context.clone())
    }

    /// Starts attributing new records to this invocation; returns its id for [`Self::end`].
    pub fn begin(&self, info: InvocationInfo) -> u64 {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        let context = Arc::new(RecordContext::new(Phase::Invoke, info));
        state.active.push((id, context));
        state.current = state.by_time();
        id
    }

    /// Stops attributing to invocation `id`; an unknown id is ignored.
    pub fn end(&self, id: u64) {
        let mut state = self.lock();
        state.active.retain(|(active_id, _)| *active_id != id);
        if !state.active.is_empty() {
            state.current = state.by_time();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TrackerState> {
        // The state stays consistent even if a holder panicked: every update is a single assignment.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl TrackerState {
    /// The context a record attributed by time gets now: the one running invocation's, or with
    /// several running, one that names them all.
    fn by_time(&self) -> Arc<RecordContext> {
        match self.active.as_slice() {
            [] => self.current.clone(),
            [(_, only)] => only.clone(),
            [.., (_, latest)] => {
                let candidates = self
                    .active
                    .iter()
                    .filter_map(|(_, context)| context.info.aws_request_id.clone())
                    .collect();
                Arc::new(RecordContext::ambiguous(latest.info.clone(), candidates))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_recorder_leaves_the_phase_out_until_an_invocation_begins() {
        let tracker = InvocationTracker::new(InvocationInfo::default(), false);
        assert_eq!(tracker.current().phase, None);
        assert_eq!(tracker.current().json_fields(), "");
        tracker.begin(InvocationInfo::default());
        assert_eq!(tracker.current().json_fields(), r#""phase":"invoke""#);
    }

    fn info(id: &str) -> InvocationInfo {
        InvocationInfo {
            aws_request_id: Some(id.into()),
            ..Default::default()
        }
    }

    #[test]
    fn overlapping_invocations_name_their_own_calls_and_time_names_them_all() {
        let tracker = InvocationTracker::new(InvocationInfo::default(), true);
        let a = tracker.begin(info("a"));
        assert_eq!(tracker.current().info.aws_request_id.as_deref(), Some("a"));
        let b = tracker.begin(info("b"));
        let by_time = tracker.current();
        assert_eq!(by_time.info.aws_request_id, None);
        assert_eq!(by_time.candidates, ["a", "b"]);
        assert_eq!(
            by_time.json_fields(),
            r#""candidateRequestIds":["a","b"],"phase":"invoke""#
        );
        let of_a = tracker.context_for(Some(a));
        assert_eq!(of_a.info.aws_request_id.as_deref(), Some("a"));
        assert!(of_a.candidates.is_empty());
        assert_eq!(
            tracker.context_for(Some(99)).candidates,
            ["a", "b"],
            "an unknown id falls back to time"
        );
        tracker.end(a);
        assert_eq!(tracker.current().info.aws_request_id.as_deref(), Some("b"));
        assert_eq!(
            tracker.context_for(Some(a)).info.aws_request_id.as_deref(),
            Some("b"),
            "ended: by time"
        );
        tracker.end(b);
    }

    #[test]
    fn attributes_by_time_to_the_running_invocation() {
        let tracker = InvocationTracker::new(
            InvocationInfo {
                function_name: Some("fn".into()),
                ..Default::default()
            },
            true,
        );
        assert_eq!(tracker.current().phase, Some(Phase::Init));
        assert_eq!(
            tracker.current().json_fields(),
            r#""functionName":"fn","phase":"init""#
        );
        let a = tracker.begin(info("a"));
        let b = tracker.begin(info("b"));
        assert_eq!(tracker.current().candidates, ["a", "b"]);
        tracker.end(b);
        assert_eq!(tracker.current().info.aws_request_id.as_deref(), Some("a"));
        tracker.end(a);
        assert_eq!(tracker.current().info.aws_request_id.as_deref(), Some("a"));
        assert_eq!(tracker.current().phase, Some(Phase::Invoke));
    }
}
