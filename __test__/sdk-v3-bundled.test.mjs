// A v3 SDK bundled into the handler file (esbuild, the SDK inside, the recorder external) loads no
// @smithy module by name, so the plugin never sees its calls: the recorder records them from Node's
// HTTP client instead. Each handler in fixtures/bundled/ runs twice in its own process, bundled and
// as it is (SDK from node_modules, recorded by the plugin), against moto, a stand-in that answers
// 503 and a closed port; the two runs' records must agree field by field.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { startMoto, FAKE_CREDENTIALS } from './helpers/moto.mjs'
import { freeTcpPort, freeUdpPort } from './helpers/ports.mjs'
import { readJsonl, assertNoSecrets } from './helpers/records.mjs'

const require = createRequire(import.meta.url)
const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const FIXTURES = path.join(ROOT, '__test__', 'fixtures', 'bundled')
const RUNNER = path.join(ROOT, '__test__', 'fixtures', 'run-handler.mjs')
const HANDLERS = ['s3', 'dynamodb', 'sqs', 'sts', 'lambda']
/** Bundled too, not compared with an unbundled run. */
const MORE_BUNDLES = ['sts-plugin']
const STAND_IN_MESSAGE = 'stand-in 503 für retry test ✓'
const BUNDLE_WARNING = 'calls of a bundled AWS SDK v3 were recorded from their HTTP requests'

// Fields that differ between two runs of the same calls: clocks, and ids made per request or invocation.
// Resources come from a call's input, which only the plugin sees; the HTTP layer records none.
const RUN_SPECIFIC = new Set(['Timestamp', 'Latency', 'AttemptLatency', 'XAmznRequestId', 'XAmzRequestId', 'XAmzId2', 'recordedAt', 'awsRequestId', 'Resources'])

let moto, standIn, closedPort, dir, bundleDir, sourceDir
let standInRequests = []

function startStandIn() {
  const body =
    '<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code>' +
    `<Message>${STAND_IN_MESSAGE}</Message></Error><RequestId>stand-in-req-503</RequestId></ErrorResponse>`
  const server = http.createServer((request, response) => {
    const chunks = []
    request.on('data', (chunk) => chunks.push(chunk))
    request.on('end', () => {
      standInRequests.push({ rawHeaders: request.rawHeaders, body: Buffer.concat(chunks), url: request.url })
      response.writeHead(503, { 'content-type': 'text/xml', 'x-amzn-requestid': 'stand-in-req-503', 'content-length': Buffer.byteLength(body) })
      response.end(body)
    })
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

/** Bundles each handler into one CommonJS file in `bundleDir`, the recorder left to `require`. */
async function bundleHandlers() {
  const esbuild = require('esbuild')
  await Promise.all([...HANDLERS, ...MORE_BUNDLES].map((name) => esbuild.build({
    entryPoints: [path.join(FIXTURES, `${name}.mjs`)],
    outfile: path.join(bundleDir, `${name}.cjs`),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node18',
    external: ['aws-api-call-recorder'],
    logLevel: 'error',
  })))
  // As webpack and ESM bundles resolve it: the SDK's ES module builds (`module` field), ESM output.
  await esbuild.build({
    entryPoints: [path.join(FIXTURES, 's3.mjs')],
    outfile: path.join(bundleDir, 's3-esm.mjs'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node18',
    mainFields: ['module', 'main'],
    external: ['aws-api-call-recorder'],
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    logLevel: 'error',
  })
}

/**
 * A function's folder: the recorder (and, for the unbundled copies of the handlers, the SDK) in
 * node_modules, as `npm install` would put them.
 */
function layOutFunction() {
  const modules = path.join(dir, 'node_modules')
  fs.mkdirSync(modules)
  fs.symlinkSync(ROOT, path.join(modules, 'aws-api-call-recorder'), 'dir')
  for (const scope of ['@aws-sdk', '@smithy']) fs.symlinkSync(path.join(ROOT, 'node_modules', scope), path.join(modules, scope), 'dir')
  fs.cpSync(FIXTURES, sourceDir, { recursive: true })
}

before(async () => {
  ;[moto, standIn, closedPort] = await Promise.all([startMoto(), startStandIn(), freeTcpPort()])
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-bundled-'))
  bundleDir = path.join(dir, 'bundles')
  sourceDir = path.join(dir, 'source')
  fs.mkdirSync(bundleDir)
  layOutFunction()
  await bundleHandlers()
})

after(async () => {
  await new Promise((resolve) => (standIn ? standIn.close(resolve) : resolve()))
  await moto?.stop()
  fs.rmSync(dir, { recursive: true, force: true })
})

function endpoints() {
  return { endpoint: moto.endpoint, standIn: `http://127.0.0.1:${standIn.address().port}`, closed: `http://127.0.0.1:${closedPort}` }
}

/** Runs `modulePath`'s handler once per event in a fresh process; returns its output and records. */
async function runHandler(modulePath, events, label, extraEnv = {}) {
  const file = path.join(dir, `${label}.jsonl`)
  const env = {
    ...process.env,
    ...FAKE_CREDENTIALS,
    API_CALL_RECORDER_IS_ACTIVATED: 'true',
    API_CALL_RECORDER_FILE: file,
    AWS_CONFIG_FILE: path.join(dir, 'none'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'),
    AWS_CSM_PORT: String(await freeUdpPort()),
    ...extraEnv,
  }
  delete env.AWS_CSM_ENABLED
  const { stdout, stderr } = await new Promise((resolve, reject) => {
    execFile(process.execPath, [RUNNER, modulePath, JSON.stringify(events)], { env, timeout: 60_000 }, (error, out, err) => {
      if (error) reject(new Error(`${label}: ${error.message}\n${err}`))
      else resolve({ stdout: out, stderr: err })
    })
  })
  const output = JSON.parse(stdout.trim().split('\n').pop())
  const raw = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : ''
  assertNoSecrets(raw, `${label} records`)
  return { ...output, stderr, records: readJsonl(file) }
}

/** Records without the run-specific fields, as sorted JSON lines (the burst finishes in any order). */
function comparable(records, alsoIgnore = []) {
  const ignore = new Set([...RUN_SPECIFIC, ...alsoIgnore])
  return records
    .map((record) => JSON.stringify(Object.fromEntries(Object.entries(record).filter(([key]) => !ignore.has(key)).sort())))
    .sort()
}

const EVENTS = {
  s3: (variant) => [{ ...endpoints(), bucket: `bundled-${variant}` }],
  dynamodb: (variant) => [{ ...endpoints(), table: `bundled-${variant}` }],
  sqs: (variant) => [{ ...endpoints(), queue: `bundled-${variant}` }],
  sts: () => [{ ...endpoints(), giveUpEarly: true }],
  lambda: () => [endpoints()],
}

for (const name of HANDLERS) {
  test(`${name}: a bundled SDK's calls are recorded from HTTP as the plugin records them unbundled`, async () => {
    const bundled = await runHandler(path.join(bundleDir, `${name}.cjs`), EVENTS[name]('bundle'), `${name}-bundle`)
    const source = await runHandler(path.join(sourceDir, `${name}.mjs`), EVENTS[name]('source'), `${name}-source`)

    // The handler's own results are the same either way.
    assert.deepEqual(bundled.results, source.results)
    // Unbundled, the plugin recorded every call and the HTTP layer skipped each of its requests.
    assert.equal(source.stats.httpCalls, 0)
    assert.ok(source.stats.calls > 0)
    assert.equal(source.stats.httpSkipped, source.stats.attempts)
    // Bundled, the plugin saw nothing and the HTTP layer recorded as many calls and attempts.
    assert.equal(bundled.stats.calls, 0)
    assert.equal(bundled.stats.attempts, 0)
    assert.equal(bundled.stats.httpCalls, source.stats.calls)
    assert.equal(bundled.stats.httpAttempts, source.stats.attempts)
    assert.equal(bundled.stats.httpUnidentified, 0)
    assert.equal(bundled.stats.failures, 0)

    assert.equal(bundled.records.length, source.records.length)
    assert.deepEqual(comparable(bundled.records), comparable(source.records))
    for (const record of bundled.records) {
      assert.equal(typeof record.Api, 'string', JSON.stringify(record))
      assert.equal(record.ApiUnknown, undefined)
      assert.ok(Number.isInteger(record.Type === 'ApiCall' ? record.Latency : record.AttemptLatency))
    }
    assert.ok(bundled.stderr.includes(BUNDLE_WARNING), bundled.stderr)
    assert.ok(!source.stderr.includes(BUNDLE_WARNING), source.stderr)
  })
}

test('an ESM bundle of the SDK\'s ES module builds is recorded the same way', async () => {
  const bundle = path.join(bundleDir, 's3-esm.mjs')
  // esbuild heads each bundled file with a `// node_modules/<package>/<path>` comment.
  const sources = fs.readFileSync(bundle, 'utf8').match(/^\/\/ \S*node_modules\/\S+$/gm)
  assert.ok(sources.some((line) => line.includes('/dist-es/')), 'bundled from the ES module builds')
  assert.ok(!sources.some((line) => line.includes('/dist-cjs/')), 'and not from the CommonJS ones')
  const bundled = await runHandler(bundle, EVENTS.s3('esm-bundle'), 's3-esm-bundle')
  const source = await runHandler(path.join(sourceDir, 's3.mjs'), EVENTS.s3('esm-source'), 's3-esm-source')
  assert.deepEqual(bundled.results, source.results)
  assert.equal(bundled.stats.calls, 0)
  assert.equal(bundled.stats.httpCalls, source.stats.calls)
  // The ES module builds carry their package's version in the user agent, the CommonJS builds the
  // version they were built at, which can differ by a release: the SDK's own difference.
  assert.ok(bundled.records.every((r) => r.UserAgent.includes(' api/s3#')))
  assert.deepEqual(comparable(bundled.records, ['UserAgent']), comparable(source.records, ['UserAgent']))
})

test('the scenarios cover an S3 404, retried 503s, a refused connection and a concurrent burst', async () => {
  const s3 = readJsonl(path.join(dir, 's3-bundle.jsonl'))
  const calls = s3.filter((r) => r.Type === 'ApiCall')
  const find = (api, status) => calls.filter((r) => r.Api === api && r.FinalHttpStatusCode === status)
  assert.equal(find('HeadObject', 404)[0]?.FinalAwsException, 'NotFound')
  assert.equal(find('GetObject', 404)[0]?.FinalAwsException, 'NoSuchKey')
  const unavailable = find('GetObject', 503)[0]
  assert.equal(unavailable?.AttemptCount, 3)
  assert.equal(unavailable?.MaxRetriesExceeded, 1)
  assert.equal(unavailable?.FinalAwsException, 'ServiceUnavailable')
  assert.equal(unavailable?.FinalAwsExceptionMessage, STAND_IN_MESSAGE)
  const refused = calls.find((r) => r.Api === 'HeadObject' && r.FinalHttpStatusCode === undefined)
  assert.equal(refused?.FinalSdkException, 'ECONNREFUSED')
  assert.equal(refused?.AttemptCount, 3)
  const sts = readJsonl(path.join(dir, 'sts-bundle.jsonl')).filter((r) => r.Type === 'ApiCall')
  assert.deepEqual(sts.map((r) => [r.Api, r.AttemptCount, r.FinalHttpStatusCode ?? r.FinalSdkException]),
    [['GetCallerIdentity', 1, 200], ['GetCallerIdentity', 3, 503], ['GetCallerIdentity', 3, 'ECONNREFUSED'],
      // The call whose SDK gave up before the header's max, closed when the handler returned.
      ['GetCallerIdentity', 2, 503]])
  assert.equal(sts.at(-1).MaxRetriesExceeded, 1)
  const puts = readJsonl(path.join(dir, 'dynamodb-bundle.jsonl')).filter((r) => r.Type === 'ApiCall' && r.Api === 'PutItem')
  assert.equal(puts.length, 20)
  assert.ok(puts.every((r) => r.AttemptCount === 1 && r.FinalHttpStatusCode === 200))
})

test('the warning about bundled calls comes once per wrapper, with the fix', async () => {
  const events = [...EVENTS.lambda(), ...EVENTS.lambda(), ...EVENTS.lambda()]
  const run = await runHandler(path.join(bundleDir, 'lambda.cjs'), events, 'lambda-three')
  assert.equal(run.stderr.split(BUNDLE_WARNING).length - 1, 1, run.stderr)
  assert.match(run.stderr, /mark @aws-sdk\/\* and @smithy\/\* external/)
  assert.match(run.stderr, /recorderPlugin\(\)/)
  assert.equal(run.records.filter((r) => r.Type === 'ApiCall').length, 6)
})

test('a bundled client given recorderPlugin() is recorded by the plugin, not again from HTTP', async () => {
  const withPlugin = await runHandler(path.join(bundleDir, 'sts-plugin.cjs'), [endpoints()], 'sts-plugin-bundle')
  const fromHttp = await runHandler(path.join(bundleDir, 'sts.cjs'), [endpoints()], 'sts-http-bundle')
  assert.deepEqual(withPlugin.results, fromHttp.results)
  assert.equal(withPlugin.stats.httpCalls, 0)
  assert.equal(withPlugin.stats.calls, 3)
  assert.equal(withPlugin.stats.httpSkipped, withPlugin.stats.attempts)
  assert.ok(!withPlugin.stderr.includes(BUNDLE_WARNING), withPlugin.stderr)
  assert.deepEqual(comparable(withPlugin.records), comparable(fromHttp.records))
})

test('with sdkV3Http: false a bundled SDK goes unrecorded, as before', async () => {
  const run = await runHandler(path.join(bundleDir, 'lambda.cjs'), EVENTS.lambda(), 'lambda-off', { FIXTURE_SDK_V3_HTTP: 'false' })
  assert.deepEqual(run.results, [['ok', 'ResourceNotFoundException']])
  assert.deepEqual(run.records, [])
  assert.equal(run.stats.httpLayer, false)
  assert.equal(run.stats.httpCalls, 0)
  assert.ok(!run.stderr.includes(BUNDLE_WARNING), run.stderr)
})

test('in one process: per-path counts, and aws-sdk v2 (CSM) and bundled v3 (HTTP) are each counted once', async () => {
  const port = await freeUdpPort()
  const script = `
    const { Recorder, instrumentSdkV3 } = require(${JSON.stringify(ROOT)})
    const recorder = new Recorder({ port: ${port}, sink: 'none' })
    recorder.start()
    instrumentSdkV3({ recorder, http: true })
    const AWS = require('aws-sdk')
    const { handler } = require(${JSON.stringify(path.join(bundleDir, 'sts.cjs'))})
    ;(async () => {
      const event = { endpoint: ${JSON.stringify(moto.endpoint)} }
      await new AWS.STS({ endpoint: event.endpoint, region: 'us-west-2' }).getCallerIdentity().promise()
      await handler({ ...event, standIn: ${JSON.stringify(endpoints().standIn)}, closed: ${JSON.stringify(endpoints().closed)} })
      require(${JSON.stringify(path.join(ROOT, 'sdk-v3', 'index.js'))}).settleHttpCalls()
      await recorder.flush({ drainMs: 100 })
      const records = recorder.records()
      const stats = recorder.stats()
      await recorder.stop()
      console.log(JSON.stringify({ paths: stats.paths, stats, records }))
    })()
  `
  const env = {
    ...process.env, ...FAKE_CREDENTIALS,
    AWS_CSM_ENABLED: 'true', AWS_CSM_PORT: String(port), AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1',
    AWS_CONFIG_FILE: path.join(dir, 'none'), AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'),
  }
  delete env.API_CALL_RECORDER_IS_ACTIVATED
  const stdout = await new Promise((resolve, reject) => execFile(process.execPath, ['-e', script], { env, timeout: 60_000 },
    (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out))))
  const { paths, stats } = JSON.parse(stdout.trim().split('\n').pop())
  // v2: one ApiCall and one ApiCallAttempt datagram; bundled v3: three calls, 1 + 3 + 3 attempts.
  assert.deepEqual(paths, {
    csm: { calls: 1, attempts: 1, datagrams: 2 }, plugin: { calls: 0, attempts: 0 }, http: { calls: 3, attempts: 7 },
    sdkV2: { calls: 0, attempts: 0 }, proxy: { calls: 0, attempts: 0 },
  })
  assert.equal(stats.calls, 1 + 3)
  assert.equal(stats.parsed, 2 + 3 + 7)
})

test('the HTTP layer never changes a request: same header names in the same order, same body', async () => {
  const sts = path.join(bundleDir, 'sts.cjs')
  const script = (http) => `
    const { Recorder, instrumentSdkV3 } = require(${JSON.stringify(ROOT)})
    const recorder = new Recorder({ port: 0, sink: 'none' })
    recorder.start()
    const instrumentation = instrumentSdkV3({ recorder, http: ${http} })
    const { handler } = require(${JSON.stringify(sts)})
    handler({ endpoint: ${JSON.stringify(endpoints().standIn)}, standIn: ${JSON.stringify(endpoints().standIn)}, closed: ${JSON.stringify(endpoints().closed)} })
      .then(async () => { console.log(JSON.stringify(recorder.stats().paths)); await recorder.stop() })
  `
  const run = (http) => new Promise((resolve, reject) => execFile(process.execPath, ['-e', script(http)],
    { env: { ...process.env, ...FAKE_CREDENTIALS, AWS_CONFIG_FILE: path.join(dir, 'none'), API_CALL_RECORDER_IS_ACTIVATED: 'false' }, timeout: 60_000 },
    (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(JSON.parse(out.trim().split('\n').pop())))))
  standInRequests = []
  const on = await run(true)
  const seenWith = standInRequests
  standInRequests = []
  const off = await run(false)
  const seenWithout = standInRequests
  assert.equal(on.http.calls, 3)
  assert.equal(off.http.calls, 0)
  assert.equal(seenWith.length, 6)
  assert.equal(seenWithout.length, 6)
  const names = (request) => request.rawHeaders.filter((_, i) => i % 2 === 0)
  const varying = new Set(['amz-sdk-invocation-id', 'x-amz-date', 'authorization', 'amz-sdk-request'])
  for (let i = 0; i < 6; i++) {
    assert.deepEqual(names(seenWith[i]), names(seenWithout[i]))
    assert.equal(seenWith[i].url, seenWithout[i].url)
    assert.equal(crypto.createHash('sha256').update(seenWith[i].body).digest('hex'),
      crypto.createHash('sha256').update(seenWithout[i].body).digest('hex'))
    const values = (request) => request.rawHeaders.filter((_, j) => j % 2 === 1 && !varying.has(request.rawHeaders[j - 1].toLowerCase()))
    assert.deepEqual(values(seenWith[i]), values(seenWithout[i]))
  }
})
