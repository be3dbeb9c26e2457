'use strict'

// The public API: ApiCallRecorder(handler, options) wraps a Lambda handler (./lambda/); Recorder is
// the same machinery for scripts and tools (./recorder.js); the v3 SDK plugin (./sdk-v3/). The
// package's entry is this file bundled (index.bundle.js, see scripts/bundle.mjs).

const { ApiCallRecorder, startRecording } = require('./lambda/index.js')
const { runtimeSupportsCallbacks, isStreamingHandler } = require('./lambda/runtime.js')
const { Recorder } = require('./recorder.js')
const sdkV3 = require('./sdk-v3/index.js')

module.exports = ApiCallRecorder
module.exports.ApiCallRecorder = ApiCallRecorder
module.exports.Recorder = Recorder
module.exports.default = ApiCallRecorder
module.exports.recorderPlugin = sdkV3.recorderPlugin
module.exports.instrumentSdkV3 = sdkV3.instrumentSdkV3
module.exports.sdkV3Stats = sdkV3.sdkV3Stats
// For the layer's handler (layer/handler.mjs), which must share this copy's state; not public API.
Object.defineProperty(module.exports, Symbol.for('aws-api-call-recorder.layer'), {
  value: { startRecording, runtimeSupportsCallbacks, isStreamingHandler },
})
