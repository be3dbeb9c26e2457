'use strict'

// Delivery after the response: the native addon registers as a Lambda internal extension and talks
// to the Extensions API; this module decides whether to, and hands it each invocation. Where the
// environment is never frozen (Lambda Managed Instances) the addon delivers in the background
// instead, and this module only ends each invocation.

const { internalsOf } = require('../recorder.js')
const { callsSent } = require('./calls.js')

const EXTENSION_NAME = 'aws-api-call-recorder'
/** The Extensions API is local; a registration slower than this is a broken environment. */
const REGISTER_TIMEOUT_MS = 2000
/** Lambda allows 500 ms after SIGTERM when only internal extensions are registered. */
const SHUTDOWN_FLUSH_MS = 400
/** The part of the shutdown budget that v3 calls still in flight may take. */
const SHUTDOWN_DRAIN_MS = 25

let registered = null // the recorder the process's extension delivers for
let registeredDelivery = false
let registrationTried = false
let registrationBegunFor = null // the recorder whose registration was sent and not yet waited for

/**
 * Sends the extension's registration for `recorder` when `wanted` and in Lambda, without waiting
 * for Lambda's answer: the rest of init (loading the function) overlaps it, and
 * deliverAfterResponse waits for it. Where it cannot be begun, deliverAfterResponse registers.
 */
function beginRegistration(recorder, { wanted }) {
  const api = process.env.AWS_LAMBDA_RUNTIME_API
  if (!wanted || !api || registered || registrationTried || registrationBegunFor) return
  try {
    if (internalsOf(recorder).native.beginExtensionRegistration(api, EXTENSION_NAME, REGISTER_TIMEOUT_MS)) {
      registrationBegunFor = recorder
    }
  } catch {
    // Not begun: deliverAfterResponse registers, and warns if that fails too.
  }
}

/**
 * Registers the internal extension for `recorder` when `wanted` and in Lambda (once per process,
 * whichever worker thread asks first). Returns how records of `recorder` are delivered:
 * `'afterResponse'` (by the extension after each response), `'background'` (by the addon,
 * periodically and at shutdown, where the environment is never frozen) or false (before each
 * response). Must run during init (module load).
 */
function deliverAfterResponse(recorder, { wanted, explicit }, warn) {
  if (!wanted) return false
  if (registered) return registered === recorder && registeredDelivery
  const api = process.env.AWS_LAMBDA_RUNTIME_API
  if (!api) {
    if (explicit) warn('afterResponse applies in Lambda only; delivering before each response')
    return false
  }
  if (registrationTried) return false
  // The registration begun is another recorder's: the extension is that one's.
  if (registrationBegunFor && registrationBegunFor !== recorder) return false
  registrationTried = true
  let delivery
  try {
    // Waits for the registration beginRegistration sent, or registers now.
    delivery = internalsOf(recorder).native.registerExtension(api, EXTENSION_NAME, REGISTER_TIMEOUT_MS)
  } catch (error) {
    warn(`delivering before each response instead of after it: ${error && error.message}. ` +
      'Wrap the handler at module load, so the recorder registers during init.')
    return false
  }
  registered = recorder
  registeredDelivery = delivery
  flushOnShutdown(recorder, warn)
  return delivery
}

/** Tells the extension the handler for Lambda request `awsRequestId` is running. */
function invocationStarted(recorder, awsRequestId) {
  internalsOf(recorder).native.invocationStarted(awsRequestId)
}

/**
 * Hands invocation `id` to the extension, which proves its datagrams arrived (within `drainMs`),
 * delivers its records and then lets Lambda freeze the environment.
 */
function releaseInvocation(recorder, id, awsRequestId, drainMs) {
  internalsOf(recorder).native.releaseInvocation(id, awsRequestId, drainMs)
}

/**
 * Ends invocation `id` once its datagrams arrived (within `drainMs`), leaving its records to the
 * background delivery.
 */
function endInvocation(recorder, id, drainMs) {
  return internalsOf(recorder).native.endInvocation(id, drainMs)
}

/** Records the extension could not deliver since the last call: `{ failed, records, error }`. */
function takeUndelivered(recorder) {
  return internalsOf(recorder).native.takeUndelivered()
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
      const earlier = takeUndelivered(recorder)
      const failed = report.failed + earlier.failed
      if (failed > 0) {
        warn(`${failed} of ${report.records + earlier.records} recorded calls were not delivered: ` +
          `${report.error ?? earlier.error}`)
      }
    }, (error) => warn(`flush at shutdown failed: ${error && error.message}`)).finally(exit)
  }
  process.on('SIGTERM', onSigterm)
}

module.exports = { beginRegistration, deliverAfterResponse, invocationStarted, releaseInvocation, endInvocation, takeUndelivered }
