// The native stream behind `listen` and `run` against the JavaScript that reads recordings back
// (`summary`, `policy`): the same events give the same summary and the same failures, whichever
// side looks at them.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { Recorder, internalsOf } = require('../recorder.js')
const { readRecordings, isErrorRecord } = require('../cli/records.js')
const { summarize } = require('../cli/summary.js')

/** The captured datagrams of real SDKs, then events that probe the rules' edges. */
function events() {
  const corpus = ['botocore.jsonl', 'aws-sdk-js-v2.jsonl'].flatMap((name) =>
    fs.readFileSync(path.join(ROOT, 'tests', 'fixtures', 'csm-corpus', name), 'utf8')
      .split('\n').filter(Boolean).map((line) => JSON.parse(line).datagram))
  const edges = [
    { Type: 'ApiCall', Service: 's3', Api: 'GetObject', FinalHttpStatusCode: 200, Latency: 1 },
    { Type: 'ApiCall', Service: 'S3', Api: 'getObject', FinalHttpStatusCode: 399, FinalAwsException: '', Latency: 2 },
    { Type: 'ApiCall', Service: 'Äpfel', Api: 'Zählen', FinalSdkException: 'ECONNREFUSED', AttemptCount: 3, MaxRetriesExceeded: 1 },
    { Type: 'ApiCall', Service: 'DynamoDB', Api: 'Query', MaxRetriesExceeded: 1, AttemptCount: 4, Latency: 900 },
    { Type: 'ApiCall', Api: 'NoService', FinalHttpStatusCode: 500 },
    { Type: 'ApiCallAttempt', Service: 'S3', Api: 'GetObject', SdkException: 'TimeoutError' },
    { Type: 'ApiCallAttempt', Service: 'S3', Api: 'GetObject', HttpStatusCode: 200, AwsException: '' },
    { Type: 'SomethingNewer', Service: 'S3', FinalHttpStatusCode: 500 },
  ].map((event) => JSON.stringify(event))
  return [...corpus, ...edges]
}

async function streamed(options) {
  const recorder = new Recorder({ sink: 'none', port: 0 })
  const stream = internalsOf(recorder).native.stream(options)
  for (const event of events()) recorder.ingest(event)
  const report = await stream.finish()
  return { report, summary: JSON.parse(report.summaryJson) }
}

test('the native summary is the one summary prints for the same events', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-agree-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  for (const format of ['jsonl', 'csv']) {
    const output = path.join(dir, `all.${format}`)
    const { report, summary } = await streamed({ format, output })
    const records = readRecordings([output], assert.fail)
    assert.equal(report.written, events().length)
    assert.equal(records.length, events().length)
    assert.deepEqual(summary, summarize(records), format)
  }
  // The edges are in it: order by code point, a service-less call, an exhausted retry.
  const { summary } = await streamed({ format: 'jsonl' })
  const names = summary.byApi.map((entry) => `${entry.service} ${entry.api}`)
  assert.ok(names.indexOf('S3 getObject') < names.indexOf('s3 GetObject'))
  assert.ok(names.includes('? NoService') && names.at(-1) === 'Äpfel Zählen', names.join(', '))
  assert.ok(summary.errorKinds.some((kind) => kind.error === 'no response ECONNREFUSED'))
})

test('--only-errors keeps exactly the records the readers call errors', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-errors-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const all = path.join(dir, 'all.jsonl')
  const errors = path.join(dir, 'errors.jsonl')
  await streamed({ format: 'jsonl', output: all })
  const { report } = await streamed({ format: 'jsonl', output: errors, onlyErrors: true })
  const strip = ({ recordedAt, ...record }) => record
  const expected = readRecordings([all], assert.fail).filter(isErrorRecord).map(strip)
  assert.ok(expected.length >= 8, `the corpus and the edges hold failures (${expected.length})`)
  assert.deepEqual(readRecordings([errors], assert.fail).map(strip), expected)
  assert.equal(report.written, expected.length)
})

test('an output that cannot be opened is ERR_RECORDER_OUTPUT, and the recorder streams elsewhere after', async () => {
  const recorder = new Recorder({ sink: 'none', port: 0 })
  const native = internalsOf(recorder).native
  assert.throws(() => native.stream({ format: 'jsonl', output: path.join(os.tmpdir(), 'no-such-dir', 'x', 'calls.jsonl') }),
    (error) => error.code === 'ERR_RECORDER_OUTPUT' && /cannot write records to .*calls\.jsonl/.test(error.message))
  assert.throws(() => native.stream({ format: 'xml' }), (error) => error.code === 'ERR_RECORDER_CONFIG' && /xml/.test(error.message))
  const stream = native.stream({ format: 'table' })
  assert.throws(() => native.stream({ format: 'table' }), { code: 'ERR_RECORDER_CONFIG' })
  const report = await stream.finish()
  assert.equal(report.written, 0)
  assert.equal(await stream.finish(), null)
})
