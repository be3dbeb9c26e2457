'use strict'

// The calls of aws-sdk v2 (JavaScript) in this process, recorded from the SDK's own monitoring
// events instead of its Client-Side Monitoring datagrams. Every v2 client emits an `apiCallAttempt`
// event per HTTP attempt and an `apiCall` event per call, CSM on or off, and both bubble up to
// `AWS.Service.prototype`; with CSM on, the SDK's publisher sends the same events over UDP one tick
// later. So with CSM off (the usual case in Lambda), the events are taken here, synchronously and
// without a datagram; with CSM on they are left to the socket, and nothing is recorded twice.
// Limit: a single client configured with `clientSideMonitoring: true` while the environment has CSM
// off sends its datagrams too, and its calls are recorded twice.

const HOOKED = Symbol.for('aws-api-call-recorder.sdk-v2.calls')

/** Records the calls of one copy of aws-sdk v2 (its `AWS` namespace) to `target`. */
function recordSdkV2Calls(AWS, target) {
  if (Object.hasOwn(AWS, HOOKED)) {
    AWS[HOOKED].target = target
    return false
  }
  const state = { target }
  Object.defineProperty(AWS, HOOKED, { value: state })
  const take = (event) => {
    // CSM on for the process: the SDK's publisher sends this event itself.
    if (AWS.Service._clientSideMonitoring === true || event === null || typeof event !== 'object') return
    try {
      // The attempt's session token is a live credential: it is never copied, not even into the
      // JSON the recorder reads (which would drop it).
      const { SessionToken, ...fields } = event
      state.target.ingest(JSON.stringify(fields), 'sdk-v2')
    } catch {
      // a recorder failure never reaches the SDK
    }
  }
  AWS.Service.prototype.on('apiCallAttempt', take)
  AWS.Service.prototype.on('apiCall', take)
  return true
}

module.exports = { recordSdkV2Calls }
