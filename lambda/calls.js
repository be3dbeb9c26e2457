'use strict'

// When the events of an invocation's calls have all been sent: v3 calls report in-process once
// they finish, aws-sdk v2 sends its datagrams from this process's event loop.

const { nowMs } = require('../clock.js')
const sdkV3 = require('../sdk-v3/index.js')

/**
 * Resolves once the datagrams of calls that have finished are sent: v3 calls still in flight are
 * awaited, then one turn of the event loop lets aws-sdk v2's sends go out. Bounded by `drainMs`;
 * resolves with the part of it left for the native barrier.
 */
async function callsSent(drainMs) {
  const until = nowMs() + drainMs
  while (sdkV3.callsInFlight() > 0 && nowMs() < until) {
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
  await new Promise((resolve) => setImmediate(resolve))
  return Math.max(0, Math.ceil(until - nowMs()))
}

module.exports = { callsSent }
