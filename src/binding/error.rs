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
