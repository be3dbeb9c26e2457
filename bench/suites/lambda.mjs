// 8. Under Lambda's life cycle: the real Node.js runtime interface client, a Runtime and Extensions
// API stand-in that freezes the process between invocations (__test__/helpers/lambda-runtime.mjs).
// Per configuration, how long the caller waits for the response and how long the environment is
// held (until it is frozen, which is what Lambda bills), for a handler making one v3 and one
// aws-sdk v2 call to moto.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { startMoto, sdkV2CsmEnv, FAKE_CREDENTIALS } from '../../__test__/helpers/moto.mjs'
import { freeUdpPort } from '../../__test__/helpers/ports.mjs'
import { createDeliveryStream, deliveredRecords } from '../../__test__/helpers/firehose.mjs'
import { startLambda, runtimeClient } from '../../__test__/helpers/lambda-runtime.mjs'
import { REPO_DIR, onCleanup, median, round, met } from '../lib/common.mjs'
import { extractedLayer } from '../../__test__/helpers/layer.mjs'
import { nodeBinary } from '../lib/node-binaries.mjs'

const WARMUP = 5
const INVOCATIONS = 150
const TASK_ROOT = path.join(REPO_DIR, '__test__', 'fixtures', 'lambda')

const readLines = (file) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).length

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

/**
 * Runs the configurations side by side: each in its own environment (frozen while the others run),
 * invoked in turn, so drift of the machine or of moto hits them all alike.
 */
async function measureInTurn(configurations) {
  const functions = []
  try {
    for (const { handler, env, lambda } of configurations) {
      const fn = await startLambda({ taskRoot: TASK_ROOT, handler, env, timeoutMs: 10_000, ...lambda })
      functions.push(fn)
      onCleanup(() => fn.shutdown())
    }
    const samples = functions.map(() => [])
    for (let i = 0; i < WARMUP + INVOCATIONS; i++) {
      for (const [index, fn] of functions.entries()) {
        const outcome = await fn.invoke({ i })
        if (!outcome.result || outcome.result.i !== i) throw new Error(`invocation ${i} failed: ${JSON.stringify(outcome)}\n${fn.output()}`)
        if (i >= WARMUP) samples[index].push(outcome)
      }
    }
    for (const fn of functions) {
      if (fn.output().includes('[aws-api-call-recorder]')) throw new Error(`the recorder warned:\n${fn.output()}`)
    }
    return samples
  } finally {
    for (const fn of functions) await fn.shutdown()
  }
}

/** One flush of 4 records (one invocation's worth) straight to the sink, median of 20. */
async function flushRoundTrip(options) {
  const require = createRequire(path.join(REPO_DIR, 'index.js'))
  const { Recorder } = require(path.join(REPO_DIR, 'index.js'))
  const recorder = new Recorder({ port: 0, ...options })
  const event = JSON.stringify({ Version: 1, ClientId: '', Type: 'ApiCall', Service: 'STS', Api: 'GetCallerIdentity', Timestamp: Date.now(), AttemptCount: 1, Region: 'us-west-2', Latency: 5, FinalHttpStatusCode: 200, MaxRetriesExceeded: 0 })
  const times = []
  for (let i = 0; i < 21; i++) {
    for (let j = 0; j < 4; j++) recorder.ingest(event)
    const started = performance.now()
    await recorder.flush({ drainMs: 0 })
    if (i > 0) times.push(performance.now() - started)
  }
  return median(times)
}

/** The runtimes the layer is measured under: nodejs22.x's client on Node.js 22, nodejs24.x's on 24. */
export function layerRuntimes() {
  return [[3, 22], [4, 24]].flatMap(([generation, nodeMajor]) => {
    const nodePath = nodeBinary(nodeMajor)
    if (!nodePath || runtimeClient(generation, nodeMajor).error) return []
    return [{ generation, nodeMajor, nodePath }]
  })
}

export async function lambdaBench() {
  const client = runtimeClient()
  if (client.error) throw new Error(client.error)
  const moto = await startMoto()
  const forget = onCleanup(() => moto.stop())
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-bench-lambda-'))
  try {
    // The bench process itself creates the delivery stream and measures a direct flush.
    Object.assign(process.env, FAKE_CREDENTIALS, { AWS_ENDPOINT_URL_FIREHOSE: moto.endpoint })
    const AWS = createRequire(path.join(REPO_DIR, 'index.js'))('aws-sdk')
    const { s3 } = await createDeliveryStream(AWS, moto.endpoint, { bucket: 'bench-lambda', stream: 'bench-lambda' })
    // Environments run side by side: each gets its own CSM port (sdkV2CsmEnv picks a free one).
    const base = {
      MOTO_ENDPOINT: moto.endpoint,
      AWS_ENDPOINT_URL_FIREHOSE: moto.endpoint,
      API_CALL_RECORDER_IS_ACTIVATED: 'true',
    }
    const sinks = {
      file: { env: { API_CALL_RECORDER_FILE: path.join(dir, 'records.jsonl') }, options: { file: path.join(dir, 'direct.jsonl') } },
      'firehose (moto)': { env: { API_CALL_RECORDER_DELIVERY_STREAM_NAME: 'bench-lambda' }, options: { deliveryStreamName: 'bench-lambda' } },
    }
    const roundTrips = {}
    for (const [sink, { options }] of Object.entries(sinks)) roundTrips[sink] = await flushRoundTrip(options)
    const configurations = [{ name: 'unwrapped', sink: '', handler: 'work.handler', env: { ...(await sdkV2CsmEnv(dir)), ...base } }]
    for (const [sink, { env }] of Object.entries(sinks)) {
      for (const mode of ['in-response', 'after-response']) {
        configurations.push({
          name: `wrapped, ${mode}`,
          mode,
          sink,
          handler: 'calls.handler',
          env: { ...(await sdkV2CsmEnv(dir)), ...base, ...env, API_CALL_RECORDER_AFTER_RESPONSE: mode === 'after-response' ? 'true' : 'false' },
        })
      }
    }
    // The layer: the unchanged function (work.handler) through the exec wrapper, CSM off as users
    // run it, against the same function without the layer, under each runtime's client and Node.js:
    // aws-lambda-ric 3.x on Node.js 22 (nodejs22.x), 4.x on Node.js 24 (nodejs24.x).
    const layer = extractedLayer(dir)
    const layerFile = path.join(dir, 'layer.jsonl')
    const plain = { ...base, ...FAKE_CREDENTIALS, AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1' }
    const runtimes = layerRuntimes()
    const generations = runtimes.map(({ generation }) => generation)
    for (const { generation, nodeMajor, nodePath } of runtimes) {
      const lambda = { bootstrap: true, runtimeGeneration: generation, nodePath, nodeMajor }
      const where = `runtime client ${generation}.x, Node.js ${nodeMajor}`
      configurations.push({ name: `unwrapped, no CSM, ${where}`, sink: '', handler: 'work.handler', env: plain, lambda, layerBase: true })
      configurations.push({
        name: `layer (no code change), ${where}`, mode: 'layer', sink: 'file', handler: 'work.handler',
        // Environments run side by side: the recorder's CSM port is free for each.
        env: { ...plain, NODE_PATH: layer.nodePath, API_CALL_RECORDER_FILE: layerFile, AWS_CSM_PORT: String(await freeUdpPort()) },
        lambda: { ...lambda, execWrapper: layer.wrapper },
      })
    }
    const samples = await measureInTurn(configurations)
    // What was measured delivered everything: 4 records per invocation, per configuration and sink.
    const expected = (WARMUP + INVOCATIONS) * 4 * 2
    const delivered = {
      file: readLines(path.join(dir, 'records.jsonl')),
      // Less the 21 direct flushes of 4 records that measured the round trip.
      'firehose (moto)': (await deliveredRecords(s3, 'bench-lambda')).records.length - 21 * 4,
    }
    for (const [sink, count] of Object.entries(delivered)) {
      if (count !== expected) throw new Error(`${sink}: ${count} records delivered, expected ${expected}`)
    }
    const layerExpected = (WARMUP + INVOCATIONS) * 4 * generations.length
    if (generations.length > 0 && readLines(layerFile) !== layerExpected) {
      throw new Error(`layer: ${readLines(layerFile)} records delivered, expected ${layerExpected}`)
    }
    const stats = samples.map((runs) => ({
      response: median(runs.map((s) => s.responseMs)),
      responseP99: percentile(runs.map((s) => s.responseMs), 99),
      held: median(runs.map((s) => s.heldMs)),
    }))
    const table = configurations.map((configuration, index) => {
      const { response, responseP99, held } = stats[index]
      // A layer row is compared with the unwrapped row just before it (same runtime client, no CSM).
      const baseIndex = configuration.mode === 'layer' ? index - 1 : 0
      const base0 = stats[baseIndex]
      const row = {
        configuration: configuration.name,
        sink: configuration.sink,
        'response ms (median)': round(response, 2),
        'response ms (p99)': round(responseP99, 2),
        'held ms (median)': round(held, 2),
        'response added ms (median / p99)': '',
        'held added ms (median)': '',
        'flush round trip ms': '',
        target: '',
        'met?': '',
      }
      if (index === 0 || configuration.layerBase) return row
      const addedMedian = response - base0.response
      const addedP99 = responseP99 - base0.responseP99
      const heldAdded = held - base0.held
      const roundTrip = roundTrips[configuration.sink] ?? roundTrips.file
      row['response added ms (median / p99)'] = `${round(addedMedian, 2)} / ${round(addedP99, 2)}`
      row['held added ms (median)'] = round(heldAdded, 2)
      row['flush round trip ms'] = round(roundTrip, 2)
      if (configuration.mode === 'layer') {
        row.target = 'response +<= 1 (median)'
        row['met?'] = met(addedMedian <= 1)
      } else if (configuration.mode === 'after-response') {
        row.target = `response +<= 1 / 2; held +<= 2 + ${round(roundTrip, 1)}`
        row['met?'] = met(addedMedian <= 1 && addedP99 <= 2 && heldAdded <= 2 + roundTrip)
      }
      return row
    })
    return { table }
  } finally {
    forget()
    await moto.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
