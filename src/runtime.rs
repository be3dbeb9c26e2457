//! The addon's one tokio runtime: the receiver and the sinks run here, never on the JS thread. In
//! Node.js it is handed to napi at module load, so async binding calls run on it too.

use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// Builds the runtime. One worker suffices: all of its work is I/O.
pub fn build() -> std::io::Result<Runtime> {
    Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("api-call-recorder")
        .enable_all()
        .build()
}

/// A process-wide runtime for recorders made outside Node.js (tests, tools), started on first use.
pub fn handle() -> std::io::Result<Handle> {
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime.handle().clone());
    }
    // Another thread may have won the race; its runtime is used and ours is dropped.
    let _ = RUNTIME.set(build()?);
    Ok(RUNTIME
        .get()
        .expect("runtime was just set")
        .handle()
        .clone())
}
