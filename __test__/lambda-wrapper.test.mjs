// The wrapper's knowledge of the Lambda Node.js runtime, without the runtime: which handlers keep
// callback semantics, and that a streaming handler keeps its marks and gets the stream.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import ApiCallRecorder from '../index.mjs'
import { freeUdpPort } from './helpers/ports.mjs'
import { lambdaContext, memoryLogger } from './helpers/lambda.mjs'

const require = createRequire(import.meta.url)
const lambda = require('../lambda/runtime.js')
const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming')
const HIGH_WATER_MARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark')

test('callback semantics are kept only in Lambda runtimes that accept callback handlers', () => {
  assert.equal(lambda.runtimeSupportsCallbacks({ AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs20.x' }), true)
  assert.equal(lambda.runtimeSupportsCallbacks({ AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x' }), true)
  assert.equal(lambda.runtimeSupportsCallbacks({ AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x' }), false)
  assert.equal(lambda.runtimeSupportsCallbacks({ AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs26.x' }), false)
  // Managed instances run many invocations at once and refuse callback handlers.
  assert.equal(lambda.runtimeSupportsCallbacks({ AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x', AWS_LAMBDA_MAX_CONCURRENCY: '8' }), false)
  // Outside Lambda's runtime the caller awaits the wrapper.
  assert.equal(lambda.runtimeSupportsCallbacks({}), false)
  assert.equal(lambda.runtimeSupportsCallbacks({ AWS_EXECUTION_ENV: 'AWS_ECS_FARGATE' }), false)
})

test('a wrapped streaming handler keeps the runtime\'s marks and is passed the stream', async () => {
  const port = await freeUdpPort()
  const inner = async (event, responseStream, context) => {
    responseStream.write(`${event.n}:${context.awsRequestId}`)
    return undefined
  }
  inner[STREAMING] = 'response'
  inner[HIGH_WATER_MARK] = 2048
  const logger = memoryLogger()
  const wrapped = ApiCallRecorder(inner, { enabled: true, port, sink: 'none', logger })
  assert.notEqual(wrapped, inner)
  assert.equal(wrapped[STREAMING], 'response')
  assert.equal(wrapped[HIGH_WATER_MARK], 2048)
  const written = []
  const context = lambdaContext()
  assert.equal(await wrapped({ n: 1 }, { write: (chunk) => written.push(chunk) }, context), undefined)
  assert.deepEqual(written, [`1:${context.awsRequestId}`])
  assert.deepEqual(logger.warnings, [])
})

test('afterResponse outside Lambda: delivered before the outcome, with one warning when asked for explicitly', async () => {
  const port = await freeUdpPort()
  const logger = memoryLogger()
  const wrapped = ApiCallRecorder(async () => 'ok', { enabled: true, port, sink: 'none', logger, afterResponse: true })
  assert.equal(await wrapped({}, lambdaContext()), 'ok')
  assert.equal(logger.warnings.length, 1)
  assert.match(logger.warnings[0], /afterResponse applies in Lambda only/)
})
