// Wrapper overhead, in a fresh process per sink (the SDK reads AWS_CSM_PORT once, at require time).
// A handler makes N real aws-sdk v2 STS calls to moto; ApiCallRecorder wraps it. Per invocation:
// total time, the handler's own time, and the time of Recorder#settleInvocation (drain + flush),
// timed from JS around the real method. Prints one JSON line.
//
//   node wrapper-child.mjs <file|firehose> <motoEndpoint> <udpPort> <poolFile>
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { createRequire } from 'node:module'
import { useSdkEnvironment } from './sdk-env.mjs'
import { lambdaContext } from '../../__test__/helpers/lambda.mjs'
import { createDeliveryStream } from '../../__test__/helpers/firehose.mjs'

const require = createRequire(import.meta.url)
const [sink, endpoint, port, poolFile] = process.argv.slice(2)
const CALLS = [1, 10, 100]
const RUNS = { 1: 15, 10: 10, 100: 5 }
const WARMUP = 2
const DRAIN_MS = 25

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-bench-'))
try {
  useSdkEnvironment(dir, port, { AWS_ENDPOINT_URL_FIREHOSE: endpoint })
  const AWS = require('aws-sdk')
  const { ApiCallRecorder, Recorder } = require('../../index.js')
  const config = { endpoint, region: 'us-west-2' }
  const stream = `bench-${sink}`
  if (sink === 'firehose') await createDeliveryStream(AWS, endpoint, { bucket: stream, stream })

  // Time the real settleInvocation (drain to the barrier, then flush) of the wrapper's recorder,
  // and keep its report.
  let finish = null
  const realFinish = Recorder.prototype.settleInvocation
  Recorder.prototype.settleInvocation = async function timedFinish(...args) {
    const started = performance.now()
    const report = await realFinish.apply(this, args)
    finish = { ms: performance.now() - started, report }
    return report
  }

  const warnings = []
  const options = sink === 'file'
    ? { sink: 'file', file: path.join(dir, 'calls.jsonl') }
    : { sink: 'firehose', deliveryStreamName: stream }
  const sts = new AWS.STS(config)
  let calls = 0
  let handlerMs = 0
  const wrapped = ApiCallRecorder(async () => {
    const started = performance.now()
    for (let i = 0; i < calls; i++) await sts.getCallerIdentity().promise()
    handlerMs = performance.now() - started
    return calls
  }, { enabled: true, port: Number(port), drainMs: DRAIN_MS, logger: { warn: (m) => warnings.push(m) }, ...options })

  const rows = []
  for (const n of CALLS) {
    calls = n
    for (let i = 0; i < WARMUP + RUNS[n]; i++) {
      finish = null
      const started = performance.now()
      await wrapped({}, lambdaContext({ functionName: 'bench' }))
      const totalMs = performance.now() - started
      if (i >= WARMUP) {
        rows.push({
          calls: n, totalMs, handlerMs, finishMs: finish.ms,
          durationMs: finish.report.durationMs, records: finish.report.records, failed: finish.report.failed,
        })
      }
    }
  }

  // One sink round trip with the same records, made directly, as the yardstick for "one flush".
  const pool = fs.readFileSync(poolFile, 'utf8').split('\n').filter(Boolean)
  const roundTrips = []
  for (const n of CALLS) {
    const records = pool.slice(0, 2 * n)
    for (let i = 0; i < WARMUP + 5; i++) {
      const started = performance.now()
      if (sink === 'firehose') {
        await new AWS.Firehose(config).putRecordBatch({
          DeliveryStreamName: stream, Records: records.map((r) => ({ Data: `${r}\n` })),
        }).promise()
      } else {
        await fs.promises.appendFile(path.join(dir, 'direct.jsonl'), records.map((r) => `${r}\n`).join(''))
      }
      if (i >= WARMUP) roundTrips.push({ calls: n, ms: performance.now() - started })
    }
  }

  // A flush of exactly 100 records, no drain, through the native sink.
  const flushes = []
  const recorder = new Recorder({ port: 0, drainMs: 0, logger: { warn: (m) => warnings.push(m) }, ...options })
  recorder.start()
  for (let i = 0; i < WARMUP + 10; i++) {
    for (const datagram of pool.slice(0, 100)) recorder.ingest(datagram)
    const started = performance.now()
    const report = await recorder.flush({ drainMs: 0 })
    const ms = performance.now() - started
    if (i >= WARMUP) flushes.push({ ms, durationMs: report.durationMs, records: report.records, failed: report.failed })
  }
  // How long the drain really takes: an empty invocation settled at the barrier (at most the
  // wrapper's drainMs) minus an empty flush without a drain.
  const empty = { drained: [], undrained: [] }
  for (let i = 0; i < WARMUP + 10; i++) {
    let started = performance.now()
    await recorder.settleInvocation(recorder.beginInvocation({}), { drainMs: DRAIN_MS })
    if (i >= WARMUP) empty.drained.push(performance.now() - started)
    started = performance.now()
    await recorder.flush({ drainMs: 0 })
    if (i >= WARMUP) empty.undrained.push(performance.now() - started)
  }
  await recorder.stop()

  process.stdout.write(`${JSON.stringify({ sink, rows, roundTrips, flushes, empty, warnings })}\n`)
} finally {
  fs.rmSync(dir, { recursive: true, force: true })
}
process.exit(0)
