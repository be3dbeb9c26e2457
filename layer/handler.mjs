// The handler Lambda's runtime loads when the layer's exec wrapper is set: the wrapper moves the
// function's handler setting to API_CALL_RECORDER_HANDLER and points _HANDLER here. Recording starts
// first, so the calls the function makes while its module loads are recorded (phase "init"); then
// the function's handler is loaded as the runtime would load it, and wrapped. Whatever goes wrong
// with recording, the function runs as it would without the layer, after one warning.
import { createRequire } from 'node:module'
import { loadFunctionHandler } from './function-handler.mjs'

const require = createRequire(import.meta.url)
const setting = process.env.API_CALL_RECORDER_HANDLER
const taskRoot = process.env.LAMBDA_TASK_ROOT ?? process.cwd()
// The 4.x runtime client (nodejs24.x) puts its InvokeStore on `awslambda` before it loads the
// handler; 3.x (nodejs22.x) does not. Without the global, the runtime's version decides.
const runtimeMajor = Number(/^AWS_Lambda_nodejs(\d+)/.exec(process.env.AWS_EXECUTION_ENV ?? '')?.[1] ??
  process.versions.node.split('.')[0])
const clientGeneration4 = globalThis.awslambda ? globalThis.awslambda.InvokeStore !== undefined : runtimeMajor >= 24

let hooks = null
let recording = null
try {
  // The package's bundled entry: the copy the function's own require('aws-api-call-recorder') gets.
  hooks = require('../index.bundle.js')[Symbol.for('aws-api-call-recorder.layer')]
  // Recording is on under the layer; the sink and the rest come from the usual variables.
  recording = hooks.startRecording({ enabled: true })
} catch (error) {
  console.warn(`aws-api-call-recorder layer: not recording: ${error?.message}. The function runs unchanged.`)
}

const functionHandler = await loadFunctionHandler(taskRoot, setting, { importEverything: clientGeneration4 })
// A callback-style handler the runtime refuses (the 4.x client, nodejs24.x) is handed over as it
// is, so the runtime refuses it exactly as it would without the layer.
const refused = Boolean(recording) && functionHandler.length >= 3 && !hooks.isStreamingHandler(functionHandler) &&
  (clientGeneration4 || !hooks.runtimeSupportsCallbacks())

export const handler = recording && !refused ? recording.wrap(functionHandler) : functionHandler
