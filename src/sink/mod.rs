//! Where flushed records go. Every destination implements [`Sink`].

mod file;
mod firehose;

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

pub use file::{FileSink, FileTarget};
pub use firehose::{FirehoseSink, MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_RECORD_BYTES, batch};

use crate::record::Record;

/// A boxed future, so sinks can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The outcome of delivering one set of records. Every record given to a sink is counted exactly once,
/// as delivered or as failed.
#[derive(Debug, Default)]
pub struct Delivery {
    pub delivered: u64,
    pub failed: u64,
    /// Records that needed more than one attempt.
    pub retried: u64,
    /// Requests made, retries included (API calls or writes).
    pub requests: u64,
    /// What went wrong, if anything did; a summary, free of record contents.
    pub error: Option<SinkError>,
}

impl Delivery {
    pub fn failed(count: usize, error: SinkError) -> Self {
        Delivery {
            failed: count as u64,
            error: Some(error),
            ..Default::default()
        }
    }
}

/// A destination for records.
pub trait Sink: Send + Sync {
    /// A short name for messages (`"stdout"`, `"file"`, `"firehose"`).
    fn name(&self) -> &'static str;

    /// Delivers `records`, giving up on what is left at `deadline`.
    fn deliver<'a>(&'a self, records: Vec<Record>, deadline: Instant) -> BoxFuture<'a, Delivery>;
}

/// Why a sink could not deliver records.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    #[error("cannot write recordings to {target}: {source}")]
    Write {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot format recordings as CSV: {0}")]
    Csv(#[from] crate::format::CsvError),
    #[error("Firehose delivery stream {stream:?}: {message}")]
    Firehose { stream: String, message: String },
}
