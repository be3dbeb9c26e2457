'use strict'

// Milliseconds on a monotonic clock, for latencies and bounds. From process.hrtime rather than
// performance.now(), whose module (perf_hooks) loads about ten more of Node's own at require: about
// 1 ms of every cold start.

/** Milliseconds since an arbitrary origin, with sub-millisecond precision. */
function nowMs() {
  return Number(process.hrtime.bigint()) / 1e6
}

module.exports = { nowMs }
