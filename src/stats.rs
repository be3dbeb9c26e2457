//! Counters for everything the recorder receives, keeps, drops and delivers.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Gives the counters (names and descriptions) to the macro `$then`: the live counters, their
/// snapshot and the binding's JS object are all made from this one list.
macro_rules! with_stat_fields {
    ($then:ident) => {
        $then! {
            received: "Datagrams read from the socket, and events made in-process.",
            parsed: "Datagrams accepted as CSM events.",
            calls: "Accepted events that are finished calls (`ApiCall`), whichever path they came by.",
            malformed: "Datagrams that were not valid CSM events (bad JSON, not an object, wrong field types).",
            oversized: "Datagrams over the 8 KiB CSM event limit.",
            dropped: "Events dropped because the buffer was full.",
            receive_errors: "Socket errors while receiving, other than `WouldBlock` (each one pauses the receiver).",
            delivered: "Records the sink accepted.",
            failed: "Records the sink could not deliver (counted once each).",
            retried: "Records that needed more than one delivery attempt.",
            requests: "Requests made to the sink, retries included (Firehose `PutRecordBatch` calls, file or stdout writes).",
            last_flush_ms: "Duration of the last flush, in milliseconds.",
        }
    };
}
#[cfg(feature = "napi")]
pub(crate) use with_stat_fields;

macro_rules! define_stats {
    ($( $field:ident: $doc:literal ),* $(,)?) => {
        /// Live counters, updated from the receiver and the sinks.
        #[derive(Debug, Default)]
        pub struct Stats {
            $( #[doc = $doc] pub $field: AtomicU64, )*
        }

        /// A point-in-time copy of [`Stats`].
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct StatsSnapshot {
            $( #[doc = $doc] pub $field: u64, )*
        }

        impl Stats {
            pub fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot { $( $field: self.$field.load(Relaxed), )* }
            }
        }
    };
}

with_stat_fields!(define_stats);

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn set(counter: &AtomicU64, n: u64) {
        counter.store(n, Relaxed);
    }
}
