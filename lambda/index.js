'use strict'

// ApiCallRecorder(handler, options): the options resolved, one recorder per address shared by every
// wrapper of the process, the v3 SDK and resource instrumentation switched on, and the handler
// wrapped in its shape (./handlers.js) around an invocation (./invocation.js).

const sdkV3 = require('../sdk-v3/index.js')
const { loadTable: loadResourceTable, setResourceRecording } = require('../iam/resources.js')
const { instrumentSdkV2 } = require('../sdk-v2/index.js')
const { Recorder, FLAGS_FALL_BACK, SHARED_SETTINGS } = require('../recorder.js')
const { resolveOptions, nativeOptions, warn } = require('../options.js')
const { beginRegistration, deliverAfterResponse } = require('./extension.js')
const { FunctionRecording } = require('./invocation.js')
const { wrapHandler } = require('./handlers.js')

/**
 * Wraps a Lambda handler so the AWS API calls it makes are recorded. Returns a handler that settles
 * exactly as `handler` does; recording problems are logged, never thrown.
 */
function ApiCallRecorder(handler, options = {}) {
  if (typeof handler !== 'function') {
    throw new TypeError('ApiCallRecorder(handler, options): handler must be a function')
  }
  return startRecording(options).wrap(handler)
}

/** Marks a handler this package wrapped, whichever copy of it did (a function may bundle its own). */
const WRAPPED = Symbol.for('aws-api-call-recorder.wrapped')

/**
 * Starts recording now (the recorder bound, the SDKs instrumented, the extension's registration sent), so
 * that calls made before any handler is wrapped, such as a module's init, are recorded too. `wrap`
 * then wraps a handler; one already wrapped by this package is returned as it is.
 */
function startRecording(options = {}) {
  options = options ?? {}
  const { resolved, warnings } = resolveOptions(options)
  const { logger } = resolved
  for (const message of warnings) warn(logger, message)
  const unwrapped = { recording: false, wrap: (handler) => handler }
  if (!resolved.enabled) return unwrapped
  // Bound now, at module load, so calls made during init are recorded too.
  const recorder = acquireRecorder(options, logger)
  if (!recorder) return unwrapped
  // In Lambda, records are delivered after the response by an internal extension, registered
  // during init: sent now, and Lambda's answer awaited when the first handler is wrapped, so the
  // rest of init overlaps it. Elsewhere, or when that fails, they are delivered before the
  // handler's outcome is returned.
  const afterResponse = { wanted: resolved.afterResponse, explicit: options.afterResponse === true }
  beginRegistration(recorder, afterResponse)
  if (resolved.sdkV3) recordSdkV3(recorder, logger, resolved.sdkV3Http)
  recordResources(resolved.resources, logger)
  recordSdkV2(recorder, resolved.resources, logger)
  let delivery
  return {
    recording: true,
    wrap(handler) {
      delivery ??= deliverAfterResponse(recorder, afterResponse, (message) => warn(logger, message))
      if (handler[WRAPPED]) return handler
      const wrapped = wrapHandler(handler, new FunctionRecording(recorder, logger, delivery))
      Object.defineProperty(wrapped, WRAPPED, { value: true })
      return wrapped
    },
  }
}

// One receiver per address and process: a second wrapper on the same port shares the first's
// recorder (and so its sink and settings) instead of failing to bind; worker threads share the
// native one (../recorder.js), each with its own JS side here. address -> { recorder, options }
const running = new Map()
// The addresses any copy of this package records on in this process (a function may ship its own
// copy beside the layer's): a second copy leaves the recording to the first, without a warning.
const RECORDING_ADDRESSES = Symbol.for('aws-api-call-recorder.addresses')
const recordingAddresses = (globalThis[RECORDING_ADDRESSES] ??= new Set())

/** The options that shape a recorder, as comparable text (entries sorted by name). */
function recorderSettings(options) {
  const settings = nativeOptions(options)
  return JSON.stringify(Object.keys(settings).sort().map((key) => [key, settings[key]]))
}

function acquireRecorder(options, logger) {
  let recorder
  try {
    // Calls made before the first invocation are the function's init phase, unless told otherwise.
    recorder = new Recorder({
      ...options, logger, initPhase: options.initPhase ?? true, [FLAGS_FALL_BACK]: true,
      [SHARED_SETTINGS]: recorderSettings(options),
    })
    const key = recorder.bindAddress
    const shared = running.get(key)
    if (shared && !key.endsWith(':0')) {
      if (recorderSettings(options) !== recorderSettings(shared.options)) {
        warnShared(logger, key, nativeOptions(shared.options), options)
      }
      return shared.recorder
    }
    if (recordingAddresses.has(key) && !key.endsWith(':0')) return null
    // Made by another worker thread with other options: theirs win, told once per process.
    if (recorder.sharedWith !== null) warnShared(logger, key, Object.fromEntries(JSON.parse(recorder.sharedWith)), options)
    recorder.start()
    running.set(key, { recorder, options })
    recordingAddresses.add(key)
    return recorder
  } catch (error) {
    const code = error && error.code ? ` (${error.code})` : ''
    warn(logger, `not recording: ${error && error.message}${code}. The handler runs unchanged.`)
    return null
  }
}

function warnShared(logger, key, first, options) {
  warn(logger, `another ApiCallRecorder already records on ${key}; this one shares it, and the ` +
    `first one's options win: ${JSON.stringify(first)} ` +
    `(these were given here: ${JSON.stringify(nativeOptions(options))})`)
}

/** Points the automatic v3 SDK instrumentation (../sdk-v3/) at this recorder. */
function recordSdkV3(recorder, logger, http) {
  try {
    sdkV3.instrumentSdkV3({ recorder, http })
  } catch (error) {
    warn(logger, `calls of the v3 SDK (@aws-sdk/*) are not recorded: ${error && error.message}`)
  }
}

/** Whether calls record the resources they name, for the whole process. */
function recordResources(on, logger) {
  setResourceRecording(on)
  if (!on) return
  try {
    // The table is opened now, at init, so that a missing one is reported here; each service's
    // entries are read on its first call.
    loadResourceTable()
  } catch (error) {
    warn(logger, `calls are recorded without their resources: ${error && error.message}`)
  }
}

/** aws-sdk v2 in this process: its calls recorded from its own events (../sdk-v2/), with resources. */
function recordSdkV2(recorder, resources, logger) {
  try {
    instrumentSdkV2({ resources, target: recorder })
  } catch (error) {
    warn(logger, `calls of aws-sdk v2 are recorded only over CSM: ${error && error.message}`)
  }
}

module.exports = { ApiCallRecorder, startRecording }
