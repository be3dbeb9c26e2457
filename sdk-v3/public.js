'use strict'

// The `aws-api-call-recorder/sdk-v3` entry: taken from the main entry's bundle, so that a program
// importing both has one copy of the instrumentation and its state.
const { recorderPlugin, instrumentSdkV3, sdkV3Stats } = require('../index.bundle.js')

module.exports = { recorderPlugin, instrumentSdkV3, sdkV3Stats }
