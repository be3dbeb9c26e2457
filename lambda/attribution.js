'use strict'

// Which invocation the running code belongs to, so that calls recorded in process (the v3 SDK
// plugin, the HTTP layer, aws-sdk v2's events) are attributed to the invocation whose code made
// them, even when invocations overlap (Lambda Managed Instances, or handlers awaited together
// outside Lambda). Where the runtime has its InvokeStore (aws-lambda-ric 4.x puts it on
// `awslambda`), the request id of the running code comes from there. Elsewhere invocations run in
// an AsyncLocalStorage of the wrapper's own from the moment a second one begins while one runs:
// until then "the invocation that is running" is exact, and keeping an async context (which costs
// every promise of the process something under Node.js 20 and 22) is not paid. The invocation that
// was running when the first overlap began has its calls attributed by time while it overlaps.

/** awsRequestId -> { recorder, id } of the invocations that run. */
const running = new Map()
let storage = null

function invokeStore() {
  const store = globalThis.awslambda?.InvokeStore
  return store && typeof store.getRequestId === 'function' ? store : null
}

/**
 * The request id of the code running now, when something knows it. The v3 SDK brings an
 * InvokeStore of its own outside Lambda too, which knows no request ("-"): then the wrapper's.
 */
function runningRequestId() {
  const fromRuntime = invokeStore()?.getRequestId()
  if (typeof fromRuntime === 'string' && running.has(fromRuntime)) return fromRuntime
  return storage?.getStore()
}

/**
 * Runs `call` as invocation `id` of `recorder` (its `awsRequestId`): calls recorded while it runs,
 * in its async context, name it. Returns what `call` returns.
 */
function runAs(recorder, requestId, id, call) {
  if (typeof requestId !== 'string' || id === undefined) return call()
  running.set(requestId, { recorder, id })
  const runtimeKnowsIt = invokeStore()?.getRequestId() === requestId
  if (storage === null && running.size > 1 && !runtimeKnowsIt) {
    // Loaded here, as most functions never need it: a cold start need not load node:async_hooks.
    const { AsyncLocalStorage } = require('node:async_hooks')
    storage = new AsyncLocalStorage()
  }
  return storage ? storage.run(requestId, call) : call()
}

/** The invocation ended: calls recorded from now on are attributed by time. */
function ended(requestId) {
  running.delete(requestId)
}

/** The native invocation id of `recorder` that the running code belongs to, when known. */
function callerInvocation(recorder) {
  const requestId = runningRequestId()
  const entry = requestId === undefined ? undefined : running.get(requestId)
  return entry?.recorder === recorder ? entry.id : undefined
}

module.exports = { runAs, ended, callerInvocation }
