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
import { createDeliveryStream } from '../../__test__/helpers/firehose.mjs'
import { startLambda, runtimeClient } from '../../__test__/helpers/lambda-runtime.mjs'
import { REPO_DIR, onCleanup, median, round, met } from '../lib/common.mjs'

const WARMUP = 5
const INVOCATIONS = 60
const TASK_ROOT = path.join(REPO_DIR, '__test__', 'fixtures', 'lambda')

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

async function measure({ handler, env }) {
  const fn = await startLambda({ taskRoot: TASK_ROOT, handler, env, timeoutMs: 10_000 })
  const forget = onCleanup(() => fn.shutdown())
  try {
    const samples = []
    for (let i = 0; i < WARMUP + INVOCATIONS; i++) {
      const outcome = await fn.invoke({ i })
      if (!outcome.result || outcome.result.i !== i) throw new Error(`invocation ${i} failed: ${JSON.stringify(outcome)}\n${fn.output()}`)
      if (i >= WARMUP) samples.push(outcome)
    }
    return samples
  } finally {
    forget()
    await fn.shutdown()
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

export async function lambdaBench() {
  const client = runtimeClient()
  if (client.error) throw new Error(client.error)
  const moto = await startMoto()
  const forget = onCleanup(() => moto.stop())
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-bench-lambda-'))
  try {
    // The bench process itself creates the delivery stream and measures a direct flush.
    Object.assign(process.env, FAKE_CREDENTIALS)
    const AWS = createRequire(path.join(REPO_DIR, 'index.js'))('aws-sdk')
    await createDeliveryStream(AWS, moto.endpoint, { bucket: 'bench-lambda', stream: 'bench-lambda' })
    const base = {
      ...(await sdkV2CsmEnv(dir)),
      MOTO_ENDPOINT: moto.endpoint,
      AWS_ENDPOINT_URL_FIREHOSE: moto.endpoint,
      API_CALL_RECORDER_IS_ACTIVATED: 'true',
    }
    const sinks = {
      file: { env: { API_CALL_RECORDER_FILE: path.join(dir, 'records.jsonl') }, options: { file: path.join(dir, 'direct.jsonl') } },
      'firehose (moto)': { env: { API_CALL_RECORDER_DELIVERY_STREAM_NAME: 'bench-lambda' }, options: { deliveryStreamName: 'bench-lambda' } },
    }
    const unwrapped = await measure({ handler: 'work.handler', env: base })
    const baseResponse = median(unwrapped.map((s) => s.responseMs))
    const baseResponseP99 = percentile(unwrapped.map((s) => s.responseMs), 99)
    const baseHeld = median(unwrapped.map((s) => s.heldMs))
    const table = [{
      configuration: 'unwrapped',
      sink: '',
      'response ms (median)': round(baseResponse, 2),
      'response ms (p99)': round(baseResponseP99, 2),
      'held ms (median)': round(baseHeld, 2),
      'response added ms (median / p99)': '',
      'held added ms (median)': '',
      'flush round trip ms': '',
      target: '',
      'met?': '',
    }]
    for (const [sink, { env, options }] of Object.entries(sinks)) {
      const previous = process.env.AWS_ENDPOINT_URL_FIREHOSE
      process.env.AWS_ENDPOINT_URL_FIREHOSE = moto.endpoint
      const roundTrip = await flushRoundTrip(options)
      if (previous === undefined) delete process.env.AWS_ENDPOINT_URL_FIREHOSE
      else process.env.AWS_ENDPOINT_URL_FIREHOSE = previous
      for (const mode of ['in-response', 'after-response']) {
        const samples = await measure({
          handler: 'calls.handler',
          env: { ...base, ...env, API_CALL_RECORDER_AFTER_RESPONSE: mode === 'after-response' ? 'true' : 'false' },
        })
        const response = median(samples.map((s) => s.responseMs))
        const responseP99 = percentile(samples.map((s) => s.responseMs), 99)
        const held = median(samples.map((s) => s.heldMs))
        const addedMedian = response - baseResponse
        const addedP99 = responseP99 - baseResponseP99
        const heldAdded = held - baseHeld
        const after = mode === 'after-response'
        table.push({
          configuration: `wrapped, ${mode}`,
          sink,
          'response ms (median)': round(response, 2),
          'response ms (p99)': round(responseP99, 2),
          'held ms (median)': round(held, 2),
          'response added ms (median / p99)': `${round(addedMedian, 2)} / ${round(addedP99, 2)}`,
          'held added ms (median)': round(heldAdded, 2),
          'flush round trip ms': round(roundTrip, 2),
          target: after ? `response +<= 1 / 2; held +<= 2 + ${round(roundTrip, 1)}` : '',
          'met?': after ? met(addedMedian <= 1 && addedP99 <= 2 && heldAdded <= 2 + roundTrip) : '',
        })
      }
    }
    return { table }
  } finally {
    forget()
    await moto.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
