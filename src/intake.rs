//! The one intake path: parse → attribute → buffer → count. Received datagrams and events made
//! in-process (the v3 SDK plugin) both come through here, so every one is counted exactly once.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::attribution::{InvocationTracker, RecordContext};
use crate::buffer::RecordBuffer;
use crate::csm::{CsmEvent, EventType, ParseError, parse_datagram, repair_lone_surrogates};
use crate::proxy::seen::SeenRequests;
use crate::record::Record;
use crate::stats::{RecordingPath, Stats};

/// Turns datagrams into buffered records and counts every outcome.
#[derive(Debug)]
pub struct Intake {
    pub stats: Stats,
    pub buffer: RecordBuffer,
    pub invocations: InvocationTracker,
    /// Leave the access key id (`AccessKey`) out of records.
    pub drop_access_key: bool,
    /// Requests the recording proxy relayed: CSM's copies of their calls are left out.
    pub proxied: SeenRequests,
}

impl Intake {
    /// Accepts one datagram received at `now_ms`.
    pub fn accept(&self, datagram: &[u8], now_ms: u64) {
        self.accept_batch(std::iter::once(Some(datagram)), now_ms);
    }

    /// Accepts datagrams received together; `None` is one too large to read whole. Counters and the
    /// buffer are updated once for the batch.
    pub fn accept_batch<'a>(&self, datagrams: impl Iterator<Item = Option<&'a [u8]>>, now_ms: u64) {
        self.accept_from(RecordingPath::Csm, datagrams, now_ms, None);
    }

    /// Accepts one event made in this process by `path`, as if it had been received; `invocation`
    /// is the invocation whose code made the call, when the caller knows it.
    pub fn accept_in_process(
        &self,
        path: RecordingPath,
        event: &[u8],
        now_ms: u64,
        invocation: Option<u64>,
    ) {
        self.accept_from(path, std::iter::once(Some(event)), now_ms, invocation);
    }

    fn accept_from<'a>(
        &self,
        path: RecordingPath,
        datagrams: impl Iterator<Item = Option<&'a [u8]>>,
        now_ms: u64,
        invocation: Option<u64>,
    ) {
        let context = self.invocations.context_for(invocation);
        let mut records = Vec::with_capacity(datagrams.size_hint().0);
        let (mut received, mut oversized, mut malformed, mut calls, mut copies) = (0, 0, 0, 0, 0);
        let mut marker = None;
        for datagram in datagrams {
            // The recorder's own barrier markers are not traffic: neither counted nor buffered.
            if let Some(sequence) = datagram.and_then(crate::barrier::marker_sequence) {
                marker = marker.max(Some(sequence));
                continue;
            }
            received += 1;
            match datagram.map(|d| self.to_record(d, path, now_ms, &context)) {
                Some(Ok(None)) => copies += 1,
                Some(Ok(Some((record, is_call)))) => {
                    calls += u64::from(is_call);
                    records.push(record);
                }
                Some(Err(ParseError::Oversized { .. })) | None => oversized += 1,
                Some(Err(_)) => malformed += 1,
            }
        }
        let stats = &self.stats;
        Stats::add(&stats.received, received);
        Stats::add(&stats.parsed, records.len() as u64);
        Stats::add(&stats.calls, calls);
        Stats::add(&stats.oversized, oversized);
        Stats::add(&stats.malformed, malformed);
        Stats::add(&stats.proxy.csm_copies, copies);
        let by_path = stats.path(path);
        Stats::add(&by_path.events, received);
        Stats::add(&by_path.calls, calls);
        Stats::add(&by_path.attempts, records.len() as u64 - calls);
        let refused = self.buffer.push_many(records);
        Stats::add(&stats.dropped, refused as u64);
        if let Some(sequence) = marker {
            crate::barrier::arrived(sequence);
        }
    }

    /// Parses and sanitizes one datagram into a record; says whether it is an `ApiCall`. `None`
    /// for CSM's copy of a call the recording proxy recorded.
    fn to_record(
        &self,
        datagram: &[u8],
        path: RecordingPath,
        now_ms: u64,
        context: &Arc<RecordContext>,
    ) -> Result<Option<(Record, bool)>, ParseError> {
        let repaired;
        let event = match parse_datagram(datagram, self.drop_access_key) {
            Ok(event) => event,
            Err(error @ ParseError::Oversized { .. }) => return Err(error),
            // Rare: retried only when the datagram has a lone surrogate escape to repair.
            Err(error) => match repair_lone_surrogates(datagram) {
                Some(fixed) => {
                    repaired = fixed;
                    parse_datagram(&repaired, self.drop_access_key)?
                }
                None => return Err(error),
            },
        };
        if path == RecordingPath::Csm && self.proxied.is_copy(&event) {
            return Ok(None);
        }
        let record = Record::new(record_json(&event), context.clone(), now_ms);
        Ok(Some((record, is_call(&event))))
    }
}

fn is_call(event: &CsmEvent<'_>) -> bool {
    event.event_type == EventType::ApiCall
}

/// The record's JSON: the datagram's own text when it is a faithful copy (the common case, which
/// saves serializing again), else the event serialized anew.
fn record_json(event: &CsmEvent<'_>) -> String {
    match event.source_json() {
        Some(text) => text.to_owned(),
        None => serde_json::to_string(event).expect("a parsed event always serializes"),
    }
}

/// Milliseconds since the Unix epoch, as records carry them.
pub fn epoch_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
