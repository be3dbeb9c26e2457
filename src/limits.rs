//! Limits and defaults that the JavaScript side knows too. Their one home is data/limits.json, which
//! the JavaScript modules read and build.rs turns into the constants below.

use std::time::Duration;

mod shared {
    include!(concat!(env!("OUT_DIR"), "/limits.rs"));
}

const _: () = assert!(shared::DEFAULT_CSM_PORT <= u16::MAX as u64);

/// The SDKs' own limit on a serialized event (botocore and aws-sdk v2 drop anything larger).
pub const MAX_EVENT_BYTES: usize = shared::MAX_EVENT_BYTES as usize;
/// The CSM default host (all SDKs).
pub const DEFAULT_HOST: &str = shared::DEFAULT_CSM_HOST;
/// The CSM default port (all SDKs).
pub const DEFAULT_PORT: u16 = shared::DEFAULT_CSM_PORT as u16;
/// How long to wait at most, after the handler settles, for the events of its calls.
pub const DEFAULT_DRAIN: Duration = Duration::from_millis(shared::DEFAULT_DRAIN_MS);
/// Kept back from an invocation's deadline, so the function can still respond after delivering.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(shared::DEADLINE_MARGIN_MS);

/// Where the environment is never frozen (Lambda Managed Instances), records are delivered in the
/// background at least this often while any are buffered...
pub const BACKGROUND_DELIVERY_INTERVAL: Duration = Duration::from_secs(1);
/// ...or as soon as this many are buffered, whichever comes first.
pub const BACKGROUND_DELIVERY_RECORDS: usize = 500;
