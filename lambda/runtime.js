'use strict'

// What the wrapper needs to know about the Lambda Node.js runtime: how it marks streaming handlers,
// whether it still accepts callback-style handlers, and how to deliver after the response as an
// internal extension (the native addon talks to the Extensions API; this module decides when).

const { performance } = require('node:perf_hooks')
const sdkV3 = require('./sdk-v3/index.js')

/** The runtime recognises a response-streaming handler by this mark (set by awslambda.streamifyResponse). */
const HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming')
const HANDLER_HIGHWATERMARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark')

const EXTENSION_NAME = 'aws-api-call-recorder'
const ENV_AFTER_RESPONSE = 'API_CALL_RECORDER_AFTER_RESPONSE'
/** The Extensions API is local; a registration slower than this is a broken environment. */
const REGISTER_TIMEOUT_MS = 2000
/** Lambda allows 500 ms after SIGTERM when only internal extensions are registered. */
const SHUTDOWN_FLUSH_MS = 400
const SHUTDOWN_DRAIN_MS = 25

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

function afterResponseWanted(options, env = process.env) {
  if (options.afterResponse !== undefined && options.afterResponse !== null) return Boolean(options.afterResponse)
  const flag = env[ENV_AFTER_RESPONSE]
  if (flag !== undefined && flag !== '') return !/^(false|0|no|off)$/i.test(flag.trim())
  return true
}

let registered = null // the recorder the process's extension delivers for
let registrationTried = false

/**
 * Registers the internal extension for `recorder` when wanted and in Lambda; returns whether
 * records of `recorder` are delivered after the response. Must run during init (module load).
 */
function deliverAfterResponse(recorder, options, warn) {
  if (!afterResponseWanted(options)) return false
  if (registered) return registered === recorder
  const api = process.env.AWS_LAMBDA_RUNTIME_API
  if (!api) {
    if (options.afterResponse === true) warn('afterResponse applies in Lambda only; delivering before each response')
    return false
  }
  if (registrationTried) return false
  registrationTried = true
  try {
    recorder.registerExtension(api, EXTENSION_NAME, REGISTER_TIMEOUT_MS)
  } catch (error) {
    warn(`delivering before each response instead of after it: ${error && error.message}. ` +
      'Wrap the handler at module load, so the recorder registers during init.')
    return false
  }
  registered = recorder
  flushOnShutdown(recorder, warn)
  return true
}

/**
 * At shutdown Lambda sends the runtime SIGTERM (it does so because an extension is registered);
 * what is still buffered, such as calls made during init of an environment never invoked, is
 * delivered then. The default action follows unless someone else listens for SIGTERM.
 */
function flushOnShutdown(recorder, warn) {
  const onSigterm = () => {
    process.removeListener('SIGTERM', onSigterm)
    const exit = () => {
      if (process.listenerCount('SIGTERM') === 0) process.kill(process.pid, 'SIGTERM')
    }
    // v3 calls still in flight get a little of the budget; the flush gets the rest.
    const flushing = callsSent(SHUTDOWN_DRAIN_MS)
      .then(() => recorder.flush({ drainMs: 0, timeoutMs: SHUTDOWN_FLUSH_MS - SHUTDOWN_DRAIN_MS }))
    flushing.then((report) => {
      // Failures after the last invocation's response have not been reported yet.
      const earlier = recorder.takeUndelivered()
      const failed = report.failed + earlier.failed
      if (failed > 0) {
        warn(`${failed} of ${report.records + earlier.records} recorded calls were not delivered: ` +
          `${report.error ?? earlier.error}`)
      }
    }, (error) => warn(`flush at shutdown failed: ${error && error.message}`)).finally(exit)
  }
  process.on('SIGTERM', onSigterm)
}

/**
 * Resolves once the datagrams of calls that have finished are sent: v3 calls still in flight are
 * awaited (their events come in-process), then one turn of the event loop lets aws-sdk v2's sends
 * go out. Bounded by `drainMs`; resolves with the part of it left for the native barrier.
 */
async function callsSent(drainMs) {
  const until = performance.now() + drainMs
  while (sdkV3.callsInFlight() > 0 && performance.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
  await new Promise((resolve) => setImmediate(resolve))
  return Math.max(0, Math.ceil(until - performance.now()))
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

module.exports = {
  HANDLER_STREAMING,
  isStreamingHandler,
  copyStreamingMarks,
  runtimeSupportsCallbacks,
  deliverAfterResponse,
  callsSent,
  whenLoopEmpty,
}
