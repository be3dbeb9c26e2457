// Load: 1,000 wrapped invocations in a row (in a child process started with --expose-gc, so memory
// can be measured after full collections) and 50 concurrent ones in this process, each making a
// real aws-sdk v2 call to moto. Every call is recorded exactly once, attributed by the rule in
// src/lambda.rs, and memory stays flat.
//
// Attribution rule: a record belongs to the invocation that began most recently among those still
// running (or draining) when the datagram was received. In a row, that is always the call's own
// invocation. Concurrently, it is the call's own invocation or one that began after it.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { startMoto, FAKE_CREDENTIALS, sdkV2CsmEnv } from './helpers/moto.mjs'
import { freeUdpPort } from './helpers/ports.mjs'
import { lambdaContext, memoryLogger } from './helpers/lambda.mjs'
import { readJsonl } from './helpers/records.mjs'
import { leakScanner } from './helpers/leaks.mjs'

const require = createRequire(import.meta.url)
const here = path.dirname(fileURLToPath(import.meta.url))
const SEQUENTIAL = 1000
const MEASURE_AT = 100
const CONCURRENT = 50
let moto, dir, AWS, ApiCallRecorder
const leaks = leakScanner()

before(async () => {
  moto = await startMoto()
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-load-'))
  Object.assign(process.env, await sdkV2CsmEnv(dir))
  AWS = require('aws-sdk')
  ApiCallRecorder = require('../index.js')
})

after(async () => {
  await moto?.stop()
  leaks.assertClean()
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

/** The records of `file`, grouped: request id -> { calls, attempts }. */
function byInvocation(records) {
  const groups = new Map()
  for (const record of records) {
    const group = groups.get(record.awsRequestId) ?? { calls: [], attempts: [] }
    ;(record.Type === 'ApiCall' ? group.calls : group.attempts).push(record)
    groups.set(record.awsRequestId, group)
  }
  return groups
}

/** Runs load-child.cjs; returns its measurements. `baseline`: the same calls without the recorder. */
async function loadRun(file, { baseline = false } = {}) {
  const { stdout, stderr } = await promisify(execFile)(process.execPath, [
    '--expose-gc', path.join(here, 'fixtures', 'load-child.cjs'), file, String(SEQUENTIAL), String(MEASURE_AT),
  ], {
    env: { ...process.env, AWS_CSM_PORT: String(await freeUdpPort()), MOTO_ENDPOINT: moto.endpoint, LOAD_BASELINE: baseline ? '1' : '0' },
    timeout: 40_000,
    maxBuffer: 1 << 20,
  })
  leaks.add('load child stdout', stdout)
  leaks.add('load child stderr', stderr)
  const run = JSON.parse(stdout.trim().split('\n').at(-1))
  assert.ok(!run.error, run.error)
  return run
}

const mb = (n) => `${(n / 1048576).toFixed(1)} MiB`

test(`${SEQUENTIAL} invocations in a row: each call recorded once, on its own invocation; memory flat`, async (t) => {
  const file = path.join(dir, 'sequential.jsonl')
  const run = await loadRun(file)
  assert.deepEqual(run.warnings, [])

  leaks.addFile(file)
  const records = readJsonl(file)
  leaks.addRecords(file, records)
  assert.equal(records.length, 2 * SEQUENTIAL, 'one ApiCallAttempt and one ApiCall per invocation')
  const groups = byInvocation(records)
  assert.equal(groups.size, SEQUENTIAL)
  for (let i = 0; i < SEQUENTIAL; i++) {
    const group = groups.get(`seq-${i}`)
    assert.ok(group, `invocation ${i} has no records`)
    assert.equal(group.calls.length, 1, `invocation ${i}: ${group.calls.length} ApiCall records`)
    assert.equal(group.attempts.length, 1, `invocation ${i}: ${group.attempts.length} attempts`)
    assert.equal(group.calls[0].Api, 'GetCallerIdentity')
    assert.equal(group.calls[0].FinalHttpStatusCode, 200)
  }
  const requestIds = new Set(records.filter((r) => r.Type === 'ApiCallAttempt').map((r) => r.XAmznRequestId))
  assert.equal(requestIds.size, SEQUENTIAL, 'every HTTP request recorded once')

  // aws-sdk v2 on its own grows RSS by 26 to 40 MiB over this loop (the same loop, unwrapped, measured
  // on Node.js 24), so the recorder is judged by what it adds on top of that baseline: each side runs
  // twice and counts its smaller growth. The JS heap in use, below, is the precise check.
  const base = await loadRun(path.join(dir, 'baseline.jsonl'), { baseline: true })
  const again = await loadRun(path.join(dir, 'again.jsonl'))
  const baseAgain = await loadRun(path.join(dir, 'baseline-again.jsonl'), { baseline: true })
  const rssGrowth = (r) => r.rss[SEQUENTIAL] - r.rss[MEASURE_AT]
  const growth = Math.min(rssGrowth(run), rssGrowth(again))
  const baseGrowth = Math.min(rssGrowth(base), rssGrowth(baseAgain))
  const summary = `with the recorder RSS ${mb(run.rss[MEASURE_AT])} -> ${mb(run.rss[SEQUENTIAL])} ` +
    `(+${mb(rssGrowth(run))}, again +${mb(rssGrowth(again))}), without ${mb(base.rss[MEASURE_AT])} -> ${mb(base.rss[SEQUENTIAL])} ` +
    `(+${mb(rssGrowth(base))}, again +${mb(rssGrowth(baseAgain))}); ${SEQUENTIAL} invocations in ${run.ms} ms`
  t.diagnostic(summary)
  // 20 % of the RSS at the first measurement, above that run-to-run spread: a leak of 20 KiB per
  // invocation crosses it.
  assert.ok(growth - baseGrowth < 0.20 * run.rss[MEASURE_AT], `the recorder's own growth is over 20 %: ${summary}`)
  const heapGrowth = run.heap[SEQUENTIAL] - run.heap[MEASURE_AT]
  const baseHeapGrowth = base.heap[SEQUENTIAL] - base.heap[MEASURE_AT]
  assert.ok(heapGrowth - baseHeapGrowth < 0.10 * run.heap[MEASURE_AT],
    `JS heap ${mb(run.heap[MEASURE_AT])} -> ${mb(run.heap[SEQUENTIAL])}, without the recorder ${mb(base.heap[MEASURE_AT])} -> ${mb(base.heap[SEQUENTIAL])}`)
})

test(`${CONCURRENT} concurrent invocations: every call recorded once; known only by its arrival, it names its own invocation among those running`, async () => {
  const file = path.join(dir, 'concurrent.jsonl')
  const logger = memoryLogger()
  const handler = ApiCallRecorder(async (event) => {
    // customUserAgent marks each call, so its records can be told apart from the others'.
    const sts = new AWS.STS({ endpoint: moto.endpoint, region: 'us-west-2', customUserAgent: `inv-${event.i}` })
    await sts.getCallerIdentity().promise()
    return event.i
  }, { enabled: true, file, drainMs: 5, logger })
  const contexts = Array.from({ length: CONCURRENT }, () => lambdaContext({ functionName: 'concurrent' }))
  const results = await Promise.all(contexts.map((context, i) => handler({ i }, context)))
  assert.deepEqual(results, Array.from({ length: CONCURRENT }, (_, i) => i))
  assert.deepEqual(logger.warnings, [])

  const records = readJsonl(file)
  leaks.addRecords(file, records)
  assert.equal(records.length, 2 * CONCURRENT)
  for (let i = 0; i < CONCURRENT; i++) {
    const own = records.filter((r) => new RegExp(` inv-${i}( |$)`).test(r.UserAgent))
    assert.deepEqual(own.map((r) => r.Type).sort(), ['ApiCall', 'ApiCallAttempt'], `call ${i}`)
    for (const record of own) {
      assert.equal(record.phase, 'invoke')
      // aws-sdk v2 reports over CSM here: a datagram is attributed by its arrival, so while several
      // invocations run it names them all, its own among them, and claims none.
      const candidates = record.candidateRequestIds ?? [record.awsRequestId]
      assert.ok(record.awsRequestId === undefined || record.candidateRequestIds === undefined, JSON.stringify(record))
      assert.ok(candidates.includes(contexts[i].awsRequestId), `call ${i} does not name its invocation: ${JSON.stringify(record)}`)
    }
  }
})
