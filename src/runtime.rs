//! The addon's one tokio runtime: the receiver and the sinks run here, never on the JS thread. In
//! Node.js it is handed to napi at module load, so async binding calls run on it too.

use std::sync::{Mutex, OnceLock};

use tokio::runtime::{Builder, Handle, Runtime};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
/// Held while the runtime is built, so only one is ever built: a second one, dropped, would stop
/// its threads, and dropping a runtime panics where blocking is not allowed (inside another one).
static BUILDING: Mutex<()> = Mutex::new(());

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
    let _building = BUILDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime.handle().clone());
    }
    let runtime = build()?;
    Ok(RUNTIME.get_or_init(|| runtime).handle().clone())
}
