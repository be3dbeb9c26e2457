//! JS values in and out: numbers checked on the way in, result objects with JS numbers on the way
//! out. Doc comments here become the JSDoc in binding.d.ts; the options object is the core's own
//! [`crate::config::RecorderOptions`].

use std::time::Duration;

use napi::bindgen_prelude::{FromNapiValue, ToNapiValue, TypeName, Unknown, ValueType};
use napi::{Status, sys};
use napi_derive::napi;

use super::error::config_to_napi;
use crate::config::{RecorderOptions, Whole};
use crate::error::ErrorCode;
use crate::{attribution, proxy, recorder, stats};

/// Reads the constructor's options. A value of the wrong kind for its option (a string for a
/// number, a fraction for a port) is `ERR_RECORDER_CONFIG`, like every other unusable option.
pub fn recorder_options(
    options: Option<Unknown<'_>>,
) -> Result<RecorderOptions, napi::Error<ErrorCode>> {
    match options {
        Some(options) => RecorderOptions::from_unknown(options).map_err(config_to_napi),
        None => Ok(RecorderOptions::default()),
    }
}

/// An unsigned integer type a JS number can be checked into.
pub trait WholeNumber: Copy + TryFrom<u64> + Into<f64> {
    const MAX: Self;
}

impl WholeNumber for u16 {
    const MAX: Self = u16::MAX;
}

impl WholeNumber for u32 {
    const MAX: Self = u32::MAX;
}

/// `value` as a `T` when it is a whole number from 0 to `T::MAX`; never rounded, clamped or wrapped.
fn whole_number<T: WholeNumber>(value: f64) -> Option<T> {
    let in_range = value.fract() == 0.0 && (0.0..=T::MAX.into()).contains(&value);
    in_range.then(|| T::try_from(value as u64).ok()).flatten()
}

/// A duration given in whole milliseconds.
pub fn millis(Whole(ms): Whole<u32>) -> Duration {
    Duration::from_millis(ms.into())
}

impl<T: WholeNumber> TypeName for Whole<T> {
    fn type_name() -> &'static str {
        "number"
    }

    fn value_type() -> ValueType {
        ValueType::Number
    }
}

impl<T: WholeNumber> FromNapiValue for Whole<T> {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        let expected = |got: &dyn std::fmt::Display| {
            let max: f64 = T::MAX.into();
            napi::Error::new(
                Status::InvalidArg,
                format!("expected a whole number from 0 to {max}, got {got}"),
            )
        };
        // SAFETY: the caller's guarantees are passed on unchanged.
        let number = unsafe { f64::from_napi_value(env, value) }
            .map_err(|_| expected(&"a value that is not a number"))?;
        whole_number(number)
            .map(Whole)
            .ok_or_else(|| expected(&number))
    }
}

impl<T: WholeNumber> ToNapiValue for Whole<T> {
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
        // SAFETY: the caller's guarantees are passed on unchanged.
        unsafe { f64::to_napi_value(env, value.0.into()) }
    }
}

/// The invocation records are attributed to.
#[napi(object)]
#[derive(Default)]
pub struct InvocationInfo {
    pub function_name: Option<String>,
    pub function_version: Option<String>,
    pub aws_request_id: Option<String>,
    pub cold_start: Option<bool>,
}

impl From<InvocationInfo> for attribution::InvocationInfo {
    fn from(i: InvocationInfo) -> Self {
        attribution::InvocationInfo {
            function_name: i.function_name,
            function_version: i.function_version,
            aws_request_id: i.aws_request_id,
            cold_start: i.cold_start,
        }
    }
}

macro_rules! js_flush_report {
    ($( $field:ident: $doc:literal ),* $(,)?) => {
        /// What one flush did.
        #[napi(object)]
        pub struct FlushReport {
            $( #[doc = $doc] pub $field: f64, )*
            /// Why records failed, when some did.
            pub error: Option<String>,
        }

        impl From<recorder::FlushReport> for FlushReport {
            fn from(report: recorder::FlushReport) -> Self {
                FlushReport {
                    $( $field: report.$field as f64, )*
                    error: report.error,
                }
            }
        }
    };
}

recorder::with_flush_report_counts!(js_flush_report);

macro_rules! js_stats {
    ($( $field:ident: $doc:literal ),* $(,)?) => {
        /// Counters since the recorder was created.
        #[napi(object)]
        pub struct RecorderStats {
            $( #[doc = $doc] pub $field: f64, )*
            /// What each recording path took in.
            pub paths: RecordingPaths,
            /// What the recording proxy saw.
            pub proxy: ProxyCounts,
        }

        impl From<stats::StatsSnapshot> for RecorderStats {
            fn from(snapshot: stats::StatsSnapshot) -> Self {
                RecorderStats {
                    $( $field: snapshot.$field as f64, )*
                    paths: snapshot.paths.into(),
                    proxy: snapshot.proxy.into(),
                }
            }
        }
    };
}

stats::with_stat_fields!(js_stats);

/// What one recording path took in.
#[napi(object)]
pub struct PathCounts {
    /// Finished calls (`ApiCall` events) accepted.
    pub calls: f64,
    /// Attempts (`ApiCallAttempt` events) accepted.
    pub attempts: f64,
}

/// What each recording path took in, counted where it is taken in.
#[napi(object)]
pub struct RecordingPaths {
    /// Over UDP from SDKs with Client-Side Monitoring (aws-sdk v2, botocore, the aws CLI), and
    /// events given to `ingest()` without a path.
    pub csm: CsmCounts,
    /// Events of v3 SDK clients recorded by the plugin (automatic or `recorderPlugin()`).
    pub plugin: PathCounts,
    /// Events of bundled v3 SDKs recorded from Node's HTTP client (option `sdkV3Http`).
    pub http: PathCounts,
    /// Events of aws-sdk v2 clients in this process, taken from the SDK's own monitoring events
    /// (when the SDK does not send them over CSM itself).
    pub sdk_v2: PathCounts,
    /// Requests seen by the recording proxy (`startProxy()`).
    pub proxy: PathCounts,
}

/// What arrived over Client-Side Monitoring.
#[napi(object)]
pub struct CsmCounts {
    /// Finished calls (`ApiCall` events) accepted.
    pub calls: f64,
    /// Attempts (`ApiCallAttempt` events) accepted.
    pub attempts: f64,
    /// Datagrams received, valid or not.
    pub datagrams: f64,
}

impl From<stats::PathsSnapshot> for RecordingPaths {
    fn from(paths: stats::PathsSnapshot) -> Self {
        let counts = |p: stats::PathSnapshot| PathCounts {
            calls: p.calls as f64,
            attempts: p.attempts as f64,
        };
        RecordingPaths {
            csm: CsmCounts {
                calls: paths.csm.calls as f64,
                attempts: paths.csm.attempts as f64,
                datagrams: paths.csm.events as f64,
            },
            plugin: counts(paths.plugin),
            http: counts(paths.http),
            sdk_v2: counts(paths.sdk_v2),
            proxy: counts(paths.proxy),
        }
    }
}

macro_rules! js_proxy_counts {
    ($( $field:ident: $doc:literal ),* $(,)?) => {
        /// What the recording proxy saw.
        #[napi(object)]
        pub struct ProxyCounts {
            $( #[doc = $doc] pub $field: f64, )*
        }

        impl From<stats::ProxySnapshot> for ProxyCounts {
            fn from(snapshot: stats::ProxySnapshot) -> Self {
                ProxyCounts { $( $field: snapshot.$field as f64, )* }
            }
        }
    };
}

stats::with_proxy_fields!(js_proxy_counts);

/// Options of `startProxy()`.
#[napi(object)]
#[derive(Default)]
pub struct ProxyStart {
    /// `http://host:port` or `https://host:port`: every decrypted request is sent there instead of
    /// to the AWS endpoint it names, unchanged (its `Host` header and signature included), as for
    /// moto or LocalStack.
    pub upstream: Option<String>,
    /// The directory the run's private CA directory is made in (default: the system's temporary
    /// directory).
    pub ca_dir: Option<String>,
    /// Events wait to be named by the caller (`takeProxyEvents()`), which ingests each with path
    /// `proxy`; otherwise they are recorded as the request head names them.
    pub hold_for_naming: Option<bool>,
}

impl From<ProxyStart> for proxy::ProxyOptions {
    fn from(options: ProxyStart) -> Self {
        proxy::ProxyOptions {
            upstream: options.upstream,
            ca_parent: options.ca_dir.map(Into::into),
            hold_for_naming: options.hold_for_naming.unwrap_or(false),
        }
    }
}

/// A proxy event waiting to be named, with the request it was made from.
#[napi(object)]
pub struct ProxyEventToName {
    /// The event as the request head names it (an `ApiCallAttempt` or `ApiCall`).
    pub event_json: String,
    pub method: String,
    /// The path and query as sent, without signature and token parameters.
    pub target: String,
    /// The host the request was sent to (lower case, no port).
    pub host: String,
    /// Header names in lower case; no credential header is ever given.
    pub headers: std::collections::HashMap<String, String>,
    /// A JSON or form body that ended within 16 KiB.
    pub body: Option<String>,
}

impl From<proxy::record::ProxyEvent> for ProxyEventToName {
    fn from(event: proxy::record::ProxyEvent) -> Self {
        let request = &event.request;
        ProxyEventToName {
            method: request.method.clone(),
            target: request.target.clone(),
            host: request.host.clone(),
            headers: request.headers.iter().cloned().collect(),
            body: request.body.clone(),
            event_json: event.json,
        }
    }
}

/// A started proxy.
#[napi(object)]
pub struct ProxyStarted {
    /// `127.0.0.1:port`.
    pub address: String,
    /// The private directory (mode 0700) holding the CA files; removed by `stopProxy()`.
    pub ca_dir: String,
    /// The CA certificate (PEM, mode 0600).
    pub ca_cert_path: String,
    /// The CA certificate followed by the system's roots (PEM, mode 0600).
    pub ca_bundle_path: String,
    /// The variables a program needs to record through the proxy: the proxy URL, the hosts it
    /// leaves alone, and the CA bundle for each SDK's variable.
    pub env: std::collections::HashMap<String, String>,
}

impl From<recorder::ProxyInfo> for ProxyStarted {
    fn from(info: recorder::ProxyInfo) -> Self {
        ProxyStarted {
            address: info.address.to_string(),
            ca_dir: info.ca_dir.display().to_string(),
            ca_cert_path: info.ca_cert_path.display().to_string(),
            ca_bundle_path: info.ca_bundle_path.display().to_string(),
            env: info
                .env
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
        }
    }
}
