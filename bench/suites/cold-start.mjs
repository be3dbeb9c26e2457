// 4. Cold start: what `require('aws-api-call-recorder')` and the first recorder cost a fresh process,
// and what the first invocation's recorded calls cost more than a warm invocation's.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { startLambda } from '../../__test__/helpers/lambda-runtime.mjs'
import { layerRuntimes } from './lambda.mjs'
import { extractedLayer } from '../../__test__/helpers/layer.mjs'
import { nodeBinary } from '../lib/node-binaries.mjs'
import { FAKE_CREDENTIALS, startMoto } from '../../__test__/helpers/moto.mjs'
import { freeUdpPort } from '../../__test__/helpers/ports.mjs'
import { BENCH_DIR, REPO_DIR, run, onCleanup, median, round, met } from '../lib/common.mjs'

const require = createRequire(import.meta.url)
const RUNS = 7
const TASK_ROOT = path.join(REPO_DIR, '__test__', 'fixtures', 'lambda')
const TIME_BUDGET_MS = 6
const RSS_BUDGET_MIB = 6
/** What invocation 1 may cost more than a warm one, in CPU time, beyond what the SDKs themselves add. */
const FIRST_INVOCATION_BUDGET_MS = 1

/** One fresh process per sample under `node`: require, then ApiCallRecorder (cold-start-child.cjs). */
async function moduleLoadSamples(node) {
  const samples = []
  for (let i = 0; i < RUNS; i++) {
    const out = await run(node, [path.join(BENCH_DIR, 'lib', 'cold-start-child.cjs')], { timeoutMs: 30_000 })
    samples.push(JSON.parse(out.trim()))
  }
  return samples
}

export async function coldStartBench() {
  const samples = await moduleLoadSamples(process.execPath)
  const row = (measure, ms, rssMiB, checked, from = samples) => ({
    measure,
    'median ms': round(median(from.map(ms)), 2),
    'RSS added MiB': round(median(from.map(rssMiB)), 1),
    target: checked ? `<= ${TIME_BUDGET_MS} ms and <= ${RSS_BUDGET_MIB} MiB` : '',
    'met?': checked
      ? met(median(from.map(ms)) <= TIME_BUDGET_MS && median(from.map(rssMiB)) <= RSS_BUDGET_MIB)
      : '',
  })
  const together = [(s) => s.requireMs + s.wrapMs, (s) => s.requireRss + s.wrapRss]
  // The same under the Node.js of the current Lambda runtimes, where the bench's own is another.
  const lambdaNodeRows = []
  for (const major of [22, 24]) {
    const node = nodeBinary(major)
    if (node === null || node === process.execPath) continue
    lambdaNodeRows.push(row(`require + ApiCallRecorder together, under Node.js ${major} (nodejs${major}.x)`,
      ...together, true, await moduleLoadSamples(node)))
  }
  const first = await firstInvocationBench()
  const layerRows = await layerColdStartBench()
  const table = [
    row("require('aws-api-call-recorder')", (s) => s.requireMs, (s) => s.requireRss, false),
    row('+ ApiCallRecorder(handler, { enabled: true }): loads the addon, starts the runtime, binds',
      (s) => s.wrapMs, (s) => s.wrapRss, false),
    row(`require + ApiCallRecorder together (what module load costs), Node.js ${process.versions.node.split('.')[0]}`,
      ...together, true),
    ...lambdaNodeRows,
    {
      measure: "first invocation's recorded calls vs a warm invocation's (3 v3 + 2 aws-sdk v2 calls to moto): " +
        'CPU time added, beyond what the unrecorded SDKs add (median of paired processes)',
      'median ms': round(first.extraCpuMs, 2),
      'RSS added MiB': '',
      target: `<= ${FIRST_INVOCATION_BUDGET_MS} ms`,
      'met?': met(first.extraCpuMs <= FIRST_INVOCATION_BUDGET_MS),
    },
    ...layerRows,
  ]
  return { table, firstTable: first.table, samples, firstSamples: first.samples }
}

/** What the layer may add to an environment's start, in milliseconds. */
const LAYER_BUDGET_MS = 15
/** Environments per runtime client and configuration: a start varies by tens of ms on a shared machine. */
const LAYER_RUNS = 15
/** An environment of a function that loads nothing starts in about 50 ms: more of them, for less noise. */
const EMPTY_FUNCTION_RUNS = 41

/**
 * CPU time the threads of process `pid` have run so far (Linux schedstat, nanoseconds), in ms;
 * NaN where it cannot be read.
 */
function processCpuMs(pid) {
  try {
    return fs.readdirSync(`/proc/${pid}/task`).reduce((sum, task) =>
      sum + Number(fs.readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]) / 1e6, 0)
  } catch {
    return Number.NaN
  }
}

/**
 * The functions the layer's cold start is measured with: one that loads the v3 SDK and aws-sdk v2 at
 * init, as most do (its own start varies by tens of ms), and one that loads nothing, where what the
 * layer adds is its own fixed cost, measured with far less noise.
 */
const LAYER_FUNCTIONS = [
  { handler: 'work.handler', what: 'v3 + v2 SDKs loaded at init', runs: LAYER_RUNS },
  { handler: 'empty.handler', what: 'a function that loads nothing', runs: EMPTY_FUNCTION_RUNS },
]

/**
 * The layer's cold start: from starting the runtime to its first request for an invocation (init
 * done), for each unchanged function of LAYER_FUNCTIONS with and without the layer, fresh
 * environments in turn, medians; per runtime client generation. Also the CPU time the
 * runtime's process has used by then, which a shared machine disturbs less.
 */
async function layerColdStartBench() {
  const moto = await startMoto()
  const forget = onCleanup(() => moto.stop())
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-bench-layer-'))
  try {
    const layer = extractedLayer(dir)
    const env = { ...FAKE_CREDENTIALS, MOTO_ENDPOINT: moto.endpoint, AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1',
      NODE_PATH: layer.nodePath, API_CALL_RECORDER_FILE: path.join(dir, 'records.jsonl') }
    const rows = []
    for (const { handler, what, runs } of LAYER_FUNCTIONS) for (const { generation, nodeMajor, nodePath } of layerRuntimes()) {
      const times = { without: [], with: [] }
      const cpu = { without: [], with: [] }
      for (let i = 0; i < runs; i++) {
        for (const kind of ['without', 'with']) {
          const fn = await startLambda({ taskRoot: TASK_ROOT, handler, env: { ...env, AWS_CSM_PORT: String(await freeUdpPort()) }, bootstrap: true,
            runtimeGeneration: generation, nodePath, nodeMajor, execWrapper: kind === 'with' ? layer.wrapper : null })
          try {
            const started = performance.now()
            await fn.init()
            times[kind].push(performance.now() - started)
            cpu[kind].push(processCpuMs(fn.pid()))
          } finally {
            await fn.shutdown()
          }
        }
      }
      // Environments with and without the layer are started in turn: the median of each pair's
      // difference, which a machine slowing down or speeding up over the run moves less than the
      // difference of the two medians does.
      const added = median(times.with.map((ms, i) => ms - times.without[i]))
      rows.push({
        measure: `layer: runtime start to its first request for an invocation, added (${what}; runtime client ${generation}.x, Node.js ${nodeMajor}; ` +
          `${round(median(times.without), 1)} ms without)`,
        'median ms': round(added, 2),
        'RSS added MiB': '',
        target: `<= ${LAYER_BUDGET_MS} ms`,
        'met?': met(added <= LAYER_BUDGET_MS),
      }, {
        measure: `layer: CPU time of the runtime's process by then, added (${what}; runtime client ${generation}.x; ` +
          `${round(median(cpu.without), 1)} ms without)`,
        'median ms': round(median(cpu.with.map((ms, i) => ms - cpu.without[i])), 2),
        'RSS added MiB': '',
        target: '',
        'met?': '',
      })
    }
    return rows
  } finally {
    forget()
    await moto.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** The bucket, table and queue the handler of first-invocation-child.mjs uses, made here. */
async function makeResources(endpoint, name) {
  const { S3Client, CreateBucketCommand } = require('@aws-sdk/client-s3')
  const { DynamoDBClient, CreateTableCommand } = require('@aws-sdk/client-dynamodb')
  const { SQSClient, CreateQueueCommand } = require('@aws-sdk/client-sqs')
  const config = {
    endpoint,
    region: FAKE_CREDENTIALS.AWS_REGION,
    credentials: { accessKeyId: FAKE_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: FAKE_CREDENTIALS.AWS_SECRET_ACCESS_KEY },
  }
  await new S3Client({ ...config, forcePathStyle: true }).send(new CreateBucketCommand({ Bucket: name }))
  await new DynamoDBClient(config).send(new CreateTableCommand({
    TableName: name,
    KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
    BillingMode: 'PAY_PER_REQUEST',
  }))
  await new SQSClient(config).send(new CreateQueueCommand({ QueueName: name }))
}

/** Fresh processes per mode for the first invocation: its CPU time varies by several ms between processes. */
const FIRST_INVOCATION_RUNS = 11

/**
 * Fresh processes in turn, recorded and not (bench/lib/first-invocation-child.mjs): per process,
 * invocation 1 minus the median of invocations 2..N, in handler time and in CPU time; the recorder's
 * share is the median over pairs of the recorded process's CPU difference minus the unrecorded one's.
 */
async function firstInvocationBench() {
  const moto = await startMoto()
  const forget = onCleanup(() => moto.stop())
  const name = 'bench-first-invocation'
  try {
    await makeResources(moto.endpoint, name)
    const samples = { recorded: [], unrecorded: [] }
    for (let i = 0; i < FIRST_INVOCATION_RUNS; i++) {
      for (const mode of ['recorded', 'unrecorded']) {
        const port = await freeUdpPort()
        const out = await run(process.execPath, ['--expose-gc', '--no-warnings', path.join(BENCH_DIR, 'lib', 'first-invocation-child.mjs'),
          mode, moto.endpoint, String(port), name], { timeoutMs: 60_000 })
        const { invocations } = JSON.parse(out.trim().split('\n').at(-1))
        const [firstCall, ...warm] = invocations
        samples[mode].push({
          firstMs: firstCall.ms,
          warmMs: median(warm.map((w) => w.ms)),
          firstCpuMs: firstCall.cpuMs,
          warmCpuMs: median(warm.map((w) => w.cpuMs)),
        })
      }
    }
    const extra = (mode, key) => median(samples[mode].map((s) => s[`first${key}`] - s[`warm${key}`]))
    // Processes with and without the recorder are started in pairs: the median of each pair's
    // difference, which the machine's drift over the run moves less than the difference of two medians.
    const cpuExtra = (s) => s.firstCpuMs - s.warmCpuMs
    const recorderCpuMs = median(samples.recorded.map((s, i) => cpuExtra(s) - cpuExtra(samples.unrecorded[i])))
    const table = ['recorded', 'unrecorded'].map((mode) => ({
      handler: mode,
      'first ms': round(median(samples[mode].map((s) => s.firstMs)), 1),
      'warm ms': round(median(samples[mode].map((s) => s.warmMs)), 1),
      'first - warm ms': round(extra(mode, 'Ms'), 2),
      'first CPU ms': round(median(samples[mode].map((s) => s.firstCpuMs)), 2),
      'warm CPU ms': round(median(samples[mode].map((s) => s.warmCpuMs)), 2),
      'first - warm CPU ms': round(extra(mode, 'CpuMs'), 2),
    }))
    return { table, samples, extraCpuMs: recorderCpuMs }
  } finally {
    forget()
    await moto.stop()
  }
}
