'use strict'

// The v3 SDK plugin. Two middlewares produce the events aws-sdk v2 sends: one at the `initialize` step
// wraps the whole call (retries and backoff included) and sends `ApiCall`; one at the end of
// `finalizeRequest`, after the retry and signing middlewares, runs once per HTTP attempt and sends
// `ApiCallAttempt`. They share per-call state through a symbol on the middleware `args`, which every
// SDK middleware passes on with `{ ...args }`. Events go to an in-process Recorder (`ingest`) when there
// is one, else as CSM datagrams to AWS_CSM_HOST:AWS_CSM_PORT like v2. Nothing here may change the call:
// the middlewares return the SDK's own result or rethrow its own error, and every recording step is
// inside try/catch.
//
// For unsigned calls the explicit plugin cannot see the client's serviceId and falls back to the class
// name without `Client`, which lacks the spaces some serviceIds have ("SecretsManager").

const { nowMs } = require('../clock.js')
const { resolveCsmConfig } = require('./config.js')
const { MAX_EVENT_BYTES, limitFields } = require('./limits.js')
const { counters, inFlight, instrumentation, pluginInvocations, markPluginInvocation } = require('./state.js')
const { addResources } = require('../iam/resources.js')
const {
  signingProperties,
  signingIdentity,
  signingRegion,
  operationName,
  credentialScope,
  header,
  statusCode,
  addException,
  isRetryable,
} = require('./fields.js')
/** Loaded with the first datagram: a process whose events go to a recorder never sends one. */
let udpModule
const udp = () => (udpModule ??= require('./udp.js'))

/** Per-call state rides on the middleware args under this key, from the call to its attempts. */
const CALL_STATE = Symbol.for('aws-api-call-recorder.sdk-v3.call')

const CALL_MIDDLEWARE = 'apiCallRecorderCallMiddleware'
const ATTEMPT_MIDDLEWARE = 'apiCallRecorderAttemptMiddleware'

class Plugin {
  constructor(options, auto) {
    this.options = options
    this.auto = auto
    this.csm = undefined
  }

  /** Where events go right now: a recorder, 'udp', or null for nowhere. */
  target() {
    if (this.auto) {
      if (instrumentation.current === null) return null
      if (instrumentation.current.recorder) return instrumentation.current.recorder
    } else if (this.options.recorder !== undefined) {
      if (this.options.recorder !== null) return this.options.recorder
    } else if (instrumentation.current !== null && instrumentation.current.recorder) {
      return instrumentation.current.recorder
    }
    return this.config().enabled ? 'udp' : null
  }

  config() {
    if (this.csm === undefined) this.csm = resolveCsmConfig(this.options)
    return this.csm
  }

  /** Sends one event to `target`; `path` names the recording path, which the recorder counts. */
  deliver(event, target, path = 'plugin') {
    event.ClientId = this.config().clientId
    const json = JSON.stringify(event)
    if (Buffer.byteLength(json) > MAX_EVENT_BYTES) {
      counters.oversized++
      return
    }
    if (target === 'udp') {
      const { host, port } = this.config()
      udp().sendDatagram(json, host, port)
      counters.sent++
    } else {
      target.ingest(json, path)
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
          call = { target, timestamp: Date.now(), start: nowMs(), attempts: 0, last: undefined, input: args.input }
          args = { ...args, [CALL_STATE]: call }
        }
      } catch {
        counters.failures++
      }
      if (call === undefined) return next(args)
      let result
      inFlight.calls++
      try {
        result = await next(args)
      } catch (error) {
        this.finishCall(context, call, undefined, error)
        throw error
      } finally {
        inFlight.calls--
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
          attempt = { call, timestamp: Date.now(), start: nowMs() }
          // The HTTP layer skips requests of calls recorded here (see http.js).
          const invocationId = header(args.request?.headers, 'amz-sdk-invocation-id')
          if (invocationId !== undefined) {
            markPluginInvocation(invocationId)
            call.invocationId = invocationId
          }
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
      const latency = Math.round(nowMs() - attempt.start)
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
      if (call.orphan && call.invocationId !== undefined) pluginInvocations.delete(call.invocationId)
      this.deliver(limitFields(event), call.target)
    } catch {
      counters.failures++
    }
  }

  finishCall(context, call, result, error) {
    if (call.invocationId !== undefined) pluginInvocations.delete(call.invocationId)
    try {
      const metadata = result !== undefined ? result.output?.$metadata : error?.$metadata
      const attempts = call.attempts || (Number.isInteger(metadata?.attempts) ? metadata.attempts : 0)
      // Like v2: a call that failed before any attempt (bad input, no credentials) sends no ApiCall.
      if (attempts <= 0) return
      const latency = Math.round(nowMs() - call.start)
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
      addResources(event, call.input)
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

module.exports = { Plugin, recorderPlugin, CALL_MIDDLEWARE }
