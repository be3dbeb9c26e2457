//! The recorder's own tokio runtime: the receiver and the sinks run here, never on the JS thread.

use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

use crate::error::RecorderError;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The process-wide runtime, started on first use. One worker suffices: all of its work is I/O.
pub fn handle() -> Result<Handle, RecorderError> {
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime.handle().clone());
    }
    let runtime = Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("api-call-recorder")
        .enable_all()
        .build()
        .map_err(RecorderError::Runtime)?;
    // Another thread may have won the race; its runtime is used and ours is dropped.
    let _ = RUNTIME.set(runtime);
    Ok(RUNTIME
        .get()
        .expect("runtime was just set")
        .handle()
        .clone())
}
