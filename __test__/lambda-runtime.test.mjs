// The wrapper in Lambda's own life cycle: the real Node.js runtime interface client runs the
// function, Lambda's Runtime and Extensions APIs are stood in for on loopback, and the process is
// frozen between invocations. Records must be delivered before the freeze that follows their
// invocation: one that arrives later shows up here as missing.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { startLambda, runtimeClient, SHUTDOWN_BUDGET_MS } from './helpers/lambda-runtime.mjs'
import { startMoto, sdkV2CsmEnv } from './helpers/moto.mjs'
import { createDeliveryStream, deliveredRecords } from './helpers/firehose.mjs'
import { startFirehoseStandIn } from './helpers/firehose-standin.mjs'
import { readJsonl, assertNoSecrets } from './helpers/records.mjs'

const require = createRequire(import.meta.url)
const taskRoot = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'lambda')
const STEP_TIMEOUT_MS = 180_000
let moto, dir, AWS, s3

before(async () => {
  const client = runtimeClient()
  if (client.error) throw new Error(`these tests run functions under the Lambda runtime interface client: ${client.error}`)
  moto = await startMoto()
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-lambda-'))
  Object.assign(process.env, await sdkV2CsmEnv(dir))
  AWS = require('aws-sdk')
  ;({ s3 } = await createDeliveryStream(AWS, moto.endpoint, { bucket: 'lambda-records', stream: 'lambda-calls' }))
})

after(async () => {
  await moto?.stop()
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

let functions = 0

/** A function under the harness, recording to its own file (or as `env` says). */
async function lambdaFunction(handler, { env = {}, timeoutMs = 5000 } = {}) {
  const file = path.join(dir, `records-${++functions}.jsonl`)
  const fn = await startLambda({
    taskRoot,
    handler,
    timeoutMs,
    env: {
      ...(await sdkV2CsmEnv(dir)),
      MOTO_ENDPOINT: moto.endpoint,
      AWS_ENDPOINT_URL_FIREHOSE: moto.endpoint,
      API_CALL_RECORDER_IS_ACTIVATED: 'true',
      API_CALL_RECORDER_FILE: file,
      ...env,
    },
  })
  return { fn, file }
}

const callsOf = (records, requestId) => records.filter((r) => r.awsRequestId === requestId)
const summary = (records) => records.map((r) => `${r.Type}:${r.Service}.${r.Api}`).sort()
const TWO_CALLS = ['ApiCall:DynamoDB.ListTables', 'ApiCall:STS.GetCallerIdentity',
  'ApiCallAttempt:DynamoDB.ListTables', 'ApiCallAttempt:STS.GetCallerIdentity']

test('the harness freezes the function between invocations: work left behind runs only after the thaw', { timeout: STEP_TIMEOUT_MS }, async () => {
  const { fn } = await lambdaFunction('freeze.handler')
  const marker = path.join(dir, 'left-behind.txt')
  try {
    assert.deepEqual((await fn.invoke({ i: 0, file: marker })).result, { i: 0 })
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.equal(fs.existsSync(marker), false, 'nothing ran while frozen')
    await fn.invoke({ i: 1, file: path.join(dir, 'unused.txt') })
    await new Promise((resolve) => setTimeout(resolve, 300))
    // Thawed for invocation 1, the timer of invocation 0 has fired.
    assert.equal(fs.readFileSync(marker, 'utf8'), 'written after invocation 0')
  } finally {
    await fn.shutdown()
  }
})

test('100 invocations: every call is recorded once, with its awsRequestId, before the environment is frozen', { timeout: STEP_TIMEOUT_MS }, async () => {
  // The first unawaited invocation is the v3 STS client's first call, which on a loaded machine can
  // take longer than the default 25 ms drain: the drain ends as soon as the calls are in, so a
  // generous bound keeps the test about what was sent, not about the machine's speed.
  const { fn, file } = await lambdaFunction('calls.handler', { env: { API_CALL_RECORDER_DRAIN_MS: '2000' } })
  try {
    const requestIds = []
    for (let i = 0; i < 100; i++) {
      // Every tenth invocation returns without waiting for its calls.
      const kind = i % 10 === 9 ? 'unawaited' : 'calls'
      const outcome = await fn.invoke({ i, kind })
      assert.equal(outcome.timedOut, false)
      assert.deepEqual(outcome.result, { i }, fn.output())
      // The environment is frozen now: what is not in the file yet was not delivered in time.
      const records = readJsonl(file)
      assert.deepEqual(summary(callsOf(records, outcome.requestId)), TWO_CALLS, `invocation ${i} (${kind})`)
      requestIds.push(outcome.requestId)
    }
    const records = readJsonl(file)
    assert.equal(records.length, 400)
    assert.ok(records.every((r) => requestIds.includes(r.awsRequestId) && r.phase === 'invoke' && r.functionName === 'recorder-test'))
    assert.deepEqual(records.filter((r) => r.coldStart === true).map((r) => r.awsRequestId), Array(4).fill(requestIds[0]))
    assertNoSecrets(fs.readFileSync(file, 'utf8'), 'the records file')
    assert.deepEqual(fn.extensions(), ['aws-api-call-recorder'])
    assert.doesNotMatch(fn.output(), /aws-api-call-recorder\]/, 'no warning from the recorder')
  } finally {
    const ended = await fn.shutdown()
    assert.equal(ended.killed, false, 'the runtime ended within the shutdown budget')
  }
})

test('Firehose on moto: each invocation is delivered in its own batch before the freeze', { timeout: STEP_TIMEOUT_MS }, async () => {
  const { fn } = await lambdaFunction('calls.handler', {
    env: { API_CALL_RECORDER_FILE: '', API_CALL_RECORDER_DELIVERY_STREAM_NAME: 'lambda-calls' },
  })
  try {
    const requestIds = []
    for (let i = 0; i < 100; i++) {
      const outcome = await fn.invoke({ i })
      assert.deepEqual(outcome.result, { i }, fn.output())
      requestIds.push(outcome.requestId)
      if (i === 0 || i === 99) {
        const { records } = await deliveredRecords(s3, 'lambda-records')
        assert.deepEqual(summary(callsOf(records, outcome.requestId)), TWO_CALLS, `invocation ${i}, frozen`)
      }
    }
    const { records, objects } = await deliveredRecords(s3, 'lambda-records')
    assert.equal(objects, 100, 'one PutRecordBatch per invocation')
    for (const requestId of requestIds) assert.deepEqual(summary(callsOf(records, requestId)), TWO_CALLS)
    assert.equal(records.length, 400)
    assertNoSecrets(JSON.stringify(records), 'the delivered records')
  } finally {
    await fn.shutdown()
  }
})

test('a handler\'s error reaches Lambda exactly as without the recorder, and its calls are recorded', { timeout: STEP_TIMEOUT_MS }, async () => {
  const plain = await lambdaFunction('work.handler')
  const wrapped = await lambdaFunction('calls.handler')
  try {
    const expected = await plain.fn.invoke({ i: 7, kind: 'fail' })
    const outcome = await wrapped.fn.invoke({ i: 7, kind: 'fail' })
    assert.equal(outcome.error.errorType, 'Error')
    assert.equal(outcome.error.errorMessage, 'failed on purpose 7')
    assert.deepEqual({ ...outcome.error, trace: undefined }, { ...expected.error, trace: undefined })
    assert.deepEqual(summary(callsOf(readJsonl(wrapped.file), outcome.requestId)),
      ['ApiCall:DynamoDB.ListTables', 'ApiCallAttempt:DynamoDB.ListTables'])
  } finally {
    await plain.fn.shutdown()
    await wrapped.fn.shutdown()
  }
})

test('callback handlers keep the runtime\'s semantics: the response waits for the event loop, whose calls are recorded', { timeout: STEP_TIMEOUT_MS }, async () => {
  const plain = await lambdaFunction('work.callback')
  const wrapped = await lambdaFunction('calls.callback')
  // nodejs24.x and later accept no callback handlers; the wrapper turns one into an async handler there.
  const callbacksSupported = Number(process.versions.node.split('.')[0]) < 24
  try {
    for (let i = 0; i < 3; i++) {
      const expected = await plain.fn.invoke({ i })
      const outcome = await wrapped.fn.invoke({ i })
      assert.deepEqual(outcome.result, { i, style: 'callback' }, wrapped.fn.output())
      assert.deepEqual(outcome.result, expected.result)
      if (callbacksSupported) {
        // The 100 ms timer pending at the callback ran before the response, as without the recorder.
        assert.ok(expected.responseMs >= 100, `unwrapped responded after ${expected.responseMs} ms`)
        assert.ok(outcome.responseMs >= 100, `wrapped responded after ${outcome.responseMs} ms`)
        assert.deepEqual(summary(callsOf(readJsonl(wrapped.file), outcome.requestId)), TWO_CALLS)
      }
    }
    const expected = await plain.fn.invoke({ i: 9, kind: 'fail' })
    const outcome = await wrapped.fn.invoke({ i: 9, kind: 'fail' })
    assert.equal(outcome.error.errorMessage, 'callback failure 9')
    assert.deepEqual({ ...outcome.error, trace: undefined }, { ...expected.error, trace: undefined })
  } finally {
    await plain.fn.shutdown()
    await wrapped.fn.shutdown()
  }
})

test('a response-streaming handler gets its stream, and its calls are recorded', { timeout: STEP_TIMEOUT_MS }, async () => {
  const { fn, file } = await lambdaFunction('streaming.handler')
  try {
    for (let i = 0; i < 3; i++) {
      const outcome = await fn.invoke({ i })
      assert.equal(outcome.streamed, true)
      assert.equal(outcome.error, undefined, fn.output())
      assert.match(outcome.body, new RegExp(`^request ${outcome.requestId}; tables \\d+; done$`))
      assert.deepEqual(summary(callsOf(readJsonl(file), outcome.requestId)),
        ['ApiCall:DynamoDB.ListTables', 'ApiCallAttempt:DynamoDB.ListTables'])
    }
  } finally {
    await fn.shutdown()
  }
})

test('an ES module handler is recorded like a CommonJS one', { timeout: STEP_TIMEOUT_MS }, async () => {
  const { fn, file } = await lambdaFunction('esm.handler')
  try {
    const outcome = await fn.invoke({ i: 3 })
    assert.equal(outcome.result.module, 'esm', fn.output())
    assert.equal(outcome.result.i, 3)
    assert.deepEqual(summary(callsOf(readJsonl(file), outcome.requestId)),
      ['ApiCall:DynamoDB.ListTables', 'ApiCallAttempt:DynamoDB.ListTables'])
    assert.deepEqual(fn.extensions(), ['aws-api-call-recorder'])
  } finally {
    await fn.shutdown()
  }
})

test('a function that times out: the calls it made are delivered before Lambda ends it, and the next environment records', { timeout: STEP_TIMEOUT_MS }, async () => {
  const { fn, file } = await lambdaFunction('calls.handler', { timeoutMs: 1500 })
  try {
    const hung = await fn.invoke({ i: 0, kind: 'hang' })
    assert.equal(hung.timedOut, true)
    assert.deepEqual(summary(callsOf(readJsonl(file), hung.requestId)),
      ['ApiCall:STS.GetCallerIdentity', 'ApiCallAttempt:STS.GetCallerIdentity'])
    const next = await fn.invoke({ i: 1 })
    assert.deepEqual(next.result, { i: 1 })
    assert.equal(fn.history.environments, 2)
    assert.deepEqual(summary(callsOf(readJsonl(file), next.requestId)), TWO_CALLS)
  } finally {
    await fn.shutdown()
  }
})

test('Firehose down after the response: the response is not held, the environment is freed by the flush timeout, one warning follows', { timeout: STEP_TIMEOUT_MS }, async () => {
  const standIn = await startFirehoseStandIn()
  const { fn } = await lambdaFunction('calls.handler', {
    env: {
      API_CALL_RECORDER_FILE: '',
      API_CALL_RECORDER_DELIVERY_STREAM_NAME: 'hold',
      API_CALL_RECORDER_FLUSH_TIMEOUT_MS: '600',
      AWS_ENDPOINT_URL_FIREHOSE: standIn.endpoint,
    },
  })
  try {
    const first = await fn.invoke({ i: 0 })
    assert.deepEqual(first.result, { i: 0 })
    assert.equal(first.timedOut, false)
    // Held for the flush timeout, after the response went out.
    assert.ok(first.heldMs >= 500, `held ${first.heldMs} ms`)
    assert.ok(first.responseMs < first.heldMs - 400, `responded after ${first.responseMs} ms, held ${first.heldMs} ms`)
    const second = await fn.invoke({ i: 1, kind: 'none' })
    assert.deepEqual(second.result, { i: 1 })
    const warnings = () => fn.output().split('\n').filter((line) => line.includes('were not delivered'))
    assert.equal(warnings().length, 1, fn.output())
    assert.match(warnings()[0], /4 of 4 recorded calls were not delivered/)
    // The third invocation's calls fail too; no invocation follows, so they are reported at shutdown.
    const third = await fn.invoke({ i: 2 })
    assert.deepEqual(third.result, { i: 2 })
    const ended = await fn.shutdown()
    assert.equal(ended.killed, false)
    assert.equal(warnings().length, 2, fn.output())
    assert.match(warnings()[1], /4 of 4 recorded calls were not delivered/)
  } finally {
    await fn.shutdown()
    await standIn.stop()
  }
})

test('calls made during init of an environment that is shut down before any invocation are delivered at SIGTERM', { timeout: STEP_TIMEOUT_MS }, async () => {
  const { fn, file } = await lambdaFunction('esm.handler', { env: { CALL_DURING_INIT: '1' } })
  await fn.init()
  assert.deepEqual(readJsonl(file), [], 'nothing delivered during init')
  const ended = await fn.shutdown()
  assert.equal(ended.signal, 'SIGTERM')
  assert.equal(ended.killed, false)
  assert.ok(ended.shutdownMs < SHUTDOWN_BUDGET_MS)
  const records = readJsonl(file)
  assert.deepEqual(summary(records), ['ApiCall:DynamoDB.ListTables', 'ApiCallAttempt:DynamoDB.ListTables'])
  assert.ok(records.every((r) => r.phase === 'init' && r.awsRequestId === undefined))
})

test('wrapped after init, the recorder cannot register: one warning, records delivered before the response', { timeout: STEP_TIMEOUT_MS }, async () => {
  const { fn, file } = await lambdaFunction('late-wrap.handler')
  try {
    for (let i = 0; i < 2; i++) {
      const outcome = await fn.invoke({ i })
      assert.deepEqual(outcome.result, { i }, fn.output())
      assert.deepEqual(summary(callsOf(readJsonl(file), outcome.requestId)),
        ['ApiCall:DynamoDB.ListTables', 'ApiCallAttempt:DynamoDB.ListTables'])
    }
    assert.deepEqual(fn.history.refusedRegistrations, ['aws-api-call-recorder'])
    const warnings = fn.output().split('\n').filter((line) => line.includes('delivering before each response'))
    assert.equal(warnings.length, 1, fn.output())
  } finally {
    await fn.shutdown()
  }
})

test('API_CALL_RECORDER_AFTER_RESPONSE=false: no extension, records delivered before the response', { timeout: STEP_TIMEOUT_MS }, async () => {
  const { fn, file } = await lambdaFunction('calls.handler', { env: { API_CALL_RECORDER_AFTER_RESPONSE: 'false' } })
  try {
    const outcome = await fn.invoke({ i: 0 })
    assert.deepEqual(outcome.result, { i: 0 })
    assert.deepEqual(fn.extensions(), [])
    assert.deepEqual(summary(callsOf(readJsonl(file), outcome.requestId)), TWO_CALLS)
  } finally {
    await fn.shutdown()
  }
})

test('a module that wraps another export than the one Lambda runs does not hold the function until its deadline', { timeout: STEP_TIMEOUT_MS }, async () => {
  const { fn, file } = await lambdaFunction('calls.unwrapped', { timeoutMs: 6000 })
  try {
    for (let i = 0; i < 2; i++) {
      const outcome = await fn.invoke({ i })
      assert.deepEqual(outcome.result, { i })
      assert.equal(outcome.timedOut, false)
      // Held for the wrapper's grace (1 s), not until the deadline less its margin (5.7 s).
      assert.ok(outcome.heldMs < 3000, `held ${outcome.heldMs} ms`)
    }
    // The calls are still delivered, though no wrapper attributed them to an invocation.
    assert.equal(readJsonl(file).filter((r) => r.Type === 'ApiCall').length, 4)
  } finally {
    await fn.shutdown()
  }
})
