//! JS-facing result objects, with JS numbers. Doc comments here become the JSDoc in binding.d.ts;
//! the options object is the core's own [`crate::config::RecorderOptions`].

use napi_derive::napi;

use crate::{attribution, recorder, stats};

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
        }

        impl From<stats::StatsSnapshot> for RecorderStats {
            fn from(snapshot: stats::StatsSnapshot) -> Self {
                RecorderStats { $( $field: snapshot.$field as f64, )* }
            }
        }
    };
}

stats::with_stat_fields!(js_stats);
