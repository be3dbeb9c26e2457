'use strict'

// The public API: ApiCallRecorder(handler, options) wraps a Lambda handler (./lambda/); Recorder is
// the same machinery for scripts and tools (./recorder.js); the v3 SDK plugin (./sdk-v3/). The
// package's entry is this file bundled (index.bundle.js, see scripts/bundle.mjs).

// The modules are held by names no module uses inside: the bundle, which keeps the functions' own
// names, would otherwise rename a module's `Recorder` (and its `name`) to `Recorder2`.
const lambdaEntry = require('./lambda/index.js')
const lambdaRuntime = require('./lambda/runtime.js')
const recorderEntry = require('./recorder.js')
const sdkV3Entry = require('./sdk-v3/index.js')

module.exports = lambdaEntry.ApiCallRecorder
module.exports.ApiCallRecorder = lambdaEntry.ApiCallRecorder
module.exports.Recorder = recorderEntry.Recorder
module.exports.default = lambdaEntry.ApiCallRecorder
module.exports.recorderPlugin = sdkV3Entry.recorderPlugin
module.exports.instrumentSdkV3 = sdkV3Entry.instrumentSdkV3
module.exports.sdkV3Stats = sdkV3Entry.sdkV3Stats
// For the layer's handler (layer/handler.mjs), which must share this copy's state; not public API.
Object.defineProperty(module.exports, Symbol.for('aws-api-call-recorder.layer'), {
  value: {
    startRecording: lambdaEntry.startRecording,
    runtimeSupportsCallbacks: lambdaRuntime.runtimeSupportsCallbacks,
    isStreamingHandler: lambdaRuntime.isStreamingHandler,
  },
})
