//! A recorded call: the sanitized CSM event as compact JSON, plus the context it was received under.

use std::sync::Arc;

use crate::attribution::RecordContext;

/// One buffered record. Stored as the compact JSON the sinks send, so a record costs little more
/// than its datagram and delivery never re-encodes it.
#[derive(Debug, Clone)]
pub struct Record {
    /// The sanitized event: a JSON object, compact, no `SessionToken`.
    event_json: Box<str>,
    context: Arc<RecordContext>,
    /// Epoch milliseconds when the receiver accepted the datagram.
    recorded_at: u64,
}

impl Record {
    pub fn new(event_json: String, context: Arc<RecordContext>, recorded_at: u64) -> Self {
        debug_assert!(
            event_json.starts_with('{') && event_json.ends_with('}') && event_json.len() > 2
        );
        Record {
            event_json: event_json.into_boxed_str(),
            context,
            recorded_at,
        }
    }

    pub fn event_json(&self) -> &str {
        &self.event_json
    }

    pub fn context(&self) -> &RecordContext {
        &self.context
    }

    pub fn recorded_at(&self) -> u64 {
        self.recorded_at
    }

    /// Bytes this record accounts for in the buffer.
    pub fn size(&self) -> usize {
        self.event_json.len() + std::mem::size_of::<Self>()
    }

    /// Appends the full record (event fields, context fields, `recordedAt`) as one JSON object.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.event_json.as_bytes()[..self.event_json.len() - 1]);
        let context = self.context.json_fields();
        if !context.is_empty() {
            out.push(b',');
            out.extend_from_slice(context.as_bytes());
        }
        out.extend_from_slice(b",\"recordedAt\":");
        out.extend_from_slice(self.recorded_at.to_string().as_bytes());
        out.push(b'}');
    }

    /// The full record as one JSON object.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(self.event_json.len() + 160);
        self.write_json(&mut out);
        String::from_utf8(out).expect("records are built from UTF-8 JSON")
    }
}
