//! Local output: JSON Lines or CSV, appended to a file or written to stdout.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::{BoxFuture, Delivery, Sink, SinkError};
use crate::format::{CsvWriter, OutputFormat, write_jsonl};
use crate::record::Record;

/// Where a [`FileSink`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileTarget {
    /// The process's stdout (CloudWatch Logs, inside Lambda).
    Stdout,
    /// A file, created if missing and appended to.
    Path(PathBuf),
}

impl std::fmt::Display for FileTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileTarget::Stdout => f.write_str("stdout"),
            FileTarget::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Writes records locally. Each delivery is one `write` of the formatted batch.
#[derive(Debug)]
pub struct FileSink {
    target: FileTarget,
    format: OutputFormat,
    /// Serializes writes from concurrent flushes and remembers whether the CSV header is out.
    state: Arc<std::sync::Mutex<WriterState>>,
}

#[derive(Debug, Default)]
struct WriterState {
    csv_header_written: bool,
}

impl FileSink {
    pub fn new(target: FileTarget, format: OutputFormat) -> Self {
        FileSink {
            target,
            format,
            state: Arc::default(),
        }
    }

    fn write_blocking(
        target: &FileTarget,
        format: OutputFormat,
        state: &std::sync::Mutex<WriterState>,
        records: &[Record],
    ) -> Result<(), SinkError> {
        let mut state = state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let write_error = |source| SinkError::Write {
            target: target.to_string(),
            source,
        };
        let mut file = match target {
            FileTarget::Stdout => None,
            FileTarget::Path(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(write_error)?;
                }
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(write_error)?;
                Some(file)
            }
        };
        let mut bytes = Vec::with_capacity(records.len() * 640);
        match format {
            OutputFormat::Jsonl => write_jsonl(records, &mut bytes),
            OutputFormat::Csv => {
                // A file that already has content already has its header.
                let needs_header = match &file {
                    Some(file) => file.metadata().map_err(write_error)?.len() == 0,
                    None => !state.csv_header_written,
                };
                CsvWriter::new(needs_header).write(records, &mut bytes)?;
                state.csv_header_written = true;
            }
        }
        match file.as_mut() {
            Some(file) => file.write_all(&bytes).map_err(write_error),
            None => {
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(&bytes)
                    .and_then(|()| stdout.flush())
                    .map_err(write_error)
            }
        }
    }
}

impl Sink for FileSink {
    fn name(&self) -> &'static str {
        match self.target {
            FileTarget::Stdout => "stdout",
            FileTarget::Path(_) => "file",
        }
    }

    fn deliver<'a>(&'a self, records: Vec<Record>, _deadline: Instant) -> BoxFuture<'a, Delivery> {
        let target = self.target.clone();
        let format = self.format;
        let state = self.state.clone();
        Box::pin(async move {
            let count = records.len();
            if count == 0 {
                return Delivery::default();
            }
            // File and pipe writes block; keep them off the runtime's worker threads.
            let written = tokio::task::spawn_blocking(move || {
                Self::write_blocking(&target, format, &state, &records)
            })
            .await;
            match written {
                Ok(Ok(())) => Delivery {
                    delivered: count as u64,
                    requests: 1,
                    ..Default::default()
                },
                Ok(Err(error)) => Delivery {
                    requests: 1,
                    ..Delivery::failed(count, error)
                },
                Err(join_error) => Delivery::failed(
                    count,
                    SinkError::Write {
                        target: self.target.to_string(),
                        source: std::io::Error::other(join_error.to_string()),
                    },
                ),
            }
        })
    }
}
