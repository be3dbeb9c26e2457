'use strict'

// One wrapped function's recording (FunctionRecording) and each of its invocations (Invocation):
// begin attributes calls to the invocation; end delivers its records, before the outcome is
// returned or, through the extension, after the response.

const sdkV3 = require('../sdk-v3/index.js')
const { noteLambdaContext } = require('../iam/resources.js')
const { internalsOf } = require('../recorder.js')
const { warn } = require('../options.js')
const { callsSent } = require('./calls.js')
const extension = require('./extension.js')
const { invocationInfo, deliveryTimeout, whenLoopEmpty } = require('./runtime.js')
const attribution = require('./attribution.js')

/** The recorder of one wrapped function, and what it has told the logger. */
class FunctionRecording {
  #coldStart = true
  #bundledSdkReported = false

  /**
   * `delivery` (../extension.js): `'afterResponse'` (by the extension after each response),
   * `'background'` (by the addon, where the environment is never frozen) or false (before each
   * response).
   */
  constructor(recorder, logger, delivery) {
    this.recorder = recorder
    this.logger = logger
    this.afterResponse = Boolean(delivery)
    this.background = delivery === 'background'

    // Calls recorded in process name the invocation whose code made them (./attribution.js).
    internalsOf(recorder).callerInvocation = () => attribution.callerInvocation(recorder)
  }

  /** Begins an invocation with Lambda's `context`: calls from now on are attributed to it. */
  begin(context) {
    const invocation = new Invocation(this, context, this.#coldStart)
    this.#coldStart = false
    return invocation
  }

  warn(message) {
    warn(this.logger, message)
  }

  /** Bad traffic, a full buffer and calls recorded the less detailed way are not silent. */
  reportLosses() {
    const { http } = internalsOf(this.recorder).reportLosses().paths
    if (!this.#bundledSdkReported && http.calls > 0) {
      this.#bundledSdkReported = true
      this.warn(`${http.calls} calls of a bundled AWS SDK v3 were recorded from their HTTP requests, ` +
        'with less detail than the SDK plugin gives (the operation of some REST calls stays unknown, and ' +
        'latency leaves out the SDK\'s own work). To record them in full, mark @aws-sdk/* and @smithy/* ' +
        'external in the bundler (the Lambda Node.js runtime provides them), or add the plugin to each ' +
        "client: client.middlewareStack.use(recorderPlugin()) with recorderPlugin from 'aws-api-call-recorder'.")
    }
  }

  /** Reports what the extension could not deliver since the last invocation. */
  reportUndelivered() {
    const undelivered = extension.takeUndelivered(this.recorder)
    if (undelivered.failed > 0) {
      this.warn(`${undelivered.failed} of ${undelivered.records} recorded calls were not delivered: ${undelivered.error}`)
    }
  }
}

/** One invocation: begun with its context, ended once by `end()` when the handler has settled. */
class Invocation {
  #recording
  #context
  /** The native invocation id, or undefined when attribution failed. */
  #id
  #ended = false

  constructor(recording, context, coldStart) {
    this.#recording = recording
    this.#context = context
    const requestId = context?.awsRequestId
    if (recording.afterResponse) {
      if (typeof requestId === 'string' && !recording.background) extension.invocationStarted(recording.recorder, requestId)
      recording.reportUndelivered()
    }
    try {
      this.#id = recording.recorder.beginInvocation(invocationInfo(context, coldStart))
    } catch (error) {
      recording.warn(`cannot attribute calls to this invocation: ${error.message}`)
    }
    // The account for the ARNs of recorded resources.
    noteLambdaContext(context)
  }

  /**
   * Runs `call` (the handler) and settles as it does, after ending the invocation: its records are
   * delivered first, or handed to the extension for after the response.
   */
  async around(call) {
    let result
    let threw = false
    let thrown
    try {
      result = await this.run(call)
    } catch (error) {
      threw = true
      thrown = error
    }
    await this.end()
    if (threw) throw thrown
    return result
  }

  /** Runs `call` (the handler, or part of it) as this invocation: calls it makes are attributed to it. */
  run(call) {
    return attribution.runAs(this.#recording.recorder, this.#context?.awsRequestId, this.#id, call)
  }

  /**
   * Answers a callback-style handler's `callback` with `args` around ending the invocation: first
   * delivered then answered, or answered then handed over once the runtime would respond.
   */
  answer(callback, args) {
    if (!this.#recording.afterResponse) {
      this.end().finally(() => callback(...args))
      return
    }
    callback(...args)
    // The runtime responds once the event loop is empty, unless told not to wait for it.
    if (this.#context?.callbackWaitsForEmptyEventLoop === false) this.end()
    else whenLoopEmpty(() => this.end())
  }

  /** Ends the invocation once; resolves when its outcome may be returned. Never rejects. */
  async end() {
    if (this.#ended) return
    this.#ended = true
    const requestId = this.#context?.awsRequestId
    if (typeof requestId === 'string') attribution.ended(requestId)
    // Calls whose retry never came end here, so they belong to this invocation.
    sdkV3.settleHttpCalls()
    if (this.#recording.background) this.#endInBackground()
    else if (this.#recording.afterResponse) this.#handOver()
    else await this.#deliverNow()
  }

  /** Delivers the invocation's records before its outcome is returned. */
  async #deliverNow() {
    if (this.#id === undefined) return
    const recording = this.#recording
    try {
      const timeoutMs = deliveryTimeout(this.#context)
      const leftMs = await callsSent(recording.recorder.drainMs)
      const report = await recording.recorder.settleInvocation(this.#id, { drainMs: leftMs, timeoutMs })
      if (report.failed > 0 || report.error) {
        recording.warn(`${report.failed} of ${report.records} recorded calls were not delivered: ${report.error}`)
      }
      recording.reportLosses()
    } catch (error) {
      recording.warn(`flush failed: ${error && error.message}`)
    }
  }

  /** Ends the invocation once its calls' events arrived; the addon delivers them in the background. */
  #endInBackground() {
    if (this.#id === undefined) return
    const recording = this.#recording
    callsSent(recording.recorder.drainMs)
      .then((leftMs) => extension.endInvocation(recording.recorder, this.#id, leftMs))
      .then(() => recording.reportLosses())
      .catch((error) => recording.warn(`cannot end the invocation: ${error && error.message}`))
  }

  /** Hands the invocation to the extension, which delivers once the response has gone. */
  #handOver() {
    const recording = this.#recording
    const requestId = this.#context?.awsRequestId
    callsSent(recording.recorder.drainMs).then((leftMs) => {
      // Released even without an invocation id (attribution failed): the extension must not wait.
      extension.releaseInvocation(recording.recorder, this.#id ?? 0, typeof requestId === 'string' ? requestId : '', leftMs)
      recording.reportLosses()
    }).catch((error) => recording.warn(`cannot deliver after the response: ${error && error.message}`))
  }
}

module.exports = { FunctionRecording, Invocation }
