//! The recorder's errors. Each has a stable code, which the Node.js binding exposes as `err.code`.

use std::net::SocketAddr;

use crate::config::ConfigError;

/// Every stable code an error of the recorder carries; the one list the docs are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// An option or environment variable has an unusable value.
    Config,
    /// The CSM port is taken by another process (or another recorder).
    PortInUse,
    /// The CSM socket cannot be bound for another reason.
    Bind,
    /// Lambda refused or did not answer the extension's registration.
    Extension,
    /// Records cannot be written where they were asked to go.
    Output,
    /// The recording proxy cannot start (its port, its certificate authority or its files).
    Proxy,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 6] = [
        ErrorCode::Config,
        ErrorCode::PortInUse,
        ErrorCode::Bind,
        ErrorCode::Extension,
        ErrorCode::Output,
        ErrorCode::Proxy,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Config => "ERR_RECORDER_CONFIG",
            ErrorCode::PortInUse => "ERR_RECORDER_PORT_IN_USE",
            ErrorCode::Bind => "ERR_RECORDER_BIND",
            ErrorCode::Extension => "ERR_RECORDER_EXTENSION",
            ErrorCode::Output => "ERR_RECORDER_OUTPUT",
            ErrorCode::Proxy => "ERR_RECORDER_PROXY",
        }
    }
}

impl AsRef<str> for ErrorCode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// An error with a stable code.
pub trait Coded: std::error::Error {
    fn code(&self) -> ErrorCode;
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecorderError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen for CSM datagrams on udp {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl Coded for RecorderError {
    fn code(&self) -> ErrorCode {
        match self {
            RecorderError::Config(_) => ErrorCode::Config,
            RecorderError::Bind { source, .. }
                if source.kind() == std::io::ErrorKind::AddrInUse =>
            {
                ErrorCode::PortInUse
            }
            RecorderError::Bind { .. } => ErrorCode::Bind,
        }
    }
}
