//! Records every AWS API call a process makes.
//!
//! AWS SDKs with Client-Side Monitoring enabled send one JSON datagram per HTTP attempt and per call
//! to a local UDP port. This crate receives them ([`receiver`]) and takes them in ([`intake`]):
//! parsed and sanitized ([`csm`]: the session token never leaves the parser), attributed to the
//! running invocation ([`attribution`]), held in a bounded buffer ([`buffer`]) and counted
//! ([`stats`]). A flush delivers them to a sink ([`sink`]): Amazon Data Firehose, a local file or
//! stdout. [`Recorder`] wires these together; the Node.js binding is a thin layer over it.

pub mod attribution;
pub mod barrier;
pub mod buffer;
pub mod config;
pub mod csm;
pub mod error;
pub mod extension;
pub mod format;
pub mod intake;
pub mod limits;
pub mod proxy;
pub mod receiver;
pub mod record;
pub mod recorder;
pub mod runtime;
pub mod sink;
pub mod stats;
pub mod stream;
pub mod summary;

#[cfg(feature = "napi")]
mod binding;

pub use config::{RecorderConfig, RecorderOptions, SinkConfig, Whole};
pub use error::RecorderError;
pub use recorder::{FlushOptions, FlushReport, ProxyInfo, Recorder};
