// CSV written by the native file sink and read back by the command line's reader: fields with
// double quotes, commas, line breaks and non-ASCII text come back as they were sent.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { Recorder } from '../index.mjs'

const require = createRequire(import.meta.url)
const { readRecordings, parseCsv } = require('../cli/records.js')

let dir
before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-csv-')) })
after(() => fs.rmSync(dir, { recursive: true, force: true }))

const MESSAGES = [
  'Bucket "b" not found',
  '"quoted at both ends"',
  'a "" pair, a comma, and\na line break',
  'carriage\r\nreturn',
  'ünïcödé — 日本語 🪣',
  '',
]

test('a field with double quotes (and commas, line breaks, unicode) is written and read back unchanged', async () => {
  const file = path.join(dir, 'calls.csv')
  const recorder = new Recorder({ sink: 'file', file })
  for (const [i, message] of MESSAGES.entries()) {
    recorder.ingest(JSON.stringify({
      Type: 'ApiCall', Service: 'S3', Api: 'HeadBucket', AttemptCount: 1, Latency: 10 + i,
      FinalHttpStatusCode: 404, FinalAwsException: 'NoSuchBucket', FinalAwsExceptionMessage: message,
    }))
  }
  const report = await recorder.flush({ drainMs: 0 })
  assert.equal(report.delivered, MESSAGES.length)
  const text = fs.readFileSync(file, 'utf8')
  // Written as RFC 4180 says: the field quoted, each quote doubled.
  assert.ok(text.includes('"Bucket ""b"" not found"'), text)
  const records = readRecordings([file], (message) => assert.fail(message))
  assert.deepEqual(records.map((r) => r.FinalAwsExceptionMessage ?? ''), MESSAGES)
  assert.deepEqual(records.map((r) => r.Latency), MESSAGES.map((_, i) => 10 + i))
  assert.ok(records.every((r) => r.FinalHttpStatusCode === 404 && r.Type === 'ApiCall'))
})

test('the reader takes RFC 4180 quoting as the writer makes it', () => {
  assert.deepEqual(parseCsv('a,"b ""c""",d\r\n"e\nf",,""\n'), [['a', 'b "c"', 'd'], ['e\nf', '', '']])
})
