'use strict'

// Records v3 SDK calls from Node's HTTP client, for SDKs the plugin never sees: a copy bundled into
// the application (esbuild, webpack) loads no `@smithy/*` module by name, but its node-http-handler
// still sends through `node:http`, which publishes every request on diagnostics channels. What a
// request carries is enough for most of an event:
// - `amz-sdk-invocation-id` (one per call, the same on each retry) and `amz-sdk-request: attempt=N;
//   max=M` tie attempts to calls. Only the v3 SDK sends them: aws-sdk v2 (which reports itself over
//   CSM) does not, and neither does other HTTP traffic, so those requests are left alone.
// - The SigV4 `Authorization` credential scope gives access key, region and signing name; the user
//   agent's `api/<serviceId>` token the service; x-amz-target, the `Action` form field or the service
//   model's HTTP bindings the operation (operations.js). An operation that cannot be known is
//   recorded as such (`ApiUnknown: true`, no `Api`), never guessed.
// - Status, request ids and, for error responses, the error code and message from the response.
// Calls the plugin records are skipped by their invocation id, so no call is counted twice.
//
// Nothing here may change a request or a response. Headers and status are read. Two things need a
// closer look, and get it without changing what flows: the form body of query-protocol requests,
// seen by a wrapper of `ClientRequest.prototype.write`/`end` that copies at most the first
// FORM_PEEK_BYTES and calls the original with the same arguments; and the body of error responses,
// seen by a wrapper of that one response's `push` (the parser hands it the body there), so no
// `data` listener switches the stream to flowing before the SDK reads it.

const dc = require('node:diagnostics_channel')
const { nowMs } = require('../clock.js')
const { counters, pluginInvocations } = require('./state.js')
const { Plugin } = require('./plugin.js')
const { credentialScope, regionFromHostname, isRetryable } = require('./fields.js')
const { limitFields } = require('./limits.js')

/** The operation tables, read on the first request seen, not when the package is required. */
let operationsModule
const operations = () => (operationsModule ??= require('./operations.js'))

const REQUEST_START = 'http.client.request.start'
const RESPONSE_FINISH = 'http.client.response.finish'
const REQUEST_ERROR = 'http.client.request.error'

/** Enough of a form body for `Action=...&Version=...`. */
const FORM_PEEK_BYTES = 512
/** Error bodies are read up to this size for the code and message. */
const ERROR_BODY_BYTES = 64 * 1024
/**
 * A call whose last attempt failed with a retryable error and had attempts left is closed this
 * long after that attempt unless another one comes (the SDK's backoff is at most 20 s), or when
 * the wrapper settles at the end of an invocation.
 */
const RETRY_WAIT_MS = 25_000
/** Calls with an attempt in flight or a retry pending; more are not tracked (counted as failures). */
const MAX_OPEN_CALLS = 10_000

const formPeeks = new WeakMap()
const attempts = new WeakMap()
const openCalls = new Map()
/** Where events go (the automatic instrumentation's target) while the layer is on, else undefined. */
let sink
/** Made once: it resolves the CSM settings (a file read) on first use. */
let autoTarget
let subscribed = false
let writesObserved = false
let httpLoadHooked = false

/** `require` ids that load Node's HTTP client (`https` loads the same ClientRequest class). */
const HTTP_CLIENT_REQUESTS = new Set(['http', 'node:http', 'https', 'node:https'])

// ---------------------------------------------------------------------------------------------
// Request side

function isSdkV3Request(request) {
  return typeof request.getHeader === 'function' && typeof request.getHeader('amz-sdk-invocation-id') === 'string'
}

function peekForm(request, chunk) {
  if (chunk === undefined || chunk === null || typeof chunk === 'function') return
  const type = request.getHeader('content-type')
  if (typeof type !== 'string' || !type.startsWith('application/x-www-form-urlencoded') || !isSdkV3Request(request)) {
    return
  }
  const seen = formPeeks.get(request) ?? ''
  if (seen.length >= FORM_PEEK_BYTES) return
  let text
  if (typeof chunk === 'string') text = chunk
  else if (chunk instanceof Uint8Array) text = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('latin1')
  else return
  formPeeks.set(request, seen + text.slice(0, FORM_PEEK_BYTES - seen.length))
}

/** Wraps `write`/`end` of the client request class once; the wrappers only look while a sink is set. */
function observeWrites() {
  if (writesObserved) return
  writesObserved = true
  // Only called once Node's HTTP client is loaded: then this require costs next to nothing.
  const proto = require('node:http').ClientRequest.prototype
  for (const method of ['write', 'end']) {
    const original = proto[method]
    proto[method] = function observedWrite(chunk) {
      if (sink !== undefined) {
        try {
          peekForm(this, chunk)
        } catch {
          counters.failures++
        }
      }
      return original.apply(this, arguments)
    }
  }
}

/** Whether some code of the process has loaded Node's HTTP client (its internal module list says so). */
function httpClientLoaded() {
  const loaded = process.moduleLoadList
  return Array.isArray(loaded) && loaded.includes('NativeModule _http_client')
}

/**
 * Wraps `write`/`end` now if Node's HTTP client is loaded, else when a `require` loads it. Loading
 * `node:http` here would add about 2 ms to every cold start, for processes that may send no request;
 * an SDK loads it anyway before its first one. (A client loaded by an ES module `import` after this
 * is seen by no `require`: onRequestStart wraps them at its first request, so from the next one on.)
 */
function observeWritesOnceLoaded() {
  if (writesObserved) return
  if (httpClientLoaded()) {
    observeWrites()
    return
  }
  if (httpLoadHooked) return
  httpLoadHooked = true
  const Module = require('node:module')
  const originalLoad = Module._load
  Module._load = function _load(request) {
    const exports = originalLoad.apply(this, arguments)
    if (!writesObserved && HTTP_CLIENT_REQUESTS.has(request)) {
      try {
        observeWrites()
      } catch {
        counters.failures++
      }
    }
    return exports
  }
}

function formAction(request) {
  const form = formPeeks.get(request)
  if (form === undefined) return undefined
  const match = /(?:^|&)Action=([^&]*)/.exec(form)
  if (!match) return undefined
  try {
    return decodeURIComponent(match[1].replace(/\+/g, ' '))
  } catch {
    return undefined
  }
}

function headerText(value) {
  if (Array.isArray(value)) value = value.join(', ')
  if (typeof value === 'number') value = String(value)
  return typeof value === 'string' && value !== '' ? value : undefined
}

function onRequestStart({ request }) {
  if (sink === undefined) return
  try {
    if (!writesObserved) observeWrites()
    if (!isSdkV3Request(request)) return
    const headers = request.getHeaders()
    const invocationId = headerText(headers['amz-sdk-invocation-id'])
    if (pluginInvocations.has(invocationId)) {
      counters.httpSkipped++
      return
    }
    const attempt = describeRequest(request, headers)
    let call = openCalls.get(invocationId)
    if (call === undefined) {
      if (openCalls.size >= MAX_OPEN_CALLS) {
        counters.failures++
        return
      }
      call = { invocationId, attempts: 0, timestamp: attempt.timestamp, start: attempt.start, inFlight: 0 }
      openCalls.set(invocationId, call)
    }
    if (call.timer !== undefined) {
      clearTimeout(call.timer)
      call.timer = undefined
    }
    call.attempts++
    call.inFlight++
    call.service = attempt.service
    call.api = attempt.api
    attempt.call = call
    attempts.set(request, attempt)
    // Where Node publishes no http.client.request.error (older releases), a failed request still closes.
    request.once('close', () => {
      if (!attempt.finished && attempt.response === undefined) finishAttempt(attempt, request.errored ?? undefined)
    })
  } catch {
    counters.failures++
  }
}

function describeRequest(request, headers) {
  const timestamp = Date.now()
  const start = nowMs()
  const credential = credentialScope(headerText(headers.authorization))
  const userAgent = headerText(headers['user-agent']) ?? headerText(headers['x-amz-user-agent'])
  const { identifyService, identifyOperation } = operations()
  const service = identifyService({ userAgent, target: headerText(headers['x-amz-target']), signingName: credential?.signingName, hostname: typeof request.host === 'string' ? request.host : undefined })
  const requestPath = typeof request.path === 'string' ? request.path : '/'
  const hostname = typeof request.host === 'string' ? request.host : undefined
  const api = identifyOperation(service, {
    method: request.method,
    requestPath,
    hostname,
    headers,
    formAction: formAction(request),
  })
  const retry = /attempt=(\d+)(?:;\s*max=(\d+))?/.exec(headerText(headers['amz-sdk-request']) ?? '')
  return {
    timestamp,
    start,
    service,
    api,
    region: credential?.region ?? headerText(headers['x-amz-region-set']) ?? regionFromHostname(hostname),
    accessKey: credential?.accessKey,
    hostname,
    userAgent,
    number: retry ? Number(retry[1]) : undefined,
    maxAttempts: retry && retry[2] !== undefined ? Number(retry[2]) : undefined,
    response: undefined,
    finished: false,
  }
}

// ---------------------------------------------------------------------------------------------
// Response side

function onResponseFinish({ request, response }) {
  const attempt = attempts.get(request)
  if (attempt === undefined || attempt.finished) return
  try {
    attempt.response = response
    if (!(response.statusCode >= 300)) {
      finishAttempt(attempt, undefined)
      return
    }
    // The error code and message are in the body, which the SDK reads next: look at it as it is pushed.
    const chunks = []
    let size = 0
    const push = response.push
    response.push = function observedPush(chunk, encoding) {
      if (chunk !== null && chunk !== undefined && size < ERROR_BODY_BYTES) {
        try {
          const bytes = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : Buffer.from(chunk)
          chunks.push(bytes)
          size += bytes.length
        } catch {
          counters.failures++
        }
      }
      return push.apply(this, arguments)
    }
    const done = () => finishAttempt(attempt, undefined, Buffer.concat(chunks).toString('utf8'))
    response.once('end', done)
    response.once('close', done)
  } catch {
    counters.failures++
  }
}

function onRequestError({ request, error }) {
  const attempt = attempts.get(request)
  if (attempt === undefined || attempt.finished) return
  // After a response, its 'end' or 'close' finishes the attempt with the status it had.
  if (attempt.response !== undefined) return
  finishAttempt(attempt, error)
}

/** The error code and message of an error response, as the SDK's deserializers find them. */
function responseError(response, body) {
  const headers = response.headers ?? {}
  let code = headerText(headers['x-amzn-errortype'])
  let message
  const text = typeof body === 'string' ? body.trim() : ''
  if (text.startsWith('{')) {
    try {
      const parsed = JSON.parse(text)
      code = code ?? parsed.code ?? parsed.Code ?? parsed.__type
      message = parsed.message ?? parsed.Message ?? parsed.errorMessage
    } catch {
      // not JSON after all
    }
  } else if (text.startsWith('<')) {
    code = code ?? xmlText(text, 'Code')
    message = xmlText(text, 'Message')
  }
  if (code === undefined && response.statusCode === 404 && text === '') code = 'NotFound'
  return { code: typeof code === 'string' ? sanitizeErrorCode(code) : undefined, message: typeof message === 'string' ? message : undefined }
}

/** `aws.protocols#Foo:http://...` and `ns#Foo` name the error `Foo`, as the SDK reads them. */
function sanitizeErrorCode(raw) {
  let code = raw
  if (code.includes(',')) code = code.split(',')[0]
  if (code.includes(':')) code = code.split(':')[0]
  if (code.includes('#')) code = code.split('#')[1]
  return code.trim() || undefined
}

const XML_ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }

function xmlText(xml, tag) {
  const match = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml)
  if (!match) return undefined
  return match[1].replace(/&(?:(amp|lt|gt|quot|apos)|#(\d+)|#x([0-9a-fA-F]+));/g, (entity, name, dec, hex) => {
    if (name) return XML_ENTITIES[name]
    const point = dec !== undefined ? Number(dec) : Number.parseInt(hex, 16)
    return point <= 0x10ffff ? String.fromCodePoint(point) : entity
  })
}

// ---------------------------------------------------------------------------------------------
// Events

function finishAttempt(attempt, networkError, body) {
  if (attempt.finished) return
  attempt.finished = true
  try {
    const call = attempt.call
    call.inFlight--
    const latency = Math.round(nowMs() - attempt.start)
    const event = { Type: 'ApiCallAttempt', Version: 1 }
    addName(event, attempt)
    event.Timestamp = attempt.timestamp
    event.AttemptLatency = latency >= 0 ? latency : 0
    if (attempt.region) event.Region = attempt.region
    if (attempt.hostname) event.Fqdn = attempt.hostname
    if (attempt.userAgent) event.UserAgent = attempt.userAgent
    if (attempt.accessKey) event.AccessKey = attempt.accessKey
    const response = attempt.response
    const status = Number.isInteger(response?.statusCode) && response.statusCode > 0 ? response.statusCode : undefined
    if (status !== undefined) event.HttpStatusCode = status
    const responseHeaders = response?.headers ?? {}
    const amznRequestId = headerText(responseHeaders['x-amzn-requestid'])
    const amzRequestId = headerText(responseHeaders['x-amz-request-id'])
    const amzId2 = headerText(responseHeaders['x-amz-id-2'])
    if (amznRequestId) event.XAmznRequestId = amznRequestId
    if (amzRequestId) event.XAmzRequestId = amzRequestId
    if (amzId2) event.XAmzId2 = amzId2
    let failure
    if (status !== undefined && status > 299) {
      const { code, message } = responseError(response, body)
      failure = { aws: true, code, message, status }
    } else if (networkError !== undefined) {
      failure = { aws: false, code: networkError?.code ?? networkError?.name, message: networkError?.message }
    }
    if (failure !== undefined) addFailure(event, failure, '')
    call.last = { region: event.Region, userAgent: event.UserAgent, status, failure, end: nowMs(), attempt }
    counters.httpAttempts++
    deliver(event)
    if (failure === undefined || !isRetryable(asSdkError(failure))) {
      finishCall(call)
    } else if (attempt.maxAttempts !== undefined && attempt.number >= attempt.maxAttempts) {
      finishCall(call)
    } else if (call.inFlight === 0) {
      call.timer = setTimeout(() => finishCall(call), RETRY_WAIT_MS)
      call.timer.unref?.()
    }
  } catch {
    counters.failures++
  }
}

function addName(event, attempt) {
  if (attempt.service !== undefined) event.Service = attempt.service
  if (attempt.api !== undefined) event.Api = attempt.api
  else event.ApiUnknown = true
}

function addFailure(event, failure, prefix) {
  const kind = failure.aws ? 'Aws' : 'Sdk'
  if (failure.code) event[`${prefix}${kind}Exception`] = failure.code
  if (failure.message) event[`${prefix}${kind}ExceptionMessage`] = failure.message
}

/** The failure in the shape of an SDK error, for the plugin's retry classification. */
function asSdkError(failure) {
  if (failure.aws) return { name: failure.code, $metadata: { httpStatusCode: failure.status } }
  return { name: failure.code, code: failure.code }
}

function finishCall(call) {
  if (openCalls.get(call.invocationId) !== call) return
  openCalls.delete(call.invocationId)
  if (call.timer !== undefined) clearTimeout(call.timer)
  try {
    const last = call.last
    const latency = Math.round((last?.end ?? nowMs()) - call.start)
    const event = { Type: 'ApiCall', Version: 1 }
    addName(event, last?.attempt ?? call)
    event.Timestamp = call.timestamp
    event.AttemptCount = call.attempts
    event.Latency = latency >= 0 ? latency : 0
    event.MaxRetriesExceeded = 0
    if (last?.region) event.Region = last.region
    if (last?.userAgent) event.UserAgent = last.userAgent
    if (last?.status !== undefined) event.FinalHttpStatusCode = last.status
    if (last?.failure !== undefined) {
      addFailure(event, last.failure, 'Final')
      if (isRetryable(asSdkError(last.failure))) event.MaxRetriesExceeded = 1
    }
    counters.httpCalls++
    if (event.Api === undefined) counters.httpUnidentified++
    deliver(event)
  } catch {
    counters.failures++
  }
}

function deliver(event) {
  const target = sink?.target()
  if (target === null || target === undefined) return
  sink.deliver(limitFields(event), target, 'http')
}

/**
 * Closes the calls whose last attempt ended (a retry that did not come): the wrapper calls this when
 * the handler has returned, so they are recorded in its invocation.
 */
function settleHttpCalls() {
  for (const call of [...openCalls.values()]) if (call.inFlight === 0) finishCall(call)
}

/** Starts recording from the HTTP layer into wherever the automatic instrumentation records. */
function recordHttpLayer() {
  autoTarget = autoTarget ?? new Plugin({}, true)
  sink = autoTarget
  observeWritesOnceLoaded()
  if (!subscribed) {
    subscribed = true
    dc.subscribe(REQUEST_START, onRequestStart)
    dc.subscribe(RESPONSE_FINISH, onResponseFinish)
    dc.subscribe(REQUEST_ERROR, onRequestError)
  }
}

function stopHttpLayer() {
  sink = undefined
  if (subscribed) {
    subscribed = false
    dc.unsubscribe(REQUEST_START, onRequestStart)
    dc.unsubscribe(RESPONSE_FINISH, onResponseFinish)
    dc.unsubscribe(REQUEST_ERROR, onRequestError)
  }
}

module.exports = { recordHttpLayer, stopHttpLayer, settleHttpCalls, httpLayerActive: () => sink !== undefined }
