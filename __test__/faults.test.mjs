// Firehose faults through the whole wrapper: refused, throttled, failing some entries, too slow,
// killed mid-flush, and the CSM port taken. Whatever happens, the handler's result is unchanged,
// undelivered records are counted exactly (flush report, stats, the one warning), nothing hangs,
// and no credential shows up in any output. The Firehose side is a stand-in on loopback
// (helpers/firehose-standin.mjs); the happy path against moto is in firehose.test.mjs.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { ApiCallRecorder, Recorder } from '../index.mjs'
import { FAKE_CREDENTIALS } from './helpers/moto.mjs'
import { freeTcpPort, freeUdpPort, sendDatagrams } from './helpers/ports.mjs'
import { lambdaContext, memoryLogger } from './helpers/lambda.mjs'
import { startFirehoseStandIn } from './helpers/firehose-standin.mjs'
import { assertNoLeaks, leakScanner } from './helpers/leaks.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const CHILD = path.join(here, 'fixtures', 'flush-child.cjs')
const TOKEN = FAKE_CREDENTIALS.AWS_SESSION_TOKEN
const N = 40
/** Slack on top of a flush deadline before a test calls it a hang (2 cores, shared). */
const SLACK_MS = 1500

let standIn, dir
const leaks = leakScanner()
const children = new Set()

before(async () => {
  standIn = await startFirehoseStandIn()
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-faults-'))
  Object.assign(process.env, FAKE_CREDENTIALS, {
    AWS_ENDPOINT_URL_FIREHOSE: standIn.endpoint,
    AWS_CONFIG_FILE: path.join(dir, 'none'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'),
  })
  delete process.env.AWS_ENDPOINT_URL
})

after(async () => {
  for (const child of children) child.kill('SIGKILL')
  await standIn?.stop()
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
  leaks.addRecords('records the stand-in received', standIn.state.requests.flatMap((r) => r.records.map((t) => JSON.parse(t))))
  leaks.assertClean()
})

/** A CSM ApiCallAttempt as the SDKs send it, session token included; `poison` ones the stand-in refuses. */
function datagram(label, i, poison = false) {
  return JSON.stringify({
    Version: 1, Type: 'ApiCallAttempt', Service: 'DynamoDB', Api: poison ? 'Poison' : 'GetItem',
    ClientId: `${label}-${i}`, Timestamp: 1795357598165 + i, AttemptLatency: 4, HttpStatusCode: 200,
    Region: 'us-west-2', AccessKey: FAKE_CREDENTIALS.AWS_ACCESS_KEY_ID, SessionToken: TOKEN,
  })
}

/** Runs a wrapped handler that makes `count` calls; returns what the caller of the handler sees. */
async function throughWrapper(stream, { count = N, poison = 0, context, ...options } = {}) {
  const port = await freeUdpPort()
  const logger = memoryLogger()
  const result = { order: 17 }
  const handler = ApiCallRecorder(async () => {
    await sendDatagrams(port, Array.from({ length: count }, (_, i) => datagram(stream, i, i < poison)))
    return result
  }, { enabled: true, port, deliveryStreamName: stream, logger, drainMs: 5, ...options })
  const started = Date.now()
  // Without getRemainingTimeInMillis, as a script calls it: flushTimeoutMs alone bounds the flush.
  const returned = await handler({}, context ?? { awsRequestId: `${stream}-request` })
  const ms = Date.now() - started
  assert.equal(returned, result, 'the handler result is returned as is')
  leaks.add(`warnings (${stream})`, logger.warnings)
  return { warnings: logger.warnings, ms }
}

/** Flushes `count` records through a Recorder; returns the report and the stats. */
async function throughRecorder(stream, { count = N, poison = 0, ...options } = {}) {
  const logger = memoryLogger()
  const recorder = new Recorder({ port: 0, deliveryStreamName: stream, logger, ...options })
  for (let i = 0; i < count; i++) recorder.ingest(datagram(stream, i, i < poison))
  const started = Date.now()
  const report = await recorder.flush({ drainMs: 0 })
  const ms = Date.now() - started
  const stats = recorder.stats()
  leaks.add(`report (${stream})`, report)
  leaks.add(`stats (${stream})`, stats)
  leaks.add(`recorder warnings (${stream})`, logger.warnings)
  return { report, stats, ms }
}

/** Each record the stand-in acknowledged for `stream`, by ClientId: every one exactly once. */
function assertDeliveredOnce(stream, count, skip = 0) {
  const ids = standIn.accepted(stream).map((text) => JSON.parse(text).ClientId).sort()
  const expected = Array.from({ length: count - skip }, (_, i) => `${stream}-${i + skip}`).sort()
  assert.deepEqual(ids, expected)
}

const undelivered = (failed, total) => new RegExp(`^\\[aws-api-call-recorder\\] ${failed} of ${total} recorded calls were not delivered: firehose sink: Firehose delivery stream "`)

test('baseline: everything is delivered once, no warning', async () => {
  const wrapped = await throughWrapper('w.ok')
  assert.deepEqual(wrapped.warnings, [])
  assertDeliveredOnce('w.ok', N)
  const { report, stats } = await throughRecorder('r.ok')
  assert.deepEqual([report.records, report.delivered, report.failed, report.retried, report.error ?? null], [N, N, 0, 0, null])
  assert.deepEqual([stats.delivered, stats.failed], [N, 0])
  assertDeliveredOnce('r.ok', N)
})

test('throttled twice, then accepted: all delivered once, counted as retried, no warning', async () => {
  const wrapped = await throughWrapper('w.throttle-2')
  assert.deepEqual(wrapped.warnings, [])
  assertDeliveredOnce('w.throttle-2', N)
  const { report, stats } = await throughRecorder('r.throttle-2')
  assert.deepEqual([report.delivered, report.failed, report.retried, report.requests], [N, 0, N, 3])
  assert.equal(report.error ?? null, null, 'nothing failed, so no error')
  assert.deepEqual([stats.delivered, stats.failed, stats.retried], [N, 0, N])
  assertDeliveredOnce('r.throttle-2', N)
})

test('throttled until the deadline: every record counted failed, one warning, bounded time', async () => {
  const wrapped = await throughWrapper('w.throttle', { flushTimeoutMs: 800 })
  assert.equal(wrapped.warnings.length, 1)
  assert.match(wrapped.warnings[0], undelivered(N, N))
  assert.match(wrapped.warnings[0], /ThrottlingException: Rate exceeded/)
  assert.ok(wrapped.ms < 800 + SLACK_MS, `took ${wrapped.ms} ms`)
  const { report, stats, ms } = await throughRecorder('r.throttle', { flushTimeoutMs: 800 })
  assert.deepEqual([report.records, report.delivered, report.failed, report.retried], [N, 0, N, N])
  assert.deepEqual([stats.delivered, stats.failed], [0, N])
  assert.match(report.error, /ThrottlingException/)
  assert.ok(ms < 800 + SLACK_MS, `took ${ms} ms`)
  assert.equal(standIn.accepted('r.throttle').length, 0)
})

test('HTTP 503 ServiceUnavailable until the deadline: counted failed, one warning', async () => {
  const wrapped = await throughWrapper('w.unavailable', { flushTimeoutMs: 800 })
  assert.equal(wrapped.warnings.length, 1)
  assert.match(wrapped.warnings[0], undelivered(N, N))
  assert.match(wrapped.warnings[0], /ServiceUnavailableException/)
  const { report, stats } = await throughRecorder('r.unavailable', { flushTimeoutMs: 800 })
  assert.deepEqual([report.delivered, report.failed, stats.failed], [0, N, N])
})

test('partial failure: only the failed entries are resent, each record delivered exactly once', async () => {
  const wrapped = await throughWrapper('w.partial-1')
  assert.deepEqual(wrapped.warnings, [])
  assertDeliveredOnce('w.partial-1', N)
  const { report, stats } = await throughRecorder('r.partial-1')
  assert.deepEqual([report.delivered, report.failed, report.retried, report.requests], [N, 0, N / 2, 2])
  assert.equal(report.error ?? null, null, 'nothing failed, so no error')
  assert.deepEqual([stats.delivered, stats.failed, stats.retried], [N, 0, N / 2])
  assertDeliveredOnce('r.partial-1', N)
  const resent = standIn.state.requests.filter((r) => r.stream === 'r.partial-1')
  assert.deepEqual(resent.map((r) => r.records.length), [N, N / 2])
})

test('entries that keep failing: exactly those are counted, the rest delivered once', async () => {
  const poison = 7
  const wrapped = await throughWrapper('w.poison', { poison, flushTimeoutMs: 800 })
  assert.equal(wrapped.warnings.length, 1)
  assert.match(wrapped.warnings[0], undelivered(poison, N))
  assertDeliveredOnce('w.poison', N, poison)
  const { report, stats } = await throughRecorder('r.poison', { poison, flushTimeoutMs: 800 })
  assert.deepEqual([report.records, report.delivered, report.failed], [N, N - poison, poison])
  assert.deepEqual([stats.delivered, stats.failed], [N - poison, poison])
  assertDeliveredOnce('r.poison', N, poison)
})

test('a Firehose slower than the deadline: the flush ends at the deadline, all counted failed', async () => {
  const wrapped = await throughWrapper('w.slow-4000', { flushTimeoutMs: 1000 })
  assert.equal(wrapped.warnings.length, 1)
  assert.match(wrapped.warnings[0], undelivered(N, N))
  assert.ok(wrapped.ms >= 1000 && wrapped.ms < 1000 + SLACK_MS, `took ${wrapped.ms} ms`)
  // In Lambda the invocation's own deadline bounds the flush too, 300 ms before it.
  const context = lambdaContext({ timeoutMs: 1500 })
  const inLambda = await throughWrapper('l.slow-4000', { context })
  assert.equal(inLambda.warnings.length, 1)
  assert.match(inLambda.warnings[0], undelivered(N, N))
  assert.ok(inLambda.ms < 1500, `the handler returned ${inLambda.ms} ms after it was called, past its deadline`)
  const { report, stats, ms } = await throughRecorder('r.slow-4000', { flushTimeoutMs: 1000 })
  assert.deepEqual([report.delivered, report.failed, stats.failed], [0, N, N])
  assert.ok(ms < 1000 + SLACK_MS, `took ${ms} ms`)
})

test('flushTimeoutMs bounds the flush in Lambda too, when the invocation has more time left', async () => {
  // The documented rule: the flush ends at flushTimeoutMs, or 300 ms before the deadline if sooner.
  const context = lambdaContext({ timeoutMs: 30_000 })
  const wrapped = await throughWrapper('c.slow-4000', { flushTimeoutMs: 800, context })
  assert.equal(wrapped.warnings.length, 1, `delivered after ${wrapped.ms} ms instead of giving up at 800 ms`)
  assert.match(wrapped.warnings[0], undelivered(N, N))
  assert.ok(wrapped.ms < 800 + SLACK_MS, `took ${wrapped.ms} ms`)
})

/** Runs flush-child.cjs; resolves with its JSON lines, exit code and signal, and raw output. */
function runChild(settings, env, { onLine } = {}) {
  const child = spawn(process.execPath, [CHILD, JSON.stringify(settings)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.add(child)
  let stdout = ''
  let stderr = ''
  const lines = []
  child.stdout.on('data', (chunk) => {
    stdout += chunk
    let newline
    while ((newline = stdout.indexOf('\n', lines.consumed ?? 0)) !== -1) {
      const line = JSON.parse(stdout.slice(lines.consumed ?? 0, newline))
      lines.consumed = newline + 1
      lines.push(line)
      onLine?.(line, child)
    }
  })
  child.stderr.on('data', (chunk) => { stderr += chunk })
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  return new Promise((resolve) => child.once('close', (code, signal) => {
    clearTimeout(timer)
    children.delete(child)
    leaks.add(`child stdout (${settings.stream})`, stdout)
    leaks.add(`child stderr (${settings.stream})`, stderr)
    resolve({ lines, code, signal, stdout, stderr })
  }))
}

test('Firehose refusing connections: bounded retries, every record counted, the result unchanged', async () => {
  const closed = await freeTcpPort()
  const env = { AWS_ENDPOINT_URL_FIREHOSE: `http://127.0.0.1:${closed}` }
  const wrapper = await runChild({ mode: 'wrapper', port: await freeUdpPort(), stream: 'refused', records: N, flushTimeoutMs: 800 }, env)
  assert.equal(wrapper.code, 0, wrapper.stderr)
  const warnings = wrapper.lines.filter((l) => l.warn).map((l) => l.warn)
  assert.equal(warnings.length, 1, wrapper.stdout)
  assert.match(warnings[0], undelivered(N, N))
  assert.match(warnings[0], /cannot reach Firehose/)
  const result = wrapper.lines.find((l) => l.result)
  assert.deepEqual([result.result, result.same], [{ unchanged: true }, true])
  assert.ok(result.ms < 800 + SLACK_MS, `took ${result.ms} ms`)

  const flush = await runChild({ mode: 'flush', stream: 'refused', records: N, flushTimeoutMs: 800 }, env)
  assert.equal(flush.code, 0, flush.stderr)
  const { report, stats } = flush.lines.find((l) => l.report)
  assert.deepEqual([report.records, report.delivered, report.failed], [N, 0, N])
  assert.ok(report.retried === N && report.requests >= 2, JSON.stringify(report))
  assert.deepEqual([stats.delivered, stats.failed], [0, N])
})

test('a recorder killed mid-flush: Firehose never sees a partial or garbled record', async () => {
  const stream = 'killed.hold'
  const records = 5000
  const killedAt = { ms: 0 }
  const started = Date.now()
  const run = runChild({ mode: 'flush', stream, records, flushTimeoutMs: 15_000 }, {})
  // Kill the process as soon as its first batch has reached the stand-in, with the others in flight.
  await standIn.until((s) => s.requests.some((r) => r.stream === stream))
  const child = [...children].at(-1)
  child.kill('SIGKILL')
  killedAt.ms = Date.now() - started
  const { signal, lines } = await run
  assert.equal(signal, 'SIGKILL')
  assert.ok(lines.some((l) => l.flushing === records) && !lines.some((l) => l.report), 'killed during the flush')
  // Let the stand-in see the connections close.
  await new Promise((resolve) => setTimeout(resolve, 200))
  const seen = standIn.state.requests.filter((r) => r.stream === stream || (!r.complete && r.headers['x-amz-target']))
  assert.ok(seen.length >= 1)
  assert.deepEqual(standIn.state.garbled, [], 'every record in every complete request is one JSON object and a newline')
  for (const request of seen.filter((r) => r.complete)) {
    assert.ok(request.records.length > 0 && request.records.length <= 500)
    for (const text of request.records) assert.equal(JSON.parse(text).Api, 'GetItem')
  }
  for (const request of seen.filter((r) => !r.complete)) {
    assert.ok(request.received < request.expected, 'a cut-off body is detectable by its Content-Length')
  }
  assert.equal(standIn.accepted(stream).length, 0, 'nothing was acknowledged')
})

test('Firehose going away mid-flush: the recorder counts every record once, as failed, by its deadline', async () => {
  // A second stand-in that holds every request, then shuts down with the batches in flight.
  const doomed = await startFirehoseStandIn()
  const endpoint = process.env.AWS_ENDPOINT_URL_FIREHOSE
  process.env.AWS_ENDPOINT_URL_FIREHOSE = doomed.endpoint
  const records = 2000
  try {
    const recorder = new Recorder({ port: 0, deliveryStreamName: 'gone.hold', logger: memoryLogger(), flushTimeoutMs: 2000 })
    for (let i = 0; i < records; i++) recorder.ingest(datagram('gone', i))
    const started = Date.now()
    const flushing = recorder.flush({ drainMs: 0 })
    await doomed.until((s) => s.requests.length > 0)
    await doomed.stop()
    const report = await flushing
    const ms = Date.now() - started
    const stats = recorder.stats()
    assert.deepEqual([report.records, report.delivered, report.failed], [records, 0, records], report.error ?? '')
    assert.deepEqual([stats.delivered, stats.failed], [0, records])
    assert.ok(report.requests >= 4, `${report.requests} requests`)
    assert.ok(ms < 2000 + SLACK_MS, `the flush took ${ms} ms`)
    assert.match(report.error, /firehose sink/)
    leaks.add('report (gone)', report)
  } finally {
    process.env.AWS_ENDPOINT_URL_FIREHOSE = endpoint
  }
})

test('the CSM port taken by another process: one warning, the handler itself runs, nothing thrown', async () => {
  const holder = spawn(process.execPath, ['-e', `
    const s = require('node:dgram').createSocket('udp4')
    s.bind(0, '127.0.0.1', () => console.log(s.address().port))
    setTimeout(() => process.exit(0), 30000)`], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.add(holder)
  try {
    const port = await new Promise((resolve, reject) => {
      holder.stdout.once('data', (chunk) => resolve(Number(String(chunk).trim())))
      holder.once('exit', () => reject(new Error('port holder exited')))
    })
    const logger = memoryLogger()
    const handler = async () => ({ fine: true })
    const wrapped = ApiCallRecorder(handler, { enabled: true, port, deliveryStreamName: 'w.ok', logger })
    assert.equal(wrapped, handler)
    assert.deepEqual(await wrapped({}, lambdaContext()), { fine: true })
    assert.equal(logger.warnings.length, 1)
    assert.match(logger.warnings[0], /ERR_RECORDER_PORT_IN_USE/)
    leaks.add('port-taken warning', logger.warnings)

    const recorder = new Recorder({ port, sink: 'none' })
    assert.throws(() => recorder.start(), (error) => {
      assert.equal(error.code, 'ERR_RECORDER_PORT_IN_USE')
      assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}`))
      leaks.add('port-taken error', error)
      return true
    })
  } finally {
    holder.kill('SIGKILL')
    children.delete(holder)
  }
})

test('an error message that echoes the signed request does not reach the logs', async () => {
  // AWS JSON services answer a signature mismatch with the canonical request they expected, which
  // lists the signed headers with their values, x-amz-security-token among them.
  const wrapped = await throughWrapperUnscanned('w.bad-signature')
  assert.equal(wrapped.warnings.length, 1)
  assert.match(wrapped.warnings[0], undelivered(N, N))
  assert.match(wrapped.warnings[0], /InvalidSignatureException/)
  assertNoLeaks(wrapped.warnings, 'the undelivered-records warning')
  const logger = memoryLogger()
  const recorder = new Recorder({ port: 0, deliveryStreamName: 'r.bad-signature', logger })
  recorder.ingest(datagram('r.bad-signature', 0))
  const report = await recorder.flush({ drainMs: 0 })
  assert.deepEqual([report.delivered, report.failed, report.retried], [0, 1, 0])
  assertNoLeaks(report, 'the flush report')
})

/** Like throughWrapper, for a test that checks its own output for leaks. */
async function throughWrapperUnscanned(stream) {
  const port = await freeUdpPort()
  const logger = memoryLogger()
  const handler = ApiCallRecorder(async () => {
    await sendDatagrams(port, Array.from({ length: N }, (_, i) => datagram(stream, i)))
    return 'same'
  }, { enabled: true, port, deliveryStreamName: stream, logger, drainMs: 5, flushTimeoutMs: 2000 })
  assert.equal(await handler({}, lambdaContext()), 'same')
  return { warnings: logger.warnings }
}
