'use strict'

// Recorder: the native recorder (./binding.js) for scripts and tools. The receiving, parsing,
// counting and delivery run in the addon, off the JS thread; this class only forwards, and tells
// the logger once about traffic it could not use.

const fs = require('node:fs')
const path = require('node:path')
const { nativeOptions, warn } = require('./options.js')
const { maxEventBytes } = require('./data/limits.json')
const PACKAGE_ROOT = require('./package-root.js')

/** How often the proxy's records are taken, named and recorded. */
const PROXY_NAMING_EVERY_MS = 100

/** Thrown when the addon does not load on this platform (the native codes come from Rust). */
const NATIVE_LOAD_ERROR = 'ERR_RECORDER_NATIVE_LOAD'

let binding
let bindingError

/**
 * The addon built for this platform when it lies next to this file, as a local build and the Lambda
 * layer place it: a glibc Linux or a macOS file, and no napi-rs override in the environment. Loading
 * it directly skips the generated loader (./binding.js), whose search for the platform costs about
 * 1 ms of every cold start. Everything else (platform packages, musl, WASI, overrides) goes through it.
 */
function addonBeside() {
  const env = process.env
  if (env.NAPI_RS_NATIVE_LIBRARY_PATH || env.NAPI_RS_FORCE_WASI || env.NAPI_RS_WASI_FLAVOR) return null
  let target
  if (process.platform === 'darwin') {
    target = `darwin-${process.arch}`
  } else if (process.platform === 'linux') {
    if (isMusl()) return null
    target = `linux-${process.arch}-gnu`
  } else {
    return null
  }
  const file = path.join(PACKAGE_ROOT, `api-call-recorder.${target}.node`)
  return fs.existsSync(file) ? file : null
}

/**
 * musl, told as the generated loader tells it first (from ldd), or, with no ldd to read, by musl's
 * dynamic loader (the generated loader would ask for a process report there, which takes ms).
 */
function isMusl() {
  try {
    return fs.readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
  } catch {
    return fs.existsSync(`/lib/ld-musl-${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}.so.1`)
  }
}

/** Addons this package loaded in this process, by file: every copy of the package shares one load. */
const LOADED_ADDONS = Symbol.for('aws-api-call-recorder.addons')

/**
 * Loads the addon at `file` as `require` would, without `require`'s resolution of an absolute path
 * (about 0.2 ms of a cold start). Each file is opened once per process: copies of this module (the
 * bundle and the files it is made from) get the same exports.
 */
function loadAddon(file) {
  const loaded = (globalThis[LOADED_ADDONS] ??= new Map())
  let exports = loaded.get(file) ?? require.cache[file]?.exports
  if (exports === undefined) {
    const addon = { exports: {} }
    process.dlopen(addon, file)
    exports = addon.exports
  }
  loaded.set(file, exports)
  return exports
}

function loadBinding() {
  if (!binding && !bindingError) {
    try {
      const file = addonBeside()
      if (file !== null) {
        try {
          binding = loadAddon(file)
        } catch {
          // the generated loader tries it again and says why nothing loads
        }
      }
      binding ??= require('./binding.js')
    } catch (error) {
      bindingError = error
    }
  }
  if (bindingError) {
    const error = new Error(`cannot load the native recorder: ${bindingError.message}`)
    error.code = NATIVE_LOAD_ERROR
    error.cause = bindingError
    throw error
  }
  return binding
}

/**
 * `{ native, report }` behind each Recorder: the Lambda side (lambda/) hands invocations to the
 * extension through the native recorder, and reports losses after delivering.
 */
const internals = new WeakMap()

/** Counts already told to the logger, so each loss is reported once. */
class LossReport {
  #skipped = 0
  #dropped = 0

  /** Warns about what `stats` counts beyond what was already reported. */
  update(stats, logger) {
    const skipped = stats.malformed + stats.oversized
    if (skipped > this.#skipped) {
      warn(logger, `${skipped - this.#skipped} datagrams were not CSM events and were skipped ` +
        `(${stats.malformed} malformed, ${stats.oversized} over ${maxEventBytes / 1024} KiB in total)`)
    }
    if (stats.dropped > this.#dropped) {
      warn(logger, `${stats.dropped - this.#dropped} calls were dropped because the buffer was full`)
    }
    this.#skipped = skipped
    this.#dropped = stats.dropped
  }
}

/** Records the AWS API calls of this process that SDKs report through Client-Side Monitoring. */
class Recorder {
  #native
  #internals
  #logger
  #losses = new LossReport()
  #namingTimer

  constructor(options = {}) {
    const { NativeRecorder } = loadBinding()
    options = options ?? {}
    const flagsFallBack = options[FLAGS_FALL_BACK] === true
    const settings = options[SHARED_SETTINGS]
    this.#native = typeof settings === 'string'
      ? NativeRecorder.shared(nativeOptions(options), flagsFallBack, settings)
      : new NativeRecorder(nativeOptions(options), flagsFallBack)
    this.#logger = options.logger ?? console
    // `callerInvocation()`: the invocation whose code is running, set by the Lambda wrapper.
    this.#internals = { native: this.#native, reportLosses: () => this.#reportLosses(), callerInvocation: null }
    internals.set(this, this.#internals)
  }

  /** Binds the UDP port and starts receiving. Returns the bound `host:port`. */
  start() {
    const address = this.#native.start()
    for (const message of this.#native.warnings) warn(this.#logger, message)
    return address
  }

  /** Takes in what is queued and closes the socket. Buffered records stay for `flush()`. */
  async stop() {
    // The proxy's last records are named and taken in before the recorder stops.
    if (this.#namingTimer !== undefined) await this.stopProxy()
    await this.#native.stop()
    this.#reportLosses()
  }

  /** Waits `drainMs` for late datagrams, then delivers the buffer to the sink. */
  async flush({ drainMs, timeoutMs } = {}) {
    const report = await this.#native.flush(drainMs, timeoutMs)
    this.#reportLosses()
    return report
  }

  /** Counters since the recorder was created, with what each recording path took in. */
  stats() {
    return this.#native.stats()
  }

  /** Warns once through the logger about datagrams skipped and calls dropped since it last did; returns the stats read. */
  #reportLosses() {
    const stats = this.#native.stats()
    this.#losses.update(stats, this.#logger)
    return stats
  }

  /** The records buffered and not yet flushed, oldest first. */
  records() {
    return JSON.parse(this.#native.recordsJson())
  }

  /** Removes the buffered records and returns them, oldest first. */
  takeRecords() {
    return JSON.parse(this.#native.takeRecordsJson())
  }

  /**
   * Starts the recording proxy (127.0.0.1, a free port, a CA made for this run): requests to AWS
   * endpoints through it are recorded. Returns its address, CA files and the variables to set.
   */
  startProxy(options = {}) {
    // Its records wait in the addon until named here (./proxy-calls.js), then are recorded.
    const started = this.#native.startProxy({ ...options, holdForNaming: true })
    this.#namingTimer = setInterval(() => this.#nameProxyEvents(), PROXY_NAMING_EVERY_MS)
    this.#namingTimer.unref()
    return started
  }

  /** Stops the proxy and removes its CA directory; its last records are named and recorded. */
  async stopProxy() {
    clearInterval(this.#namingTimer)
    this.#namingTimer = undefined
    await this.#native.stopProxy()
    this.#nameProxyEvents()
  }

  #nameProxyEvents() {
    const { nameProxyEvent } = require('./proxy-calls.js')
    for (const taken of this.#native.takeProxyEvents()) this.#native.ingest(nameProxyEvent(taken), 'proxy')
  }

  /** The proxy's warnings since the last call (clients that refused its CA). */
  takeProxyWarnings() {
    return this.#native.takeProxyWarnings()
  }

  /** Takes in one CSM event (a JSON string), as if it had been received; `path` is how it was made. */
  ingest(eventJson, path) {
    this.#native.ingest(eventJson, path, this.#internals.callerInvocation?.())
  }

  /** Attributes records received from now on to this invocation. Returns an id for `finishInvocation`. */
  beginInvocation(info = {}) {
    return this.#native.beginInvocation(info)
  }

  /** Drains, ends the invocation and flushes. */
  async finishInvocation(id, { drainMs, timeoutMs } = {}) {
    const report = await this.#native.finishInvocation(id, drainMs, timeoutMs)
    this.#reportLosses()
    return report
  }

  /**
   * Ends the invocation once the datagrams already sent have arrived (a barrier, at most `drainMs`),
   * then flushes. Call it once the calls' events are sent (after a turn of the event loop).
   */
  async settleInvocation(id, { drainMs, timeoutMs } = {}) {
    const report = await this.#native.settleInvocation(id, drainMs, timeoutMs)
    this.#reportLosses()
    return report
  }

  /** The configured drain bound, in milliseconds. */
  get drainMs() {
    return this.#native.drainMs
  }

  /** The bound `host:port`, or null when not running. */
  get address() {
    return this.#native.address
  }

  /** The address `start()` binds. */
  get bindAddress() {
    return this.#native.bindAddress
  }

  /**
   * For a recorder shared process-wide that another worker thread made with other options: those
   * options, as the comparable text they were given in; else null.
   */
  get sharedWith() {
    return this.#native.sharedWith ?? null
  }

  /** `firehose`, `file`, `stdout` or `none`. */
  get sink() {
    return this.#native.sink
  }
}

/**
 * An option the wrapper sets: a boolean variable that holds no boolean takes its default with a
 * warning instead of failing the recorder (a typo must not stop recording).
 */
const FLAGS_FALL_BACK = Symbol('flagsFallBack')

/**
 * An option the wrapper sets: the recorder is the process's one for its address, shared by every
 * worker thread (the addon is loaded once per process); the value is the options as comparable text.
 */
const SHARED_SETTINGS = Symbol('sharedSettings')

/** The native recorder of `recorder`, and its loss report (`reportLosses()`). */
function internalsOf(recorder) {
  return internals.get(recorder)
}

/** Every `err.code` a Recorder throws with. */
function errorCodes() {
  return [...loadBinding().errorCodes(), NATIVE_LOAD_ERROR]
}

module.exports = { Recorder, FLAGS_FALL_BACK, SHARED_SETTINGS, internalsOf, errorCodes, NATIVE_LOAD_ERROR }
