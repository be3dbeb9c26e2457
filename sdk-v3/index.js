'use strict'

// Client-Side Monitoring for the AWS SDK for JavaScript v3 (@aws-sdk/*), which has none of its own:
// a middleware plugin (plugin.js) and the automatic patching of loaded SDK clients (instrument.js).

const { counters, instrumentation } = require('./state.js')
const { recorderPlugin } = require('./plugin.js')
const { instrumentSdkV3 } = require('./instrument.js')

/** Counters since the process started, for diagnostics and tests. */
function sdkV3Stats() {
  return { ...counters, instrumenting: instrumentation.current !== null }
}

module.exports = {
  recorderPlugin,
  instrumentSdkV3,
  sdkV3Stats,
}
