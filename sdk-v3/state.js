'use strict'

// State shared by the plugin and the automatic instrumentation, one copy per process.

/** Counters since the process started, for diagnostics and tests. */
const counters = { calls: 0, attempts: 0, delivered: 0, sent: 0, oversized: 0, failures: 0 }

/**
 * `current`: the automatic instrumentation's state (`{ recorder }`) while it is on, else null. The
 * in-process target of plugins that name no recorder.
 */
const instrumentation = { current: null }

module.exports = { counters, instrumentation }
