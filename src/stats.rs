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
            /// What each recording path took in, indexed by [`RecordingPath`].
            paths: [PathCounters; 5],
            /// What the recording proxy saw.
            pub proxy: ProxyCounters,
        }

        /// A point-in-time copy of [`Stats`].
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct StatsSnapshot {
            $( #[doc = $doc] pub $field: u64, )*
            pub paths: PathsSnapshot,
            pub proxy: ProxySnapshot,
        }

        impl Stats {
            pub fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot {
                    $( $field: self.$field.load(Relaxed), )*
                    paths: PathsSnapshot {
                        csm: self.path(RecordingPath::Csm).snapshot(),
                        plugin: self.path(RecordingPath::Plugin).snapshot(),
                        http: self.path(RecordingPath::Http).snapshot(),
                        sdk_v2: self.path(RecordingPath::SdkV2).snapshot(),
                        proxy: self.path(RecordingPath::Proxy).snapshot(),
                    },
                    proxy: self.proxy.snapshot(),
                }
            }
        }
    };
}

with_stat_fields!(define_stats);

/// How an event reached the recorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingPath {
    /// A datagram on the CSM socket (aws-sdk v2, botocore, the aws CLI, Go and Java v1 SDKs).
    Csm,
    /// An event of a v3 SDK client made in this process by the SDK plugin.
    Plugin,
    /// An event of a bundled v3 SDK made in this process from Node's HTTP client.
    Http,
    /// A monitoring event of an aws-sdk v2 client in this process, taken from the SDK's own events
    /// instead of its CSM datagram.
    SdkV2,
    /// A request seen by the recording proxy (any program, any SDK).
    Proxy,
}

impl RecordingPath {
    /// The path's name, as callers of the binding give it.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "csm" => Some(RecordingPath::Csm),
            "plugin" => Some(RecordingPath::Plugin),
            "http" => Some(RecordingPath::Http),
            "sdk-v2" => Some(RecordingPath::SdkV2),
            "proxy" => Some(RecordingPath::Proxy),
            _ => None,
        }
    }
}

/// What one path took in.
#[derive(Debug, Default)]
pub struct PathCounters {
    /// Datagrams or events, valid or not.
    pub events: AtomicU64,
    /// Accepted finished calls (`ApiCall`).
    pub calls: AtomicU64,
    /// Accepted attempts (every other accepted event).
    pub attempts: AtomicU64,
}

impl PathCounters {
    fn snapshot(&self) -> PathSnapshot {
        PathSnapshot {
            events: self.events.load(Relaxed),
            calls: self.calls.load(Relaxed),
            attempts: self.attempts.load(Relaxed),
        }
    }
}

/// A point-in-time copy of [`PathCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathSnapshot {
    pub events: u64,
    pub calls: u64,
    pub attempts: u64,
}

/// A point-in-time copy of every path's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathsSnapshot {
    pub csm: PathSnapshot,
    pub plugin: PathSnapshot,
    pub http: PathSnapshot,
    pub sdk_v2: PathSnapshot,
    pub proxy: PathSnapshot,
}

/// Gives the proxy's counters (names and descriptions) to the macro `$then`, like
/// `with_stat_fields`.
macro_rules! with_proxy_fields {
    ($then:ident) => {
        $then! {
            connections: "Client connections accepted.",
            requests: "HTTP requests read from clients, decrypted or plain.",
            decrypted: "CONNECT tunnels to AWS hosts whose TLS the proxy terminated.",
            tunnelled: "CONNECT tunnels to other hosts, passed through untouched.",
            not_understood: "Requests or tunnels that were not valid HTTP (their connection was closed).",
            refused: "TLS handshakes a client refused (it does not trust the recorder's CA).",
            upstream_failed: "Tunnels and requests whose upstream could not be reached or broke off.",
            unnamed: "Records made while too many waited to be named: recorded as the request head named them.",
            csm_copies: "CSM events of calls the proxy recorded too (a program that sends both): left out.",
        }
    };
}
#[cfg(feature = "napi")]
pub(crate) use with_proxy_fields;

macro_rules! define_proxy_stats {
    ($( $field:ident: $doc:literal ),* $(,)?) => {
        /// The recording proxy's live counters.
        #[derive(Debug, Default)]
        pub struct ProxyCounters {
            $( #[doc = $doc] pub $field: AtomicU64, )*
        }

        /// A point-in-time copy of [`ProxyCounters`].
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct ProxySnapshot {
            $( #[doc = $doc] pub $field: u64, )*
        }

        impl ProxyCounters {
            pub fn snapshot(&self) -> ProxySnapshot {
                ProxySnapshot { $( $field: self.$field.load(Relaxed), )* }
            }
        }
    };
}

with_proxy_fields!(define_proxy_stats);

impl Stats {
    pub fn path(&self, path: RecordingPath) -> &PathCounters {
        &self.paths[path as usize]
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn set(counter: &AtomicU64, n: u64) {
        counter.store(n, Relaxed);
    }
}
