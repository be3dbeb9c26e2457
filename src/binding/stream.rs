//! `NativeRecorder#stream`: the command line's output, written natively.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::NativeRecorder;
use super::error::to_napi;
use crate::error::ErrorCode;
use crate::stream::{Stream, StreamFormat, StreamOptions, StreamTarget};

/// What a stream writes, and where.
#[napi(object)]
pub struct StreamOutputOptions {
    /// `jsonl`, `csv` or `table`.
    #[napi(ts_type = "'jsonl' | 'csv' | 'table'")]
    pub format: String,
    /// A file to append to, `-` for standard output; absent: records are summarized, not written.
    pub output: Option<String>,
    /// Write only failed calls and failed attempts; every record is summarized.
    pub only_errors: Option<bool>,
}

/// What a finished stream did.
#[napi(object)]
pub struct StreamReport {
    /// The summary as JSON, in the shape `summary --json` prints.
    pub summary_json: String,
    /// Records written to the output.
    pub written: f64,
    /// Why the output stopped taking records, unless its reader closed it.
    pub error: Option<String>,
}

/// A running stream.
#[napi]
pub struct NativeStream {
    inner: Arc<Stream>,
}

#[napi]
impl NativeStream {
    /// Resolves when the output stops taking records (its reader went away, a write failed) or
    /// when the stream is finished.
    #[napi]
    pub async fn closed(&self) -> Result<()> {
        self.inner.closed().await;
        Ok(())
    }

    /// Writes what is buffered and ends the stream (stop the recorder first, so nothing arrives
    /// after). Resolves with the report; `null` when the stream was already finished.
    #[napi]
    pub async fn finish(&self) -> Result<Option<StreamReport>> {
        let Some(report) = self.inner.finish().await else {
            return Ok(None);
        };
        let summary_json = serde_json::to_string(&report.summary)
            .map_err(|e| napi::Error::from_reason(e.to_string()))?;
        Ok(Some(StreamReport {
            summary_json,
            written: report.written as f64,
            error: report.error,
        }))
    }
}

#[napi]
impl NativeRecorder {
    /// Streams records to an output as they arrive, formatted natively and summarized, instead of
    /// buffering them. Only for a recorder whose sink is `none`; one stream at a time. Throws
    /// `ERR_RECORDER_OUTPUT` when the output cannot be opened.
    #[napi(catch_unwind)]
    pub fn stream(&self, options: StreamOutputOptions) -> Result<NativeStream, ErrorCode> {
        let format: StreamFormat = options
            .format
            .parse()
            .map_err(|message: String| napi::Error::new(ErrorCode::Config, message))?;
        let target = options.output.map(|output| match output.as_str() {
            "-" => StreamTarget::Stdout,
            path => StreamTarget::File(path.into()),
        });
        let stream = self
            .inner
            .stream(StreamOptions {
                format,
                target,
                only_errors: options.only_errors.unwrap_or(false),
            })
            .map_err(to_napi)?;
        Ok(NativeStream {
            inner: Arc::new(stream),
        })
    }
}
