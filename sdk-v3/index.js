'use strict'

// Client-Side Monitoring for the AWS SDK for JavaScript v3 (@aws-sdk/*), which has none of its own:
// a middleware plugin (plugin.js), the automatic patching of loaded SDK clients (instrument.js), and
// recording from Node's HTTP client for SDKs bundled into the application (http.js).

const { counters, inFlight, instrumentation } = require('./state.js')
const { recorderPlugin } = require('./plugin.js')
const { instrumentSdkV3 } = require('./instrument.js')
const { settleHttpCalls, httpLayerActive } = require('./http.js')

/** Counters since the process started, for diagnostics and tests. */
function sdkV3Stats() {
  return { ...counters, instrumenting: instrumentation.current !== null, httpLayer: httpLayerActive() }
}

module.exports = {
  /** v3 calls recorded and not yet finished. */
  callsInFlight: () => inFlight.calls,
  recorderPlugin,
  instrumentSdkV3,
  sdkV3Stats,
  settleHttpCalls,
}
