'use strict'

// The public API: ApiCallRecorder(handler, options) wraps a Lambda handler; Recorder is the same
// machinery for scripts and tools. The receiving, parsing and delivery run in the native addon
// (./binding.js), off the JS thread; this module decides when to start, attribute and flush.

const sdkV3 = require('./sdk-v3/index.js')
const { noteLambdaContext, loadTable: loadResourceTable, setResourceRecording } = require('./iam/resources.js')
const { instrumentSdkV2Resources } = require('./sdk-v2/resources.js')
const lambda = require('./lambda.js')

const ENV_ACTIVATED = 'API_CALL_RECORDER_IS_ACTIVATED'
const LOG_PREFIX = '[aws-api-call-recorder]'
/** Time kept back from the Lambda deadline so the function can still return after flushing. */
const FLUSH_SAFETY_MARGIN_MS = 300

let binding
let bindingError

function loadBinding() {
  if (!binding && !bindingError) {
    try {
      binding = require('./binding.js')
    } catch (error) {
      bindingError = error
    }
  }
  if (bindingError) {
    const error = new Error(`cannot load the native recorder: ${bindingError.message}`)
    error.code = 'ERR_RECORDER_NATIVE_LOAD'
    error.cause = bindingError
    throw error
  }
  return binding
}

/** Options read by this module; everything else goes to the native recorder. */
const JS_ONLY_OPTIONS = new Set(['enabled', 'logger', 'sdkV3', 'sdkV3Http', 'resources', 'afterResponse'])

function nativeOptions(options) {
  const result = {}
  for (const [key, value] of Object.entries(options)) {
    if (!JS_ONLY_OPTIONS.has(key) && value !== undefined && value !== null) result[key] = value
  }
  return result
}

function isActivated(options) {
  if (options.enabled !== undefined && options.enabled !== null) return Boolean(options.enabled)
  const flag = process.env[ENV_ACTIVATED]
  if (flag !== undefined && flag !== '') return /^(true|1|yes|on)$/i.test(flag.trim())
  return process.env.NODE_ENV === 'development'
}

/** Whether calls record the resources they name: the option, else API_CALL_RECORDER_RESOURCES, else on. */
function recordsResources(options) {
  if (options.resources !== undefined && options.resources !== null) return Boolean(options.resources)
  const flag = process.env.API_CALL_RECORDER_RESOURCES
  return flag === undefined || flag.trim() === '' || !/^(false|0|no|off)$/i.test(flag.trim())
}

function warn(logger, message) {
  try {
    logger.warn(`${LOG_PREFIX} ${message}`)
  } catch {
    // A broken logger must not break the handler either.
  }
}

/** Records the AWS API calls of this process that SDKs report through Client-Side Monitoring. */
class Recorder {
  #native
  #logger
  #ingested = 0

  constructor(options = {}) {
    const { NativeRecorder } = loadBinding()
    this.#native = new NativeRecorder(nativeOptions(options))
    this.#logger = options.logger ?? console
  }

  /** Binds the UDP port and starts receiving. Returns the bound `host:port`. */
  start() {
    const address = this.#native.start()
    for (const message of this.#native.warnings) warn(this.#logger, message)
    return address
  }

  /** Takes in what is queued and closes the socket. Buffered records stay for `flush()`. */
  stop() {
    return this.#native.stop()
  }

  /** Waits `drainMs` for late datagrams, then delivers the buffer to the sink. */
  async flush({ drainMs, timeoutMs } = {}) {
    return this.#native.flush(drainMs, timeoutMs)
  }

  /** Counters since the recorder was created, with the calls each recording path delivered. */
  stats() {
    const stats = this.#native.stats()
    const { plugin, http } = sdkV3.ingestedInto(this)
    // Every event taken in through ingest() also counts as received; the rest came over UDP.
    stats.paths = {
      csm: {
        calls: Math.max(0, stats.calls - plugin.calls - http.calls),
        datagrams: Math.max(0, stats.received - this.#ingested),
      },
      plugin,
      http,
    }
    return stats
  }

  /** The records buffered and not yet flushed, oldest first. */
  records() {
    return JSON.parse(this.#native.recordsJson())
  }

  /** Removes the buffered records and returns them, oldest first. */
  takeRecords() {
    return JSON.parse(this.#native.takeRecords(false).json)
  }

  /** Removes the buffered records and returns them with their CSV rows, written natively. */
  takeRecordsWithCsv() {
    const { json, csvRows } = this.#native.takeRecords(true)
    return { records: JSON.parse(json), csvRows }
  }

  /** Takes in one CSM event (a JSON string) produced in this process, as if it had been received. */
  ingest(eventJson) {
    this.#native.ingest(eventJson)
    this.#ingested++
  }

  /**
   * Ends the invocation once the datagrams already sent have arrived (a barrier, at most `drainMs`),
   * then flushes. Call it once the calls' events are sent (after a turn of the event loop).
   */
  async settleInvocation(id, { drainMs, timeoutMs } = {}) {
    return this.#native.settleInvocation(id, drainMs, timeoutMs)
  }

  /** Registers this process as a Lambda internal extension (see lambda.js). Blocks until Lambda answers. */
  registerExtension(runtimeApi, name, timeoutMs) {
    this.#native.registerExtension(runtimeApi, name, timeoutMs)
  }

  /** Hands invocation `id` to the extension, to deliver after the response. */
  releaseInvocation(id, awsRequestId, drainMs) {
    this.#native.releaseInvocation(id, awsRequestId, drainMs)
  }

  /** Tells the extension the handler for Lambda request `awsRequestId` is running. */
  invocationStarted(awsRequestId) {
    this.#native.invocationStarted(awsRequestId)
  }

  /** Records the extension could not deliver since the last call: `{ failed, records, error }`. */
  takeUndelivered() {
    return this.#native.takeUndelivered()
  }

  /** The configured drain bound, in milliseconds. */
  get drainMs() {
    return this.#native.drainMs
  }

  /** Attributes records received from now on to this invocation. Returns an id for `finishInvocation`. */
  beginInvocation(info = {}) {
    return this.#native.beginInvocation(info)
  }

  /** Drains, ends the invocation and flushes. */
  async finishInvocation(id, { drainMs, timeoutMs } = {}) {
    return this.#native.finishInvocation(id, drainMs, timeoutMs)
  }

  /** The bound `host:port`, or null when not running. */
  get address() {
    return this.#native.address
  }

  /** The address `start()` binds. */
  get bindAddress() {
    return this.#native.bindAddress
  }

  /** `firehose`, `file`, `stdout` or `none`. */
  get sink() {
    return this.#native.sink
  }
}

// One receiver per address and process: a second wrapper on the same port shares the first's
// recorder (and so its sink and settings) instead of failing to bind. address -> { recorder, options }
const running = new Map()

/** The options that shape a recorder, as comparable text. */
function recorderSettings(options) {
  const settings = nativeOptions(options)
  return JSON.stringify(Object.keys(settings).sort().map((key) => [key, settings[key]]))
}

function acquireRecorder(options, logger) {
  let recorder
  try {
    // Calls made before the first invocation are the function's init phase.
    recorder = new Recorder({ ...options, logger, initPhase: true })
    const key = recorder.bindAddress
    const shared = running.get(key)
    if (shared && !key.endsWith(':0')) {
      if (recorderSettings(options) !== recorderSettings(shared.options)) {
        warn(logger, `another ApiCallRecorder already records on ${key}; this one shares it, and the ` +
          `first one's options win: ${JSON.stringify(nativeOptions(shared.options))} ` +
          `(these were given here: ${JSON.stringify(nativeOptions(options))})`)
      }
      return shared.recorder
    }
    recorder.start()
    running.set(key, { recorder, options })
    return recorder
  } catch (error) {
    const code = error && error.code ? ` (${error.code})` : ''
    warn(logger, `not recording: ${error && error.message}${code}. The handler runs unchanged.`)
    return null
  }
}

/** Points the automatic v3 SDK instrumentation (./sdk-v3/) at this recorder. */
function recordSdkV3(recorder, logger, http) {
  try {
    sdkV3.instrumentSdkV3({ recorder, http })
  } catch (error) {
    warn(logger, `calls of the v3 SDK (@aws-sdk/*) are not recorded: ${error && error.message}`)
  }
}

function invocationInfo(context, coldStart) {
  const info = { coldStart }
  const name = context?.functionName ?? process.env.AWS_LAMBDA_FUNCTION_NAME
  const version = context?.functionVersion ?? process.env.AWS_LAMBDA_FUNCTION_VERSION
  if (typeof name === 'string') info.functionName = name
  if (typeof version === 'string') info.functionVersion = version
  if (typeof context?.awsRequestId === 'string') info.awsRequestId = context.awsRequestId
  return info
}

/** Calls an async or a callback-style `(event, context, callback)` handler; settles with its outcome. */
function invoke(handler, event, context) {
  if (handler.length < 3) return handler(event, context)
  return new Promise((resolve, reject) => {
    let settled = false
    const settle = (fn, value) => {
      if (!settled) {
        settled = true
        fn(value)
      }
    }
    const callback = (error, result) => {
      if (error !== null && error !== undefined) settle(reject, error)
      else settle(resolve, result)
    }
    try {
      const returned = handler(event, context, callback)
      if (returned && typeof returned.then === 'function') {
        returned.then((value) => settle(resolve, value), (error) => settle(reject, error))
      }
    } catch (error) {
      settle(reject, error)
    }
  })
}

function flushTimeout(context) {
  if (typeof context?.getRemainingTimeInMillis !== 'function') return undefined
  try {
    const remaining = Number(context.getRemainingTimeInMillis())
    if (!Number.isFinite(remaining)) return undefined
    return Math.max(0, Math.floor(remaining - FLUSH_SAFETY_MARGIN_MS))
  } catch {
    return undefined
  }
}

/**
 * Wraps a Lambda handler so the AWS API calls it makes are recorded. Returns an async handler that
 * resolves or rejects exactly as `handler` does; recording problems are logged, never thrown.
 */
function ApiCallRecorder(handler, options = {}) {
  if (typeof handler !== 'function') {
    throw new TypeError('ApiCallRecorder(handler, options): handler must be a function')
  }
  options = options ?? {}
  const logger = options.logger ?? console
  if (!isActivated(options)) return handler
  // Bound now, at module load, so calls made during init are recorded too.
  const recorder = acquireRecorder(options, logger)
  if (!recorder) return handler
  if (options.sdkV3 !== false) recordSdkV3(recorder, logger, options.sdkV3Http !== false)
  const resources = recordsResources(options)
  setResourceRecording(resources)
  if (resources) {
    try {
      instrumentSdkV2Resources()
      // The resource table is read now, at init, not in the first recorded call.
      loadResourceTable()
    } catch (error) {
      warn(logger, `calls are recorded without their resources: ${error && error.message}`)
    }
  }
  let coldStart = true
  let reported = { skipped: 0, dropped: 0 }
  let bundledSdkReported = false

  // Bad traffic and a full buffer never fail the handler, but they are not silent either.
  function reportLosses() {
    const stats = recorder.stats()
    const skipped = stats.malformed + stats.oversized
    if (skipped > reported.skipped) {
      warn(logger, `${skipped - reported.skipped} datagrams were not CSM events and were skipped ` +
        `(${stats.malformed} malformed, ${stats.oversized} over 8 KiB in total)`)
    }
    if (stats.dropped > reported.dropped) {
      warn(logger, `${stats.dropped - reported.dropped} calls were dropped because the buffer was full`)
    }
    reported = { skipped, dropped: stats.dropped }
    if (!bundledSdkReported && stats.paths.http.calls > 0) {
      bundledSdkReported = true
      warn(logger, `${stats.paths.http.calls} calls of a bundled AWS SDK v3 were recorded from their HTTP requests, ` +
        'with less detail than the SDK plugin gives (the operation of some REST calls stays unknown, and ' +
        'latency leaves out the SDK\'s own work). To record them in full, mark @aws-sdk/* and @smithy/* ' +
        'external in the bundler (the Lambda Node.js runtime provides them), or add the plugin to each ' +
        "client: client.middlewareStack.use(recorderPlugin()) with recorderPlugin from 'aws-api-call-recorder'.")
    }
  }

  // In Lambda, records are delivered after the response by an internal extension, registered now
  // (during init); elsewhere, or when that fails, before the handler's outcome is returned.
  const afterResponse = lambda.deliverAfterResponse(recorder, options, (message) => warn(logger, message))
  const drainMs = recorder.drainMs

  function begin(context) {
    if (afterResponse) {
      if (typeof context?.awsRequestId === 'string') recorder.invocationStarted(context.awsRequestId)
      const undelivered = recorder.takeUndelivered()
      if (undelivered.failed > 0) {
        warn(logger, `${undelivered.failed} of ${undelivered.records} recorded calls were not delivered: ${undelivered.error}`)
      }
    }
    let invocation
    try {
      invocation = recorder.beginInvocation(invocationInfo(context, coldStart))
    } catch (error) {
      warn(logger, `cannot attribute calls to this invocation: ${error.message}`)
    }
    coldStart = false
    // The account for the ARNs of recorded resources.
    noteLambdaContext(context)
    return invocation
  }

  /** Delivers the invocation's records before its outcome is returned. */
  async function deliverNow(invocation, context) {
    if (invocation === undefined) return
    try {
      const timeoutMs = flushTimeout(context)
      const leftMs = await lambda.callsSent(drainMs)
      const report = await recorder.settleInvocation(invocation, { drainMs: leftMs, timeoutMs })
      if (report.failed > 0 || report.error) {
        warn(logger, `${report.failed} of ${report.records} recorded calls were not delivered: ${report.error}`)
      }
      reportLosses()
    } catch (error) {
      warn(logger, `flush failed: ${error && error.message}`)
    }
  }

  /** Hands the invocation to the extension, which delivers once the response has gone. */
  function deliverAfter(invocation, context) {
    const requestId = context?.awsRequestId
    lambda.callsSent(drainMs).then((leftMs) => {
      // Released even without an invocation id (attribution failed): the extension must not wait.
      recorder.releaseInvocation(invocation ?? 0, typeof requestId === 'string' ? requestId : '', leftMs)
      reportLosses()
    }).catch((error) => warn(logger, `cannot deliver after the response: ${error && error.message}`))
  }

  /** Runs `call` (the handler) and settles with its outcome, delivering before or after it. */
  async function around(context, call) {
    const invocation = begin(context)
    let result
    let threw = false
    let thrown
    try {
      result = await call()
    } catch (error) {
      threw = true
      thrown = error
    }
    // Calls whose retry never came end here, so they belong to this invocation.
    sdkV3.settleHttpCalls()
    if (afterResponse) deliverAfter(invocation, context)
    else await deliverNow(invocation, context)
    if (threw) throw thrown
    return result
  }

  if (lambda.isStreamingHandler(handler)) {
    // The runtime passes a response stream to handlers it sees marked as streaming.
    const streaming = async function apiCallRecorderHandler(event, responseStream, context) {
      return around(context, () => handler(event, responseStream, context))
    }
    return lambda.copyStreamingMarks(handler, streaming)
  }

  if (handler.length >= 3 && lambda.runtimeSupportsCallbacks()) {
    // A callback-style handler keeps the runtime's semantics: it responds once the event loop is
    // empty unless context.callbackWaitsForEmptyEventLoop is false, so the wrapper is one too.
    return function apiCallRecorderHandler(event, context, callback) {
      const invocation = begin(context)
      let answered = false
      const answer = (args) => {
        if (answered) return
        answered = true
        if (!afterResponse) {
          deliverNow(invocation, context).finally(() => callback(...args))
          return
        }
        callback(...args)
        if (context?.callbackWaitsForEmptyEventLoop === false) deliverAfter(invocation, context)
        else lambda.whenLoopEmpty(() => deliverAfter(invocation, context))
      }
      let returned
      try {
        returned = handler(event, context, (...args) => answer(args))
      } catch (error) {
        answer([error])
        return undefined
      }
      if (returned && typeof returned.then === 'function') {
        // A handler that returns a promise is answered by it, as the runtime does, without waiting
        // for the event loop.
        return Promise.resolve(returned).then(async (value) => {
          if (!answered) {
            answered = true
            if (afterResponse) deliverAfter(invocation, context)
            else await deliverNow(invocation, context)
          }
          return value
        }, async (error) => {
          if (!answered) {
            answered = true
            if (afterResponse) deliverAfter(invocation, context)
            else await deliverNow(invocation, context)
          }
          throw error
        })
      }
      return undefined
    }
  }

  return async function apiCallRecorderHandler(event, context) {
    return around(context, () => invoke(handler, event, context))
  }
}

module.exports = ApiCallRecorder
module.exports.ApiCallRecorder = ApiCallRecorder
module.exports.Recorder = Recorder
module.exports.default = ApiCallRecorder
module.exports.recorderPlugin = sdkV3.recorderPlugin
module.exports.instrumentSdkV3 = sdkV3.instrumentSdkV3
