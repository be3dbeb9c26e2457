'use strict'

// Client-Side Monitoring for the AWS SDK for JavaScript v3 (@aws-sdk/*), which has none of its own.
//
// Two middlewares produce the events aws-sdk v2 sends: one at the `initialize` step wraps the whole
// call (retries and backoff included) and sends `ApiCall`; one at the end of `finalizeRequest`, after
// the retry and signing middlewares, runs once per HTTP attempt and sends `ApiCallAttempt`. They share
// per-call state through a symbol on the middleware `args`, which every SDK middleware passes on with
// `{ ...args }`. Events go to an in-process Recorder (`ingest`) when there is one, else as CSM
// datagrams to AWS_CSM_HOST:AWS_CSM_PORT like v2. Nothing here may change the call: the middlewares
// return the SDK's own result or rethrow its own error, and every recording step is inside try/catch.
//
// Automatic instrumentation (instrumentSdkV3, turned on by ApiCallRecorder) wraps
// `Client.prototype.send` of every copy of the class all v3 clients extend: `Client` from
// `@smithy/core/client` (current SDKs) or `@smithy/smithy-client` / `@aws-sdk/smithy-client` (older
// ones). Copies already loaded are found in `require.cache`; later ones through a `Module._load` hook.
// The wrapped `send` adds the plugin to a client's middleware stack on its first call, so clients
// created before activation are covered too. Limits:
// - An SDK bundled into the application file (esbuild, webpack) never loads those modules by name, so
//   nothing is patched: add `recorderPlugin()` to those clients. Marking `@aws-sdk/*` and `@smithy/*`
//   external (the Lambda runtime ships them) keeps automatic instrumentation working.
// - Only `require` loads are seen. Current SDKs resolve `@smithy/core/client` to CommonJS under Node
//   even from ESM imports; an ESM-only copy would not be patched.
// - A client class that overrides `send` without calling the base `send` is not instrumented.
// - `stop()` cannot take the middleware out of stacks it was added to; it turns it into a pass-through.
// - For unsigned calls the explicit plugin cannot see the client's serviceId and falls back to the class
//   name without `Client`, which lacks the spaces some serviceIds have ("SecretsManager").

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { performance } = require('node:perf_hooks')

/** Per-call state rides on the middleware args under this key, from the call to its attempts. */
const CALL_STATE = Symbol.for('aws-api-call-recorder.sdk-v3.call')
/** Set on a patched `Client.prototype` (to the original `send`), so no copy is patched twice. */
const ORIGINAL_SEND = Symbol.for('aws-api-call-recorder.sdk-v3.original-send')

const CALL_MIDDLEWARE = 'apiCallRecorderCallMiddleware'
const ATTEMPT_MIDDLEWARE = 'apiCallRecorderAttemptMiddleware'

/** The SDKs' limit on one serialized event; larger events are dropped, as v2 and botocore do. */
const MAX_EVENT_BYTES = 8 * 1024
/** v2 cuts a longer AWS_CSM_CLIENT_ID to this many characters. */
const MAX_CLIENT_ID_LENGTH = 255
const DEFAULT_CSM_HOST = '127.0.0.1'
const DEFAULT_CSM_PORT = 31000
/** Field lengths v2's publisher trims to (UTF-16 code units). */
const FIELD_LIMITS = {
  UserAgent: 256,
  SdkException: 128,
  SdkExceptionMessage: 512,
  AwsException: 128,
  AwsExceptionMessage: 512,
  FinalSdkException: 128,
  FinalSdkExceptionMessage: 512,
  FinalAwsException: 128,
  FinalAwsExceptionMessage: 512,
}

// The v3 SDK's own retry classification (@smithy retry: throttling, transient, server errors).
// MaxRetriesExceeded is 1 when the last error is one the SDK would retry, as v2's `error.retryable`.
const THROTTLING_ERROR_CODES = new Set([
  'BandwidthLimitExceeded', 'EC2ThrottledException', 'LimitExceededException', 'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException', 'RequestLimitExceeded', 'RequestThrottled',
  'RequestThrottledException', 'SlowDown', 'ThrottledException', 'Throttling', 'ThrottlingException',
  'TooManyRequestsException', 'TransactionInProgressException',
])
const TRANSIENT_ERROR_CODES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException'])
const NETWORK_ERROR_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
])
const MAX_CAUSE_DEPTH = 10

const counters = { calls: 0, attempts: 0, delivered: 0, sent: 0, oversized: 0, failures: 0 }
/** Calls recorded and not yet finished: the drain waits for these, not for a fixed time. */
let callsInFlight = 0

// ---------------------------------------------------------------------------------------------
// Configuration: the CSM settings, resolved like aws-sdk v2 (env first, then the shared config file).

function readSharedConfig() {
  const file = process.env.AWS_CONFIG_FILE || path.join(os.homedir(), '.aws', 'config')
  const profile = process.env.AWS_PROFILE || 'default'
  let text
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch {
    return {}
  }
  const values = {}
  let inProfile = false
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const section = /^\[\s*(?:profile\s+)?([^\]]+?)\s*\]$/.exec(line)
    if (section) {
      inProfile = section[1] === profile
      continue
    }
    if (!inProfile) continue
    const pair = /^([^=]+?)\s*=\s*(.*)$/.exec(line)
    if (pair && pair[1].startsWith('csm_')) values[pair[1]] = pair[2]
  }
  return values
}

/** `{ enabled, host, port, clientId }` from options, then AWS_CSM_* env, then the shared config file. */
function resolveCsmConfig(options = {}) {
  let enabled = process.env.AWS_CSM_ENABLED || undefined
  let host = process.env.AWS_CSM_HOST || undefined
  let port = process.env.AWS_CSM_PORT || undefined
  let clientId = process.env.AWS_CSM_CLIENT_ID || undefined
  const explicitlyOff = enabled !== undefined && ['false', '0'].includes(enabled.toLowerCase())
  if (!(enabled && host && port && clientId) && !explicitlyOff) {
    const file = readSharedConfig()
    enabled = enabled || file.csm_enabled
    host = host || file.csm_host
    port = port || file.csm_port
    clientId = clientId || file.csm_client_id
  }
  const resolved = {
    enabled: enabled !== undefined && !['false', '0', ''].includes(String(enabled).toLowerCase()),
    host: host || DEFAULT_CSM_HOST,
    port: Number.parseInt(port, 10) || DEFAULT_CSM_PORT,
    clientId: clientId || '',
  }
  if (options.csmEnabled !== undefined && options.csmEnabled !== null) resolved.enabled = Boolean(options.csmEnabled)
  if (options.csmHost) resolved.host = String(options.csmHost)
  if (options.csmPort) resolved.port = Number(options.csmPort)
  if (options.clientId !== undefined && options.clientId !== null) resolved.clientId = String(options.clientId)
  resolved.clientId = trim(resolved.clientId, MAX_CLIENT_ID_LENGTH)
  return resolved
}

// ---------------------------------------------------------------------------------------------
// Delivery

let socket

/** One shared, unref'd UDP socket: it never keeps the process alive, and errors are only counted. */
function sendDatagram(json, host, port) {
  if (socket === undefined) {
    socket = require('node:dgram').createSocket('udp4')
    socket.on('error', () => {
      counters.failures++
    })
    socket.unref()
  }
  socket.send(json, port, host, (error) => {
    if (error) counters.failures++
  })
}

/** In-process target: the recorder named in the options, else the one instrumentSdkV3 points at. */
let instrumentation = null

class Plugin {
  constructor(options, auto) {
    this.options = options
    this.auto = auto
    this.csm = undefined
  }

  /** Where events go right now: a recorder, 'udp', or null for nowhere. */
  target() {
    if (this.auto) {
      if (instrumentation === null) return null
      if (instrumentation.recorder) return instrumentation.recorder
    } else if (this.options.recorder !== undefined) {
      if (this.options.recorder !== null) return this.options.recorder
    } else if (instrumentation !== null && instrumentation.recorder) {
      return instrumentation.recorder
    }
    return this.config().enabled ? 'udp' : null
  }

  config() {
    if (this.csm === undefined) this.csm = resolveCsmConfig(this.options)
    return this.csm
  }

  deliver(event, target) {
    event.ClientId = this.config().clientId
    const json = JSON.stringify(event)
    if (Buffer.byteLength(json) > MAX_EVENT_BYTES) {
      counters.oversized++
      return
    }
    if (target === 'udp') {
      const { host, port } = this.config()
      sendDatagram(json, host, port)
      counters.sent++
    } else {
      target.ingest(json)
      counters.delivered++
    }
  }

  service(context) {
    if (this.options.serviceId) return this.options.serviceId
    const serviceId = signingProperties(context)?.config?.serviceId
    if (typeof serviceId === 'string' && serviceId !== '') return serviceId
    const clientName = context?.clientName
    return typeof clientName === 'string' ? clientName.replace(/Client$/, '') : undefined
  }

  applyToStack(stack) {
    stack.add(this.callMiddleware(), {
      name: CALL_MIDDLEWARE,
      step: 'initialize',
      priority: 'high',
      override: true,
      tags: ['API_CALL_RECORDER'],
    })
    // Absolute placement (not relative to `retryMiddleware`): a missing anchor would make the SDK
    // throw at resolve time. `low` in finalizeRequest runs after retry (`high`) and the signers
    // attached to it, so this sees each attempt's signed request, right before deserialization.
    stack.add(this.attemptMiddleware(), {
      name: ATTEMPT_MIDDLEWARE,
      step: 'finalizeRequest',
      priority: 'low',
      override: true,
      tags: ['API_CALL_RECORDER'],
    })
  }

  callMiddleware() {
    return (next, context) => async (args) => {
      let call
      try {
        const target = this.target()
        if (target !== null) {
          call = { target, timestamp: Date.now(), start: performance.now(), attempts: 0, last: undefined }
          args = { ...args, [CALL_STATE]: call }
        }
      } catch {
        counters.failures++
      }
      if (call === undefined) return next(args)
      let result
      callsInFlight++
      try {
        result = await next(args)
      } catch (error) {
        this.finishCall(context, call, undefined, error)
        throw error
      } finally {
        callsInFlight--
      }
      this.finishCall(context, call, result, undefined)
      return result
    }
  }

  attemptMiddleware() {
    return (next, context) => async (args) => {
      let attempt
      try {
        let call = args[CALL_STATE]
        const target = call !== undefined ? call.target : this.target()
        if (target !== null) {
          // Without call state (a middleware dropped it), the attempt is still recorded on its own.
          if (call === undefined) call = { target, attempts: 0, last: undefined, orphan: true }
          call.attempts++
          attempt = { call, timestamp: Date.now(), start: performance.now() }
        }
      } catch {
        counters.failures++
      }
      if (attempt === undefined) return next(args)
      let result
      try {
        result = await next(args)
      } catch (error) {
        this.finishAttempt(context, attempt, args.request, undefined, error)
        throw error
      }
      this.finishAttempt(context, attempt, args.request, result, undefined)
      return result
    }
  }

  finishAttempt(context, attempt, request, result, error) {
    try {
      const latency = Math.round(performance.now() - attempt.start)
      const event = {
        Type: 'ApiCallAttempt',
        Version: 1,
        Service: this.service(context),
        Api: operationName(context),
        Timestamp: attempt.timestamp,
        AttemptLatency: latency >= 0 ? latency : 0,
      }
      const headers = request?.headers
      const credential = credentialScope(header(headers, 'authorization'))
      const region = credential?.region ?? signingRegion(context) ?? header(headers, 'x-amz-region-set')
      if (region) event.Region = region
      if (typeof request?.hostname === 'string') event.Fqdn = request.hostname
      const userAgent = header(headers, 'user-agent') ?? header(headers, 'x-amz-user-agent')
      if (userAgent) event.UserAgent = userAgent
      const accessKey = credential?.accessKey ?? signingIdentity(context)?.accessKeyId
      if (typeof accessKey === 'string' && accessKey !== '') event.AccessKey = accessKey
      const response = result !== undefined ? result.response : error?.$response
      const status = statusCode(response, error)
      if (status !== undefined) event.HttpStatusCode = status
      const responseHeaders = response?.headers
      const amznRequestId = header(responseHeaders, 'x-amzn-requestid')
      const amzRequestId = header(responseHeaders, 'x-amz-request-id')
      const amzId2 = header(responseHeaders, 'x-amz-id-2')
      if (amznRequestId) event.XAmznRequestId = amznRequestId
      if (amzRequestId) event.XAmzRequestId = amzRequestId
      if (amzId2) event.XAmzId2 = amzId2
      if (error !== undefined) addException(event, error, status, '')
      const call = attempt.call
      call.last = { region: event.Region, userAgent: event.UserAgent, status }
      counters.attempts++
      this.deliver(limitFields(event), call.target)
    } catch {
      counters.failures++
    }
  }

  finishCall(context, call, result, error) {
    try {
      const metadata = result !== undefined ? result.output?.$metadata : error?.$metadata
      const attempts = call.attempts || (Number.isInteger(metadata?.attempts) ? metadata.attempts : 0)
      // Like v2: a call that failed before any attempt (bad input, no credentials) sends no ApiCall.
      if (attempts <= 0) return
      const latency = Math.round(performance.now() - call.start)
      const last = call.last
      const event = {
        Type: 'ApiCall',
        Version: 1,
        Service: this.service(context),
        Api: operationName(context),
        Timestamp: call.timestamp,
        AttemptCount: attempts,
        Latency: latency >= 0 ? latency : 0,
        MaxRetriesExceeded: 0,
      }
      if (last?.region) event.Region = last.region
      if (last?.userAgent) event.UserAgent = last.userAgent
      const status = last !== undefined ? last.status : statusCode(result?.response, error)
      if (Number.isInteger(status)) event.FinalHttpStatusCode = status
      if (error !== undefined) {
        addException(event, error, status, 'Final')
        // The SDK retries every retryable error while it has attempts (and retry quota) left, so a
        // retryable final error means they ran out. The `amz-sdk-request` header's max is not a
        // reliable count: it comes from the client's maxAttempts, not from a custom retryStrategy.
        if (isRetryable(error)) event.MaxRetriesExceeded = 1
      }
      counters.calls++
      this.deliver(limitFields(event), call.target)
    } catch {
      counters.failures++
    }
  }
}

/**
 * A v3 SDK plugin that records the client's calls as CSM `ApiCall` / `ApiCallAttempt` events:
 * `client.middlewareStack.use(recorderPlugin())`.
 */
function recorderPlugin(options = {}) {
  return new Plugin(options ?? {}, false)
}

// ---------------------------------------------------------------------------------------------
// Event fields

function smithyContext(context) {
  return context?.__smithy_context
}

function signingProperties(context) {
  return smithyContext(context)?.selectedHttpAuthScheme?.httpAuthOption?.signingProperties
}

function signingIdentity(context) {
  return smithyContext(context)?.selectedHttpAuthScheme?.identity
}

function signingRegion(context) {
  const region = signingProperties(context)?.region ?? context?.signing_region
  return typeof region === 'string' && region !== '' ? region : undefined
}

function operationName(context) {
  const operation = smithyContext(context)?.operation
  if (typeof operation === 'string' && operation !== '') return operation
  const commandName = context?.commandName
  return typeof commandName === 'string' ? commandName.replace(/Command$/, '') : undefined
}

/** Access key id and region from a SigV4 `Authorization` header's credential scope. */
function credentialScope(authorization) {
  if (typeof authorization !== 'string') return undefined
  const match = /Credential=([^/,\s]+)\/\d{8}\/([^/,\s]+)\//.exec(authorization)
  return match ? { accessKey: match[1], region: match[2] } : undefined
}

function header(headers, name) {
  if (headers === null || typeof headers !== 'object') return undefined
  let value = headers[name]
  if (value === undefined) {
    for (const key of Object.keys(headers)) {
      if (key.toLowerCase() === name) {
        value = headers[key]
        break
      }
    }
  }
  if (Array.isArray(value)) value = value.join(', ')
  return typeof value === 'string' && value !== '' ? value : undefined
}

function statusCode(response, error) {
  const status = response?.statusCode ?? error?.$metadata?.httpStatusCode
  return Number.isInteger(status) && status > 0 ? status : undefined
}

/** v2's split: an error with an HTTP status above 299 is the service's, anything else the SDK's. */
function addException(event, error, status, prefix) {
  if (error === null || typeof error !== 'object') {
    event[`${prefix}SdkException`] = typeof error
    if (error !== undefined && error !== null) event[`${prefix}SdkExceptionMessage`] = String(error)
    return
  }
  // v3 fills in "UnknownError" when the response has no message (S3 HeadObject 404); v2 sends none.
  const message = nonEmpty(error.message) !== 'UnknownError' ? nonEmpty(error.message) : undefined
  if (status !== undefined && status > 299) {
    const code = nonEmpty(error.name) ?? nonEmpty(error.Code) ?? nonEmpty(error.code)
    if (code) event[`${prefix}AwsException`] = code
    if (message) event[`${prefix}AwsExceptionMessage`] = message
  } else {
    const code = nonEmpty(error.code) ?? nonEmpty(error.name)
    if (code) event[`${prefix}SdkException`] = code
    if (message) event[`${prefix}SdkExceptionMessage`] = message
  }
}

function nonEmpty(value) {
  return typeof value === 'string' && value !== '' ? value : undefined
}

function isRetryable(error, depth = 0) {
  if (error === null || typeof error !== 'object' || error.name === 'AbortError') return false
  const status = error.$metadata?.httpStatusCode
  return (
    error.$retryable !== undefined ||
    status === 429 ||
    (status >= 500 && status <= 599) ||
    THROTTLING_ERROR_CODES.has(error.name) ||
    TRANSIENT_ERROR_CODES.has(error.name) ||
    NETWORK_ERROR_CODES.has(error.code) ||
    error.$metadata?.clockSkewCorrected === true ||
    (error.name === 'InvalidSignatureException' && String(error.message).includes('Signature expired')) ||
    (error.code === 'ERR_HTTP2_STREAM_ERROR' && String(error.message).includes('NGHTTP2_REFUSED_STREAM')) ||
    (error.cause !== undefined && depth < MAX_CAUSE_DEPTH && isRetryable(error.cause, depth + 1))
  )
}

/**
 * Cuts a string to `max` UTF-16 code units like v2, without splitting a surrogate pair, and
 * replaces lone surrogates: the recorder's JSON parser rejects an event that contains one.
 */
function trim(value, max) {
  let text = typeof value.toWellFormed === 'function' ? value.toWellFormed() : value
  if (text.length > max) {
    const last = text.charCodeAt(max - 1)
    text = text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max)
  }
  return text
}

function limitFields(event) {
  for (const [field, value] of Object.entries(event)) {
    if (typeof value === 'string') event[field] = trim(value, FIELD_LIMITS[field] ?? Infinity)
  }
  return event
}

// ---------------------------------------------------------------------------------------------
// Automatic instrumentation

/** `require` ids under which the v3 SDK loads the class every client extends. */
const SMITHY_CLIENT_REQUESTS = new Set(['@smithy/core/client', '@smithy/smithy-client', '@aws-sdk/smithy-client'])
/** The same modules in require.cache, for copies loaded before instrumentation began. */
const SMITHY_CLIENT_FILE =
  /[\\/]@(?:smithy|aws-sdk)[\\/](?:smithy-client[\\/]|core[\\/]dist-cjs[\\/]submodules[\\/]client[\\/])/
const instrumentedStacks = new WeakSet()
let loadHooked = false

function isSmithyClientModule(exports) {
  return (
    exports !== null &&
    typeof exports === 'object' &&
    typeof exports.Client === 'function' &&
    typeof exports.Command === 'function' &&
    typeof exports.Client.prototype?.send === 'function'
  )
}

/** Wraps `Client.prototype.send` of one loaded copy so each client gets the plugin on first use. */
function patchClientClass(Client) {
  const proto = Client.prototype
  if (Object.prototype.hasOwnProperty.call(proto, ORIGINAL_SEND)) return false
  const original = proto.send
  Object.defineProperty(proto, ORIGINAL_SEND, { value: original })
  proto.send = function send(command, optionsOrCb, cb) {
    if (instrumentation !== null) {
      try {
        instrumentClient(this)
      } catch {
        counters.failures++
      }
    }
    return original.apply(this, arguments)
  }
  return true
}

/** Adds the plugin to a client once, unless the client already has it (explicitly or via a shared stack). */
function instrumentClient(client) {
  const stack = client.middlewareStack
  if (!stack || typeof stack.use !== 'function' || instrumentedStacks.has(stack)) return
  instrumentedStacks.add(stack)
  if (typeof stack.identify === 'function' && stack.identify().some((name) => name.startsWith(CALL_MIDDLEWARE))) {
    return
  }
  const serviceId = client.config?.serviceId
  stack.use(new Plugin(typeof serviceId === 'string' ? { serviceId } : {}, true))
  // With `cacheMiddleware: true` a client keeps handlers built from the old stack; drop them as the
  // SDK itself does when a send has options.
  if (client.handlers !== undefined) delete client.handlers
}

function patchLoadedCopies() {
  let patched = 0
  const Module = require('node:module')
  for (const [file, cached] of Object.entries(Module._cache)) {
    if (!SMITHY_CLIENT_FILE.test(file)) continue
    try {
      if (isSmithyClientModule(cached?.exports) && patchClientClass(cached.exports.Client)) patched++
    } catch {
      counters.failures++
    }
  }
  return patched
}

function hookModuleLoad() {
  if (loadHooked) return
  loadHooked = true
  const Module = require('node:module')
  const originalLoad = Module._load
  Module._load = function _load(request, parent, isMain) {
    const exports = originalLoad.apply(this, arguments)
    if (SMITHY_CLIENT_REQUESTS.has(request)) {
      try {
        if (isSmithyClientModule(exports)) patchClientClass(exports.Client)
      } catch {
        counters.failures++
      }
    }
    return exports
  }
}

/**
 * Records every v3 client in the process from now on: patches `Client.prototype.send` of each
 * loaded copy of the SDK's client class and of copies loaded later. Events go to `recorder`, or,
 * without one, as CSM datagrams when AWS_CSM_ENABLED is on. A later call replaces the target.
 */
function instrumentSdkV3(options = {}) {
  const state = { recorder: options?.recorder ?? null }
  instrumentation = state
  hookModuleLoad()
  const patched = patchLoadedCopies()
  return {
    /** Copies of the client class patched by this call (0 when none was loaded yet, or all were). */
    patched,
    /** Stops recording through the automatic instrumentation; the middlewares stay, inert. */
    stop() {
      if (instrumentation === state) instrumentation = null
    },
  }
}

/** Counters since the process started, for diagnostics and tests. */
function sdkV3Stats() {
  return { ...counters, instrumenting: instrumentation !== null }
}

module.exports = {
  callsInFlight: () => callsInFlight,
  recorderPlugin,
  instrumentSdkV3,
  sdkV3Stats,
}
