// `summary`, `policy` and `report` read recordings and need no native code: they run where the addon cannot
// load (another platform, no build), and the CSV columns they read are the native writer's.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import zlib from 'node:zlib'

const require = createRequire(import.meta.url)
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const CLI = path.join(ROOT, 'cli', 'index.js')
const COLUMNS = require('../data/csv-columns.json').columns

// Preloaded into the CLI: loading any native addon, or the loader that finds it, throws.
const NO_ADDON = `
const Module = require('node:module')
Module._extensions['.node'] = (module, filename) => { throw new Error('a native addon was loaded: ' + filename) }
const load = Module._load
Module._load = function (request, parent) {
  if (Module._resolveFilename(request, parent).endsWith('binding.js')) throw new Error('binding.js was loaded')
  return load.apply(this, arguments)
}
`

let dir
let hook

/** Runs the CLI with the addon out of reach; the outcome and its output. */
function cliWithoutAddon(args) {
  const outcome = spawnSync(process.execPath, ['--require', hook, CLI, ...args], { encoding: 'utf8', timeout: 20_000 })
  return { code: outcome.status, stdout: outcome.stdout, stderr: outcome.stderr }
}

const csvCell = (value) => (/[",\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value)

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-no-addon-'))
  hook = path.join(dir, 'no-addon.cjs')
  fs.writeFileSync(hook, NO_ADDON)
})

after(() => fs.rmSync(dir, { recursive: true, force: true }))

test('the hook stops the addon from loading (so the tests below would see it)', () => {
  const outcome = spawnSync(process.execPath, ['--require', hook, '-e', `require(${JSON.stringify(path.join(ROOT, 'binding.js'))})`], { encoding: 'utf8' })
  assert.notEqual(outcome.status, 0)
  assert.match(outcome.stderr, /binding\.js was loaded/)
})

test('policy runs without the addon: JSON Lines in, statements out, every "*" explained', () => {
  const file = path.join(dir, 'calls.jsonl')
  const record = (Api, Resources) => JSON.stringify({ Type: 'ApiCall', Service: 'DynamoDB', Api, Region: 'us-west-2', AttemptCount: 1, ...(Resources ? { Resources } : {}) })
  fs.writeFileSync(file, [
    record('GetItem', { 'dynamodb:GetItem': ['arn:aws:dynamodb:us-west-2:111122223333:table/orders'] }),
    record('GetItem'),
  ].join('\n'))
  const outcome = cliWithoutAddon(['policy', file])
  assert.equal(outcome.code, 0, outcome.stderr)
  assert.deepEqual(JSON.parse(outcome.stdout).Statement.map(({ Action, Resource }) => ({ Action, Resource })),
    [{ Action: ['dynamodb:GetItem'], Resource: '*' }])
  assert.match(outcome.stderr, /Resource "\*" kept for dynamodb:GetItem although other calls named arn:aws:dynamodb:us-west-2:111122223333:table\/orders/)
})

test('summary runs without the addon, and reads CSV numbers back as numbers', () => {
  const file = path.join(dir, 'calls.csv')
  const row = (values) => COLUMNS.map(({ name }) => csvCell(String(values[name] ?? ''))).join(',')
  const call = (Latency, FinalHttpStatusCode) => row({ Type: 'ApiCall', Service: 'S3', Api: 'GetObject', Attempts: 1, Latency, FinalHttpStatusCode, UserAgent: 'aws-cli/2, botocore' })
  fs.writeFileSync(file, `${[COLUMNS.map(({ name }) => name).join(','), call(12, 200), call(30, 404)].join('\n')}\n`)
  const outcome = cliWithoutAddon(['summary', '--json', file])
  assert.equal(outcome.code, 0, outcome.stderr)
  const summary = JSON.parse(outcome.stdout)
  assert.equal(summary.calls, 2)
  assert.equal(summary.errors, 1)
  // Latency is a numeric column: read back as numbers, it gives the percentiles.
  assert.deepEqual(summary.latencyMs, { p50: 12, p99: 30 })
})

test('report runs without the addon: the corpus of real botocore and aws-sdk v2 calls, gzip, a bad line', () => {
  const corpus = path.join(ROOT, 'tests', 'fixtures', 'csm-corpus')
  const gzipped = path.join(dir, 'botocore.jsonl.gz')
  fs.writeFileSync(gzipped, zlib.gzipSync(Buffer.concat([fs.readFileSync(path.join(corpus, 'botocore.jsonl')), Buffer.from('not json\n')])))
  const html = path.join(dir, 'corpus.html')
  const outcome = cliWithoutAddon(['report', '--output', html, gzipped, path.join(corpus, 'aws-sdk-js-v2.jsonl')])
  assert.equal(outcome.code, 0, outcome.stderr)
  assert.match(outcome.stderr, /botocore\.jsonl\.gz: skipped 1 lines/)
  const page = fs.readFileSync(html, 'utf8')
  const data = JSON.parse(page.match(/<script id="report-data" type="application\/json">(.*?)<\/script>/s)[1])
  // No request ids outside Lambda: one timeline per file, as for a 'run'.
  assert.deepEqual(data.invocations.map((i) => i.id).sort(), ['run aws-sdk-js-v2.jsonl', 'run botocore.jsonl.gz'])
  assert.deepEqual(data.provenance.files.map((f) => [f.format, f.skipped]), [['jsonl+gzip', 1], ['jsonl', 0]])
  assert.ok(data.provenance.notUnderstood.some((line) => /1 line is not a recorded event/.test(line)))
  // Nothing fetched: no src or href pointing anywhere.
  assert.doesNotMatch(page, /<(script|link|img)[^>]+(src|href)=/i)

  const missing = cliWithoutAddon(['report', '--output', html, path.join(dir, 'absent.jsonl')])
  assert.equal(missing.code, 1)
  assert.match(missing.stderr, /absent\.jsonl: no such file/)
})

test('data/csv-columns.json is what the native writer declares (scripts/generate-csv-columns.mjs)', () => {
  const { csvColumns, csvHeader } = require('../binding.js')
  assert.deepEqual(COLUMNS, csvColumns())
  assert.equal(csvHeader().trimEnd(), COLUMNS.map(({ name }) => name).join(','))
})
