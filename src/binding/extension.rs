//! The binding of delivery after the response ([`crate::extension`]) and of the barrier drain.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::NativeRecorder;
use super::error::to_napi;
use super::options::{FlushReport, millis};
use crate::config::Whole;
use crate::error::ErrorCode;
use crate::extension::{LambdaExtension, Lifecycle, PendingRegistration, lock};

/// One internal extension per process, whichever recorder (and worker thread) registered it.
static EXTENSION: OnceLock<Arc<LambdaExtension>> = OnceLock::new();
/// A registration begun and not yet waited for ([`NativeRecorder::begin_extension_registration`]).
static PENDING: std::sync::Mutex<Option<PendingRegistration>> = std::sync::Mutex::new(None);
/// Held while a registration is begun or finished: two worker threads at once, the second waits,
/// then shares.
static REGISTERING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Records the extension could not deliver since last asked.
#[napi(object)]
pub struct UndeliveredReport {
    pub failed: f64,
    pub records: f64,
    pub error: Option<String>,
}

#[napi]
impl NativeRecorder {
    /// Sends the registration as a Lambda internal extension to the Extensions API at `runtimeApi`
    /// and returns at once, so that the rest of init (loading the function) overlaps Lambda's
    /// answer; `registerExtension` then waits for it. Returns whether a registration was begun:
    /// not where the environment is never frozen (that registration stays synchronous) nor when
    /// one was begun or done already.
    #[napi(
        catch_unwind,
        ts_args_type = "runtimeApi: string, name: string, timeoutMs: number"
    )]
    pub fn begin_extension_registration(
        &self,
        runtime_api: String,
        name: String,
        timeout_ms: Whole<u32>,
    ) -> Result<bool, ErrorCode> {
        let lifecycle = Lifecycle::of_environment();
        let _registering = lock(&REGISTERING);
        let mut pending = lock(&PENDING);
        if lifecycle == Lifecycle::NeverFrozen || EXTENSION.get().is_some() || pending.is_some() {
            return Ok(false);
        }
        let begun = LambdaExtension::begin_registration(
            self.inner.clone(),
            &runtime_api,
            &name,
            millis(timeout_ms),
            lifecycle,
        )
        .map_err(to_napi)?;
        *pending = Some(begun);
        Ok(true)
    }

    /// Registers this process as a Lambda internal extension with the Extensions API at `runtimeApi`
    /// (`AWS_LAMBDA_RUNTIME_API`), or finishes the registration `beginExtensionRegistration` sent,
    /// blocking until Lambda answers or `timeoutMs` passed (since it was sent), and starts
    /// delivering: `afterResponse` (after each response, on-demand Lambda) or `background` (where
    /// the environment is never frozen, as with Lambda Managed Instances: periodically and at
    /// SHUTDOWN, off the JS threads). Returns which. A process registers once, whichever worker
    /// thread asks first. Throws `ERR_RECORDER_EXTENSION` when Lambda refuses.
    #[napi(
        catch_unwind,
        ts_args_type = "runtimeApi: string, name: string, timeoutMs: number",
        ts_return_type = "'afterResponse' | 'background'"
    )]
    pub fn register_extension(
        &self,
        runtime_api: String,
        name: String,
        timeout_ms: Whole<u32>,
    ) -> Result<String, ErrorCode> {
        let lifecycle = Lifecycle::of_environment();
        let _registering = lock(&REGISTERING);
        if EXTENSION.get().is_none() {
            let begun = lock(&PENDING).take();
            let extension = match begun {
                Some(begun) => begun.finish(),
                None => LambdaExtension::register(
                    self.inner.clone(),
                    &runtime_api,
                    &name,
                    millis(timeout_ms),
                    lifecycle,
                ),
            }
            .map_err(to_napi)?;
            let _ = EXTENSION.set(extension);
        }
        Ok(lifecycle.delivery().to_owned())
    }

    /// Ends invocation `id` once a barrier proves the datagrams already sent have arrived (at most
    /// `drainMs`), without delivering: the background delivery does, where the environment is
    /// never frozen.
    #[napi(ts_args_type = "id: number, drainMs: number")]
    pub async fn end_invocation(&self, id: Whole<u32>, drain_ms: Whole<u32>) -> Result<()> {
        let drain_until = Instant::now() + millis(drain_ms);
        let inner = self.inner.clone();
        let receiver = inner.local_addr();
        let settled = async move {
            if let Some(receiver) = receiver {
                crate::barrier::pass(receiver, drain_until).await;
            }
        };
        inner.end_invocation_when(u64::from(id.0), settled).await;
        Ok(())
    }

    /// Invocation `id` (of Lambda request `awsRequestId`) has settled and its datagrams are sent:
    /// the extension proves they arrived (within `drainMs`), ends it and delivers its records, then
    /// lets Lambda freeze the environment.
    #[napi(
        catch_unwind,
        ts_args_type = "id: number, awsRequestId: string, drainMs: number"
    )]
    pub fn release_invocation(
        &self,
        id: Whole<u32>,
        aws_request_id: String,
        drain_ms: Whole<u32>,
    ) -> Result<()> {
        if let Some(extension) = EXTENSION.get() {
            extension.release(u64::from(id.0), &aws_request_id, millis(drain_ms));
        }
        Ok(())
    }

    /// The wrapper began running the handler for Lambda request `awsRequestId`.
    #[napi(catch_unwind)]
    pub fn invocation_started(&self, aws_request_id: String) -> Result<()> {
        if let Some(extension) = EXTENSION.get() {
            extension.started(&aws_request_id);
        }
        Ok(())
    }

    /// Takes the count of records the extension could not deliver since the last call.
    #[napi(catch_unwind)]
    pub fn take_undelivered(&self) -> Result<UndeliveredReport> {
        let undelivered = EXTENSION
            .get()
            .map(|e| e.take_undelivered())
            .unwrap_or_default();
        Ok(UndeliveredReport {
            failed: undelivered.failed as f64,
            records: undelivered.records as f64,
            error: undelivered.error,
        })
    }

    /// Ends invocation `id` once a barrier proves the datagrams already sent have arrived (at most
    /// `drainMs`), then delivers. `timeoutMs` caps the whole call; the configured `flushTimeoutMs`
    /// bounds the delivery as well.
    #[napi(
        ts_args_type = "id: number, drainMs?: number | undefined | null, timeoutMs?: number | undefined | null"
    )]
    pub async fn settle_invocation(
        &self,
        id: Whole<u32>,
        drain_ms: Option<Whole<u32>>,
        timeout_ms: Option<Whole<u32>>,
    ) -> Result<FlushReport> {
        let options = self.flush_options(drain_ms, timeout_ms);
        let drain_until = Instant::now() + options.drain;
        let inner = self.inner.clone();
        let receiver = inner.local_addr();
        let settled = async move {
            if let Some(receiver) = receiver {
                crate::barrier::pass(receiver, drain_until).await;
            }
        };
        let report = inner
            .finish_invocation_when(u64::from(id.0), settled, options.deadline)
            .await;
        Ok(report.into())
    }
}
