//! A bounded in-memory buffer of records waiting to be flushed.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::record::Record;

/// Default cap on buffered records.
pub const DEFAULT_MAX_RECORDS: usize = 100_000;
/// Default cap on buffered bytes.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

/// FIFO of records bounded by count and by bytes. When full, new records are refused (and counted by
/// the caller), so what is already buffered is never evicted.
#[derive(Debug)]
pub struct RecordBuffer {
    max_records: usize,
    max_bytes: usize,
    inner: Mutex<Inner>,
    /// Wakes a waiting reader (a stream) when records have been admitted.
    arrived: Notify,
}

#[derive(Debug, Default)]
struct Inner {
    records: VecDeque<Record>,
    bytes: usize,
}

impl RecordBuffer {
    pub fn new(max_records: usize, max_bytes: usize) -> Self {
        RecordBuffer {
            max_records,
            max_bytes,
            inner: Mutex::new(Inner::default()),
            arrived: Notify::new(),
        }
    }

    /// Pushes records in order under one lock; returns how many were refused for lack of room.
    pub fn push_many(&self, records: Vec<Record>) -> usize {
        let count = records.len();
        let refused = {
            let mut inner = self.lock();
            records
                .into_iter()
                .map(|record| self.admit(&mut inner, record))
                .filter(|admitted| !admitted)
                .count()
        };
        if refused < count {
            self.arrived.notify_one();
        }
        refused
    }

    /// Notified after records are admitted; a permit is kept when nobody is waiting, so a reader
    /// that takes, then waits, never misses an arrival.
    pub fn arrived(&self) -> &Notify {
        &self.arrived
    }

    /// Appends `record` if it fits under both caps.
    fn admit(&self, inner: &mut Inner, record: Record) -> bool {
        let size = record.size();
        if inner.records.len() >= self.max_records || inner.bytes + size > self.max_bytes {
            return false;
        }
        inner.bytes += size;
        inner.records.push_back(record);
        true
    }

    /// How many records are buffered.
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes and returns everything buffered, oldest first.
    pub fn take_all(&self) -> Vec<Record> {
        let mut inner = self.lock();
        inner.bytes = 0;
        std::mem::take(&mut inner.records).into()
    }

    /// Copies of the buffered records as JSON objects, oldest first.
    pub fn snapshot_json(&self) -> Vec<String> {
        self.lock().records.iter().map(Record::to_json).collect()
    }

    /// Panics while holding the lock, which poisons it (see the `panic-probe` feature).
    #[cfg(feature = "panic-probe")]
    pub fn panic_while_locked(&self) -> ! {
        let _inner = self.lock();
        panic!("panic probe: raised while the record buffer's lock was held")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::attribution::{InvocationInfo, Phase, RecordContext};

    fn record(n: usize) -> Record {
        let context = Arc::new(RecordContext::new(Phase::Init, InvocationInfo::default()));
        Record::new(
            format!("{{\"Type\":\"ApiCall\",\"Latency\":{n}}}"),
            context,
            0,
        )
    }

    #[test]
    fn refuses_past_record_cap_and_keeps_order() {
        let buffer = RecordBuffer::new(2, usize::MAX);
        assert_eq!(buffer.push_many(vec![record(1), record(2), record(3)]), 1);
        let taken = buffer.take_all();
        assert_eq!(taken.len(), 2);
        assert!(taken[0].event_json().contains(":1}"));
        assert!(buffer.take_all().is_empty());
        assert_eq!(buffer.push_many(vec![record(4)]), 0);
    }

    #[test]
    fn refuses_past_byte_cap() {
        let one = record(1).size();
        let buffer = RecordBuffer::new(usize::MAX, one * 2);
        assert_eq!(buffer.push_many(vec![record(1), record(2), record(3)]), 1);
        assert_eq!(buffer.take_all().len(), 2);
    }
}
