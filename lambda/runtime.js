'use strict'

// What the wrapper needs to know about the Lambda Node.js runtime: how it marks streaming handlers,
// whether it still accepts callback-style handlers, when its event loop is empty, and what an
// invocation's context tells.

const { deadlineMarginMs } = require('../data/limits.json')

/** The runtime recognises a response-streaming handler by this mark (set by awslambda.streamifyResponse). */
const HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming')
const HANDLER_HIGHWATERMARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark')

function isStreamingHandler(handler) {
  return Boolean(handler[HANDLER_STREAMING])
}

/** Carries the runtime's streaming marks over to the wrapper, so the runtime passes it the stream. */
function copyStreamingMarks(from, to) {
  for (const mark of [HANDLER_STREAMING, HANDLER_HIGHWATERMARK]) {
    if (from[mark] !== undefined) to[mark] = from[mark]
  }
  return to
}

/**
 * Whether this is Lambda's Node.js runtime calling `(event, context, callback)` handlers with its
 * callback semantics (nodejs22.x and earlier). From nodejs24.x on, and with managed instances, it
 * refuses them.
 */
function runtimeSupportsCallbacks(env = process.env) {
  // Outside Lambda's Node.js runtime the caller awaits the wrapper's promise.
  const match = /^AWS_Lambda_nodejs(\d+)/.exec(env.AWS_EXECUTION_ENV ?? '')
  if (!match || env.AWS_LAMBDA_MAX_CONCURRENCY !== undefined) return false
  return Number(match[1]) < 24
}

const onEmptyLoop = []
let watchingLoop = false

/**
 * Runs `fn` when the event loop is next empty: where the runtime waits for that before responding
 * to a callback handler, the invocation's work is done then. Listens after the runtime's own
 * listener, which was added before the handler module loaded.
 */
function whenLoopEmpty(fn) {
  if (!watchingLoop) {
    watchingLoop = true
    process.on('beforeExit', () => {
      for (const waiting of onEmptyLoop.splice(0)) waiting()
    })
  }
  onEmptyLoop.push(fn)
}

/** The invocation as the records carry it: the function, the request and whether it is a cold start. */
function invocationInfo(context, coldStart) {
  const info = { coldStart }
  const name = context?.functionName ?? process.env.AWS_LAMBDA_FUNCTION_NAME
  const version = context?.functionVersion ?? process.env.AWS_LAMBDA_FUNCTION_VERSION
  if (typeof name === 'string') info.functionName = name
  if (typeof version === 'string') info.functionVersion = version
  if (typeof context?.awsRequestId === 'string') info.awsRequestId = context.awsRequestId
  return info
}

/** The time a delivery may take: what is left before the deadline, less the margin to still respond. */
function deliveryTimeout(context) {
  if (typeof context?.getRemainingTimeInMillis !== 'function') return undefined
  try {
    const remaining = Number(context.getRemainingTimeInMillis())
    if (!Number.isFinite(remaining)) return undefined
    return Math.max(0, Math.floor(remaining - deadlineMarginMs))
  } catch {
    return undefined
  }
}

module.exports = {
  HANDLER_STREAMING,
  isStreamingHandler,
  copyStreamingMarks,
  runtimeSupportsCallbacks,
  whenLoopEmpty,
  invocationInfo,
  deliveryTimeout,
}
