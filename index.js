'use strict'

// The public API: ApiCallRecorder(handler, options) wraps a Lambda handler (./lambda/); Recorder is
// the same machinery for scripts and tools (./recorder.js); the v3 SDK plugin (./sdk-v3/).

const { ApiCallRecorder } = require('./lambda/index.js')
const { Recorder } = require('./recorder.js')
const sdkV3 = require('./sdk-v3/index.js')

module.exports = ApiCallRecorder
module.exports.ApiCallRecorder = ApiCallRecorder
module.exports.Recorder = Recorder
module.exports.default = ApiCallRecorder
module.exports.recorderPlugin = sdkV3.recorderPlugin
module.exports.instrumentSdkV3 = sdkV3.instrumentSdkV3
