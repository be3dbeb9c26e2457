// Hostile traffic on the CSM port: whatever arrives, the recorder counts it, skips what is not a CSM
// event, keeps every valid call sent between the bad ones, and never keeps a session token.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { Recorder } from '../index.mjs'
import { sendDatagrams } from './helpers/ports.mjs'
import { memoryLogger } from './helpers/lambda.mjs'
import { FAKE_CREDENTIALS } from './helpers/moto.mjs'
import { leakScanner } from './helpers/leaks.mjs'
import { buildLoadGenerator } from '../bench/load/index.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.join(here, '..')
const corpusDir = path.join(root, 'tests', 'fixtures', 'csm-corpus')
/** The largest UDP payload over IPv4. */
const MAX_UDP_PAYLOAD = 65_507
const TOKEN = FAKE_CREDENTIALS.AWS_SESSION_TOKEN

const corpus = fs.readdirSync(corpusDir).filter((f) => f.endsWith('.jsonl'))
  .flatMap((f) => fs.readFileSync(path.join(corpusDir, f), 'utf8').split('\n').filter(Boolean))
  .map((line) => JSON.parse(line).datagram)

const recorders = []
const leaks = leakScanner()

function recorder(options = {}) {
  const logger = memoryLogger()
  const r = new Recorder({ port: 0, sink: 'none', logger, ...options })
  r.start()
  recorders.push({ r, logger })
  return { r, logger, port: Number(r.address.split(':').pop()) }
}

/** Sends in chunks and lets the receiver take in each chunk, so the kernel queue never overflows. */
async function send(r, port, payloads, chunk = 64) {
  for (let i = 0; i < payloads.length; i += chunk) {
    await sendDatagrams(port, payloads.slice(i, i + chunk))
    await r.flush({ drainMs: 0 })
  }
}

/** A valid call that is identifiable by its ClientId, carrying the fake session token. */
function validCall(id, type = 'ApiCallAttempt') {
  return JSON.stringify({
    Version: 1, ClientId: `valid-${id}`, Type: type, Service: 'DynamoDB', Api: 'GetItem',
    Timestamp: 1795357598165 + id, AttemptLatency: 3, HttpStatusCode: 200, Region: 'us-west-2',
    AccessKey: FAKE_CREDENTIALS.AWS_ACCESS_KEY_ID, SessionToken: TOKEN,
  })
}

function udpReceiveErrors() {
  try {
    const lines = fs.readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'))
    const [names, values] = lines.map((l) => l.split(/\s+/).slice(1))
    return Number(values[names.indexOf('RcvbufErrors')])
  } catch {
    return NaN
  }
}

let loadGenerator
before(() => { loadGenerator = buildLoadGenerator() })

after(async () => {
  for (const { r, logger } of recorders) {
    leaks.add('warnings', logger.warnings)
    leaks.add('stats', r.stats())
    await r.stop()
  }
  leaks.assertClean()
})

test('random bytes, empty and maximum-size datagrams are counted and skipped; valid calls between them are kept', async () => {
  const { r, port } = recorder()
  const payloads = []
  const junk = { malformed: 0, oversized: 0 }
  for (let i = 0; i < 300; i++) {
    if (i % 3 === 0) {
      payloads.push(validCall(i))
      continue
    }
    // Random bytes of random length. A leading '{' is excluded, so none can be a CSM event.
    const bytes = randomBytes(1 + Math.floor(Math.random() * 3000))
    if (bytes[0] === 0x7b) bytes[0] = 0x00
    payloads.push(bytes)
    junk.malformed++
  }
  payloads.push(Buffer.alloc(0))
  junk.malformed++
  for (const size of [8193, 9000, 32 * 1024, 65_000, MAX_UDP_PAYLOAD]) {
    payloads.push(randomBytes(size))
    // Valid JSON, padded past the limit: size alone rules it out.
    payloads.push(`{"Type":"ApiCall","Pad":"${'x'.repeat(size - 30)}"}`.padEnd(size, ' '))
    junk.oversized += 2
  }
  payloads.push(validCall(1000, 'ApiCall'))
  await send(r, port, payloads)

  const stats = r.stats()
  const valid = 100 + 1
  assert.deepEqual(
    { received: stats.received, parsed: stats.parsed, malformed: stats.malformed, oversized: stats.oversized, dropped: stats.dropped },
    { received: payloads.length, parsed: valid, malformed: junk.malformed, oversized: junk.oversized, dropped: 0 },
  )
  const records = r.records()
  assert.equal(records.length, valid)
  assert.deepEqual(records.map((rec) => rec.ClientId), [...Array.from({ length: 100 }, (_, k) => `valid-${k * 3}`), 'valid-1000'])
  assert.ok(records.every((rec) => !('SessionToken' in rec) && rec.AccessKey === FAKE_CREDENTIALS.AWS_ACCESS_KEY_ID))
  leaks.addRecords('random-bytes records', records)
})

test('deep nesting, huge strings, out-of-range numbers, duplicate keys and token spellings', async () => {
  const { r, port } = recorder()
  const deep = (n) => `{"Type":"ApiCall","ClientId":"deep-${n}","X":${'['.repeat(n)}${']'.repeat(n)}}`
  const cases = [
    // [datagram, outcome, check of the record when kept]
    [deep(4000), 'malformed'],
    [deep(200), 'malformed'],
    [deep(100), 'kept', (rec) => assert.equal(JSON.stringify(rec.X), '['.repeat(100) + ']'.repeat(100))],
    [`{"Type":"ApiCall","ClientId":"obj-deep","X":${'{"a":'.repeat(1000)}1${'}'.repeat(1000)}}`, 'malformed'],
    [`{"Type":"ApiCall","ClientId":"long","FinalAwsExceptionMessage":"${'ü'.repeat(4000)}"}`, 'kept',
      (rec) => assert.equal(rec.FinalAwsExceptionMessage, 'ü'.repeat(4000))],
    [`{"Type":"ApiCall","ClientId":"too-long","FinalAwsExceptionMessage":"${'a'.repeat(60_000)}"}`, 'oversized'],
    [`{"Type":"ApiCall","ClientId":"escapes","Api":"${'\\u00fc'.repeat(1300)}"}`, 'kept',
      (rec) => assert.equal(rec.Api, 'ü'.repeat(1300))],
    ['{"Type":"ApiCall","Latency":1e400}', 'malformed'],
    ['{"Type":"ApiCall","Latency":18446744073709551616}', 'malformed'],
    ['{"Type":"ApiCall","Latency":-9223372036854775809}', 'malformed'],
    ['{"Type":"ApiCall","Latency":1.5}', 'malformed'],
    ['{"Type":"ApiCall","Latency":-1}', 'kept', (rec) => assert.equal(rec.Latency, -1)],
    ['{"Type":"ApiCall","ClientId":"i64","Timestamp":9223372036854775807}', 'kept'],
    ['{"Type":"ApiCall","ClientId":"dup","Latency":1,"Latency":2,"Type":"ApiCallAttempt"}', 'kept',
      (rec) => { assert.equal(rec.Latency, 2); assert.equal(rec.Type, 'ApiCallAttempt') }],
    [`{"Type":"ApiCallAttempt","ClientId":"tokens","SessionToken":"${TOKEN}","Session\\u0054oken":"${TOKEN}","\\u0053essionToken":{"t":"${TOKEN}"},"SessionToken":"${TOKEN}"}`,
      'kept', (rec) => assert.equal(JSON.stringify(rec).includes(TOKEN), false)],
    ['{"Type":"ApiCall","ClientId":"nested","Custom":{"SessionToken":"kept: not the SDK field"}}', 'kept',
      (rec) => assert.deepEqual(rec.Custom, { SessionToken: 'kept: not the SDK field' })],
    ['{"Type":"ApiCall","Service":"S3","Service":42}', 'malformed'],
    // A lone surrogate (aws-sdk v2 can cut an emoji in half) is repaired to U+FFFD, not dropped.
    ['{"Type":"ApiCall","Api":"cut \\ud83d"}', 'kept', (rec) => assert.equal(rec.Api, 'cut \ufffd')],
    ['{"Type":"ApiCallAttempt","ClientId":"surrogate-key","SessionToken\\ud800":"x","SessionToken":"y"}', 'kept',
      (rec) => assert.deepEqual(Object.keys(rec).filter((k) => k.startsWith('Session')), ['SessionToken\ufffd'])],
    ['{"Type":null}', 'malformed'],
    ['{"Type":"ApiCall"}{"Type":"ApiCall"}', 'malformed'],
    ['{"Type":"ApiCall",}', 'malformed'],
    [Buffer.from('{"Type":"ApiCall","Api":"\xff"}', 'latin1'), 'malformed'],
    ['\ufeff{"Type":"ApiCall"}', 'malformed'],
    ['  {"Type":"ApiCall","ClientId":"spaces"}\n', 'kept'],
  ]
  await send(r, port, cases.map(([datagram]) => datagram), 8)
  const expected = { kept: 0, malformed: 0, oversized: 0 }
  for (const [, outcome] of cases) expected[outcome]++
  const stats = r.stats()
  assert.deepEqual(
    { received: stats.received, parsed: stats.parsed, malformed: stats.malformed, oversized: stats.oversized },
    { received: cases.length, parsed: expected.kept, malformed: expected.malformed, oversized: expected.oversized },
  )
  const records = r.records()
  assert.equal(records.length, expected.kept)
  const kept = cases.filter(([, outcome]) => outcome === 'kept')
  for (const [i, [datagram, , check]] of kept.entries()) {
    assert.ok(!('SessionToken' in records[i]), `record from ${String(datagram).slice(0, 60)}`)
    check?.(records[i])
  }
  leaks.addRecords('edge-case records', records)
})

test('a flood from another process is counted and skipped; the valid calls sent during it are all kept', async () => {
  const { r, port } = recorder()
  const rcvErrorsBefore = udpReceiveErrors()
  // Oversized datagrams (padded past 8 KiB) at 20,000/s from another process, bounded in count and time.
  const flood = promisify(execFile)(loadGenerator, ['--port', String(port), '--count', '4000', '--rate', '20000', '--pad-to', '9000', '--max-secs', '10'], { timeout: 20_000 })
  const ours = Array.from({ length: 200 }, (_, i) => validCall(i, i % 2 ? 'ApiCall' : 'ApiCallAttempt'))
  for (let i = 0; i < ours.length; i += 10) {
    await sendDatagrams(port, ours.slice(i, i + 10))
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
  const { stdout } = await flood
  const sent = Number(/sent=(\d+)/.exec(stdout)[1])
  assert.equal(sent, 4000, stdout)
  await r.flush({ drainMs: 50 })
  const stats = r.stats()
  const kernelDrops = udpReceiveErrors() - rcvErrorsBefore
  assert.deepEqual(
    { received: stats.received, parsed: stats.parsed, oversized: stats.oversized, malformed: stats.malformed },
    { received: sent + ours.length, parsed: ours.length, oversized: sent, malformed: 0 },
    `kernel receive-buffer drops during the flood: ${kernelDrops}`,
  )
  const records = r.records()
  assert.deepEqual(records.map((rec) => rec.ClientId).sort(), ours.map((d) => JSON.parse(d).ClientId).sort())
  leaks.addRecords('flood records', records)
})

test('a flood of valid calls past the buffer cap: the first ones kept, the rest dropped and counted', async () => {
  const { r, port } = recorder({ maxBufferedRecords: 1000 })
  const { stdout } = await promisify(execFile)(loadGenerator, ['--port', String(port), '--count', '3000', '--rate', '20000', '--max-secs', '10'], { timeout: 20_000 })
  const sent = Number(/sent=(\d+)/.exec(stdout)[1])
  await r.flush({ drainMs: 50 })
  const stats = r.stats()
  assert.deepEqual(
    { received: stats.received, parsed: stats.parsed, dropped: stats.dropped },
    { received: sent, parsed: sent, dropped: sent - 1000 },
  )
  const records = r.records()
  assert.equal(records.length, 1000)
  // The buffer keeps the oldest: csm-load's timestamps increase with the message number.
  const stamps = records.map((rec) => rec.Timestamp)
  assert.deepEqual(stamps, [...stamps].sort((a, b) => a - b))
  leaks.addRecords('capped flood records', records)
})

test('the real SDK datagrams of the corpus all parse, and none keeps its session token', async () => {
  const { r, port } = recorder()
  await send(r, port, corpus)
  const stats = r.stats()
  assert.deepEqual([stats.received, stats.parsed, stats.malformed + stats.oversized], [corpus.length, corpus.length, 0])
  const records = r.records()
  assert.equal(records.filter((rec) => 'SessionToken' in rec).length, 0)
  assert.ok(corpus.some((d) => d.includes('"SessionToken"')), 'the corpus carries tokens')
  const tokens = corpus.map((d) => JSON.parse(d).SessionToken).filter(Boolean)
  const text = JSON.stringify(records)
  assert.deepEqual([...new Set(tokens)].filter((token) => text.includes(token)), [])
})

test('one datagram with a number beyond double range does not cost the other records of a CSV flush', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'acr-hostile-')), 'calls.csv')
  try {
    const { r, port } = recorder({ file, sink: 'file' })
    await sendDatagrams(port, [validCall(1, 'ApiCall'), '{"Type":"ApiCall","Extra":1e400}', validCall(2, 'ApiCall')])
    const report = await r.flush({ drainMs: 20 })
    const stats = r.stats()
    // The parser refuses numbers beyond a double's range in any field, known or not (a record
    // could not be written as JSON or CSV with them): the odd datagram is malformed, the rest kept.
    assert.deepEqual([stats.received, stats.parsed, stats.malformed], [3, 2, 1])
    assert.deepEqual([report.records, report.delivered, report.failed], [2, 2, 0], report.error ?? '')
    const rows = fs.readFileSync(file, 'utf8').trim().split('\n')
    assert.equal(rows.length, 1 + 2)
    assert.ok(rows.some((row) => row.includes('valid-1')) && rows.some((row) => row.includes('valid-2')))
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true })
  }
})

test('binds to loopback by default; any other host is used only when asked, with a warning', async () => {
  const { r, logger } = recorder()
  assert.match(r.address, /^127\.0\.0\.1:\d+$/)
  assert.deepEqual(logger.warnings, [])

  const { r: wide, logger: wideLogger } = recorder({ host: '0.0.0.0' })
  assert.match(wide.address, /^0\.0\.0\.0:\d+$/)
  assert.equal(wideLogger.warnings.length, 1)
  assert.match(wideLogger.warnings[0], /^\[aws-api-call-recorder\] listening for CSM datagrams on 0\.0\.0\.0:\d+, which is not a loopback address/)
  await wide.stop()

  const saved = process.env.AWS_CSM_HOST
  process.env.AWS_CSM_HOST = '0.0.0.0'
  try {
    const { r: fromEnv, logger: envLogger } = recorder()
    assert.match(fromEnv.address, /^0\.0\.0\.0:/)
    assert.equal(envLogger.warnings.length, 1)
    await fromEnv.stop()
    const { r: explicit, logger: explicitLogger } = recorder({ host: '127.0.0.1' })
    assert.match(explicit.address, /^127\.0\.0\.1:/, 'the option wins over the environment')
    assert.deepEqual(explicitLogger.warnings, [])
  } finally {
    if (saved === undefined) delete process.env.AWS_CSM_HOST
    else process.env.AWS_CSM_HOST = saved
  }
})
