'use strict'

// State shared by the plugin and the automatic instrumentation, one copy per process.

/** Counters since the process started, for diagnostics and tests. */
const counters = {
  calls: 0,
  attempts: 0,
  delivered: 0,
  sent: 0,
  oversized: 0,
  failures: 0,
  httpCalls: 0,
  httpAttempts: 0,
  httpUnidentified: 0,
  httpSkipped: 0,
}

/**
 * `current`: the automatic instrumentation's state (`{ recorder }`) while it is on, else null. The
 * in-process target of plugins that name no recorder.
 */
const instrumentation = { current: null }

/** At most this many invocation ids are remembered as the plugin's; the oldest go first. */
const MAX_PLUGIN_INVOCATIONS = 10_000

/**
 * `amz-sdk-invocation-id`s of the calls the plugin is recording right now. The HTTP layer skips
 * their requests, so no call is recorded twice.
 */
const pluginInvocations = new Set()

function markPluginInvocation(id) {
  if (typeof id !== 'string' || pluginInvocations.has(id)) return
  if (pluginInvocations.size >= MAX_PLUGIN_INVOCATIONS) {
    pluginInvocations.delete(pluginInvocations.values().next().value)
  }
  pluginInvocations.add(id)
}

/** Calls the plugin recorded and that have not finished: the drain waits for these, not a fixed time. */
const inFlight = { calls: 0 }

module.exports = { counters, inFlight, instrumentation, pluginInvocations, markPluginInvocation }
