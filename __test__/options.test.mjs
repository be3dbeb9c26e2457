// Options and environment variables as a user meets them: one boolean grammar for every variable,
// read alike by the JavaScript and the native side; a value outside it warns and falls back under
// ApiCallRecorder and fails `new Recorder`; the port 0 of an option and of AWS_CSM_PORT; the
// per-path counts; and losses reported once through the logger.
import { test, before, after, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import ApiCallRecorder, { Recorder } from '../index.mjs'
import { freeUdpPort, sendDatagrams } from './helpers/ports.mjs'
import { lambdaContext, memoryLogger } from './helpers/lambda.mjs'
import { readJsonl } from './helpers/records.mjs'

const require = createRequire(import.meta.url)
const { parseFlag, OPTIONS } = require('../options.js')

const ATTEMPT = JSON.stringify({ Type: 'ApiCallAttempt', Service: 'S3', Api: 'GetObject', AccessKey: 'AKIAEXAMPLE', SessionToken: 'live-token', HttpStatusCode: 200 })
const CALL = JSON.stringify({ Type: 'ApiCall', Service: 'S3', Api: 'GetObject', AttemptCount: 1, FinalHttpStatusCode: 200 })
const TRUE_WORDS = ['true', '1', 'yes', 'on', 'TRUE', ' On ', 'Yes']
const FALSE_WORDS = ['false', '0', 'no', 'off', 'FALSE', ' oFF ', 'No']
const NOT_BOOLEAN = ['maybe', 'enabled', '2', 'tru', 'ja', 'нет', '✓']

let dir
before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-options-')) })
after(() => fs.rmSync(dir, { recursive: true, force: true }))

const saved = new Map()
function setEnv(name, value) {
  if (!saved.has(name)) saved.set(name, process.env[name])
  if (value === undefined) delete process.env[name]
  else process.env[name] = value
}
afterEach(() => {
  for (const [name, value] of saved) {
    if (value === undefined) delete process.env[name]
    else process.env[name] = value
  }
  saved.clear()
})

/** Whether a Recorder made now keeps `AccessKey` in its records (API_CALL_RECORDER_DROP_ACCESS_KEY). */
function keepsAccessKey() {
  const recorder = new Recorder({ sink: 'none' })
  recorder.ingest(ATTEMPT)
  const [record] = recorder.takeRecords()
  assert.equal(record.SessionToken, undefined)
  return record.AccessKey === 'AKIAEXAMPLE'
}

test('the JavaScript and the native side read every word of the boolean grammar alike', () => {
  for (const word of TRUE_WORDS) {
    assert.equal(parseFlag(word), true, word)
    setEnv('API_CALL_RECORDER_DROP_ACCESS_KEY', word)
    assert.equal(keepsAccessKey(), false, `DROP_ACCESS_KEY=${JSON.stringify(word)}`)
  }
  for (const word of FALSE_WORDS) {
    assert.equal(parseFlag(word), false, word)
    setEnv('API_CALL_RECORDER_DROP_ACCESS_KEY', word)
    assert.equal(keepsAccessKey(), true, `DROP_ACCESS_KEY=${JSON.stringify(word)}`)
  }
  for (const word of NOT_BOOLEAN) {
    assert.equal(parseFlag(word), undefined, word)
    setEnv('API_CALL_RECORDER_DROP_ACCESS_KEY', word)
    assert.throws(() => new Recorder({ sink: 'none' }), (error) => error.code === 'ERR_RECORDER_CONFIG' &&
      error.message.includes('API_CALL_RECORDER_DROP_ACCESS_KEY') && error.message.includes(JSON.stringify(word)))
  }
})

test('under ApiCallRecorder, a variable outside the grammar warns once, naming it and its value, and takes the default', async () => {
  const variables = [
    ...Object.values(OPTIONS).map((spec) => spec.env).filter(Boolean),
    'API_CALL_RECORDER_DROP_ACCESS_KEY',
    'AWS_CSM_ENABLED',
  ]
  assert.deepEqual(variables.sort(), ['API_CALL_RECORDER_AFTER_RESPONSE', 'API_CALL_RECORDER_DROP_ACCESS_KEY',
    'API_CALL_RECORDER_IS_ACTIVATED', 'API_CALL_RECORDER_RESOURCES', 'AWS_CSM_ENABLED'])
  for (const variable of variables) {
    setEnv(variable, 'maybe')
    const logger = memoryLogger()
    const port = await freeUdpPort()
    const handler = async () => 'ok'
    // `enabled` given, except when the variable under test is the one that stands for it.
    const enabled = variable === 'API_CALL_RECORDER_IS_ACTIVATED' ? {} : { enabled: true }
    setEnv('NODE_ENV', undefined)
    const wrapped = ApiCallRecorder(handler, { ...enabled, port, sink: 'none', logger })
    assert.equal(await wrapped({}, lambdaContext()), 'ok')
    const about = logger.warnings.filter((w) => w.includes(`${variable}="maybe"`))
    assert.equal(about.length, 1, `${variable}: ${JSON.stringify(logger.warnings)}`)
    assert.match(about[0], /is not a boolean \(expected true\/false, 1\/0, yes\/no or on\/off\); using the default, (true|false)$/)
    assert.equal(logger.warnings.length, 1, `${variable}: nothing else is reported: ${JSON.stringify(logger.warnings)}`)
    // Off by default: the handler itself comes back, nothing is bound.
    if (variable === 'API_CALL_RECORDER_IS_ACTIVATED') assert.equal(wrapped, handler)
    else assert.notEqual(wrapped, handler)
    setEnv(variable, undefined)
  }
})

test('API_CALL_RECORDER_DROP_ACCESS_KEY outside the grammar keeps recording under ApiCallRecorder, with the access key (the default)', async () => {
  setEnv('API_CALL_RECORDER_DROP_ACCESS_KEY', 'sometimes')
  const port = await freeUdpPort()
  const file = path.join(dir, `drop-${port}.jsonl`)
  const logger = memoryLogger()
  const wrapped = ApiCallRecorder(async () => {
    await sendDatagrams(port, [ATTEMPT, CALL])
  }, { enabled: true, port, file, logger, sdkV3: false })
  await wrapped({}, lambdaContext())
  const records = readJsonl(file)
  assert.equal(records.length, 2)
  assert.equal(records[0].AccessKey, 'AKIAEXAMPLE')
  assert.equal(records[0].SessionToken, undefined)
  assert.equal(logger.warnings.length, 1)
  assert.match(logger.warnings[0], /API_CALL_RECORDER_DROP_ACCESS_KEY="sometimes" is not a boolean/)
})

test('port 0 as an option picks a free port; AWS_CSM_PORT=0 means 31000, as the SDKs read it', () => {
  setEnv('AWS_CSM_PORT', '0')
  assert.equal(new Recorder({ sink: 'none' }).bindAddress, '127.0.0.1:31000')
  const recorder = new Recorder({ sink: 'none', port: 0 })
  assert.equal(recorder.bindAddress, '127.0.0.1:0')
  const address = recorder.start()
  assert.match(address, /^127\.0\.0\.1:\d+$/)
  assert.notEqual(address, '127.0.0.1:0')
  assert.notEqual(address, '127.0.0.1:31000')
  return recorder.stop()
})

test('formats are jsonl and csv only', () => {
  for (const format of ['json', 'ndjson', 'table']) {
    assert.throws(() => new Recorder({ sink: 'stdout', format }), (error) => error.code === 'ERR_RECORDER_CONFIG' && error.message.includes(format))
  }
  assert.equal(new Recorder({ sink: 'stdout', format: 'JSONL' }).sink, 'stdout')
  assert.equal(new Recorder({ sink: 'stdout', format: 'csv' }).sink, 'stdout')
})

test('stats().paths are counted natively, where each event is taken in', async () => {
  const port = await freeUdpPort()
  const recorder = new Recorder({ sink: 'none', port })
  recorder.start()
  recorder.ingest(ATTEMPT, 'plugin')
  recorder.ingest(CALL, 'plugin')
  recorder.ingest(CALL, 'plugin')
  recorder.ingest(ATTEMPT, 'http')
  recorder.ingest(CALL, 'http')
  recorder.ingest(CALL)
  recorder.ingest(ATTEMPT, 'sdk-v2')
  recorder.ingest(CALL, 'sdk-v2')
  await sendDatagrams(port, [ATTEMPT, CALL, 'not json'])
  await recorder.flush({ drainMs: 50 })
  const { paths, received, calls, malformed } = recorder.stats()
  assert.deepEqual(paths, {
    csm: { calls: 2, attempts: 1, datagrams: 4 },
    plugin: { calls: 2, attempts: 1 },
    http: { calls: 1, attempts: 1 },
    sdkV2: { calls: 1, attempts: 1 },
    proxy: { calls: 0, attempts: 0 },
  })
  assert.equal(received, 11)
  assert.equal(calls, 6)
  assert.equal(malformed, 1)
  assert.throws(() => recorder.ingest(CALL, 'carrier-pigeon'), /unknown recording path "carrier-pigeon"/)
  await recorder.stop()
})

test('a plain Recorder reports malformed and oversized traffic once through its logger, at flush or stop', async () => {
  const port = await freeUdpPort()
  const logger = memoryLogger()
  const recorder = new Recorder({ sink: 'none', port, logger })
  recorder.start()
  await sendDatagrams(port, ['not json', CALL])
  await recorder.flush({ drainMs: 50 })
  assert.equal(logger.warnings.length, 1, JSON.stringify(logger.warnings))
  assert.match(logger.warnings[0], /1 datagrams were not CSM events and were skipped \(1 malformed, 0 over 8 KiB in total\)/)
  await recorder.flush({ drainMs: 10 })
  assert.equal(logger.warnings.length, 1, 'reported once')
  await sendDatagrams(port, [JSON.stringify({ Type: 'ApiCall', Api: 'x'.repeat(9000) })])
  await new Promise((resolve) => setTimeout(resolve, 50))
  await recorder.stop()
  assert.equal(logger.warnings.length, 2, JSON.stringify(logger.warnings))
  assert.match(logger.warnings[1], /1 datagrams were not CSM events and were skipped \(1 malformed, 1 over 8 KiB in total\)/)
})

test('initPhase given to ApiCallRecorder is kept; by default calls before the first invocation are init', async () => {
  for (const initPhase of [false, true, undefined]) {
    const port = await freeUdpPort()
    const file = path.join(dir, `init-${port}.jsonl`)
    const wrapped = ApiCallRecorder(async () => {
      await sendDatagrams(port, [CALL])
    }, { enabled: true, port, file, initPhase, logger: memoryLogger(), sdkV3: false })
    await sendDatagrams(port, [CALL])
    await new Promise((resolve) => setTimeout(resolve, 30))
    await wrapped({}, lambdaContext())
    const phases = readJsonl(file).map((record) => record.phase)
    assert.deepEqual(phases, [initPhase === false ? undefined : 'init', 'invoke'], `initPhase: ${initPhase}`)
  }
})
