//! The recorder's errors. Each has a stable code, which the Node.js binding exposes as `err.code`.

use std::net::SocketAddr;

use crate::config::ConfigError;

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
    #[error("cannot start the recorder's background runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl RecorderError {
    /// The code of a configuration error.
    pub const CONFIG_CODE: &'static str = "ERR_RECORDER_CONFIG";

    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            RecorderError::Config(_) => Self::CONFIG_CODE,
            RecorderError::Bind { source, .. }
                if source.kind() == std::io::ErrorKind::AddrInUse =>
            {
                "ERR_RECORDER_PORT_IN_USE"
            }
            RecorderError::Bind { .. } => "ERR_RECORDER_BIND",
            RecorderError::Runtime(_) => "ERR_RECORDER_RUNTIME",
        }
    }
}
