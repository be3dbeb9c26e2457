//! The one place library errors become JS errors; `err.code` is the library's stable code.

use crate::error::RecorderError;

/// A stable error code string, shown to JS as `err.code`.
pub struct ErrorCode(&'static str);

impl AsRef<str> for ErrorCode {
    fn as_ref(&self) -> &str {
        self.0
    }
}

pub fn to_napi(error: RecorderError) -> napi::Error<ErrorCode> {
    napi::Error::new(ErrorCode(error.code()), error.to_string())
}

/// An option napi could not convert to its declared type: a configuration error like any other.
pub fn config_to_napi(error: napi::Error) -> napi::Error<ErrorCode> {
    napi::Error::new(
        ErrorCode(RecorderError::CONFIG_CODE),
        format!("invalid option: {}", error.reason),
    )
}

/// Registration of the Lambda extension failed; the wrapper falls back to delivering in-response.
pub fn extension_to_napi(error: crate::extension::ExtensionError) -> napi::Error<ErrorCode> {
    napi::Error::new(ErrorCode("ERR_RECORDER_EXTENSION"), error.to_string())
}
