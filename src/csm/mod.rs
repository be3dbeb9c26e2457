//! The AWS Client-Side Monitoring (CSM) message model and its parser.
//!
//! SDKs send one compact JSON object per UDP datagram: an `ApiCallAttempt` per HTTP attempt and an
//! `ApiCall` per finished call. Key order differs between SDKs, strings may be `\u`-escaped or raw
//! UTF-8, and every attempt carries the caller's `SessionToken`, which the parser discards.

mod event;
pub mod outcome;
mod parse;

pub use event::{CsmEvent, EventType, FIELDS, FieldKind, FieldValue, RECORDER_FIELDS};
pub use parse::{MAX_EVENT_BYTES, ParseError, parse_datagram, parse_event, repair_lone_surrogates};
