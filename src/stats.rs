//! Counters for everything the recorder receives, keeps, drops and delivers.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

macro_rules! stats {
    ($( $(#[$doc:meta])* $field:ident ),* $(,)?) => {
        /// Live counters, updated from the receiver and the sinks.
        #[derive(Debug, Default)]
        pub struct Stats {
            $( $(#[$doc])* pub $field: AtomicU64, )*
        }

        /// A point-in-time copy of [`Stats`].
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct StatsSnapshot {
            $( $(#[$doc])* pub $field: u64, )*
        }

        impl Stats {
            pub fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot { $( $field: self.$field.load(Relaxed), )* }
            }
        }
    };
}

stats! {
    /// Datagrams read from the socket, and events made in-process.
    received,
    /// Datagrams accepted as CSM events.
    parsed,
    /// Datagrams that were not valid CSM events (bad JSON, not an object, wrong field types).
    malformed,
    /// Datagrams over the 8 KiB CSM event limit.
    oversized,
    /// Events dropped because the buffer was full.
    dropped,
    /// Socket errors while receiving, other than "nothing to read" (each one pauses the receiver).
    receive_errors,
    /// Records the sink accepted.
    delivered,
    /// Records the sink could not deliver (counted once each).
    failed,
    /// Records that needed more than one delivery attempt.
    retried,
    /// Requests made to the sink, retries included (Firehose `PutRecordBatch` calls, file or
    /// stdout writes).
    requests,
    /// Duration of the last flush, in milliseconds.
    last_flush_ms,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn set(counter: &AtomicU64, n: u64) {
        counter.store(n, Relaxed);
    }
}
