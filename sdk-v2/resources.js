'use strict'

// Resources for the calls of aws-sdk v2 (JavaScript) in this process. v2 builds its own CSM `ApiCall`
// event and sends it one tick later; this module only listens, through two public event hooks, and
// adds `Resources` to that event before it is sent:
// - `AWS.events` 'complete': global request listeners run first among a request's 'complete'
//   listeners, just before the SDK's own listener builds the ApiCall event for that request;
// - `AWS.Service.prototype` 'apiCall': every client's ApiCall event bubbles up to it, synchronously,
//   before the SDK's publisher serializes it on the next tick.
// The call itself is not touched. Limits: requests created before the hooks are installed are not
// covered (global request listeners are copied into each request when it is made). The events
// reach the recorder in process (./calls.js) or over CSM.

const { addResources } = require('../iam/resources.js')

const HOOKED = Symbol.for('aws-api-call-recorder.sdk-v2.resources')

/** Adds the listeners to one copy of aws-sdk v2 (its `AWS` namespace). Returns false if it had them. */
function recordSdkV2Resources(AWS) {
  if (Object.hasOwn(AWS, HOOKED)) return false
  Object.defineProperty(AWS, HOOKED, { value: true })
  let completing = null
  AWS.events.on('complete', function noteCompletingRequest(response) {
    completing = response?.request ?? this
  })
  AWS.Service.prototype.on('apiCall', function addRequestResources(event) {
    const request = completing
    completing = null
    try {
      if (request === null || event === null || typeof event !== 'object') return
      // Only the event of the request that is completing: its operation and service must agree.
      const api = request.service?.api
      const operation = api?.operations?.[request.operation]?.name ?? request.operation
      if (event.Api !== operation || event.Service !== (api?.serviceId || api?.endpointPrefix)) return
      addResources(event, request.params)
    } catch {
      // the event stays action-level
    }
  })
  return true
}

module.exports = { recordSdkV2Resources }
