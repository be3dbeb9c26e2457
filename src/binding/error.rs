//! The one place library errors become JS errors; `err.code` is the library's stable code.

use napi_derive::napi;

use crate::error::{Coded, ErrorCode};

pub fn to_napi(error: impl Coded) -> napi::Error<ErrorCode> {
    napi::Error::new(error.code(), error.to_string())
}

/// An option napi could not convert to its declared type: a configuration error like any other.
pub fn config_to_napi(error: napi::Error) -> napi::Error<ErrorCode> {
    napi::Error::new(
        ErrorCode::Config,
        format!("invalid option: {}", error.reason),
    )
}

/// Every `err.code` the native recorder throws with.
#[napi(catch_unwind)]
#[cfg_attr(test, allow(dead_code))]
pub fn error_codes() -> napi::Result<Vec<&'static str>> {
    Ok(ErrorCode::ALL.iter().map(|code| code.as_str()).collect())
}
