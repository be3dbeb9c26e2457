// The v3 SDK (@aws-sdk/*) making real calls to moto, a stand-in 503 server and a closed port, recorded
// through the plugin in sdk-v3/, and compared field by field with what aws-sdk v2 sends over CSM for
// the same calls.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import dgram from 'node:dgram'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { startMoto, FAKE_CREDENTIALS } from './helpers/moto.mjs'
import { freeUdpPort, freeTcpPort } from './helpers/ports.mjs'
import { lambdaContext, memoryLogger } from './helpers/lambda.mjs'
import { readJsonl, assertNoSecrets } from './helpers/records.mjs'

const require = createRequire(import.meta.url)
const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const CLIENT_ID = 'v3-test-client'
const STAND_IN_REQUEST_ID = 'stand-in-req-503'
// Non-ASCII on purpose: v2 sends it as raw UTF-8, the plugin must carry it unchanged.
const STAND_IN_MESSAGE = 'stand-in 503 für retry test ✓'

let moto, dir, recorder, AWS, sts3, s3v3, ddb3, ConfiguredRetryStrategy, plugin, instrument, sdkV3Stats
let ApiCallRecorder, Recorder, closedPort, standIn, standInRequests = 0

function startStandIn() {
  const standInBody =
    '<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code>' +
    `<Message>${STAND_IN_MESSAGE}</Message></Error><RequestId>${STAND_IN_REQUEST_ID}</RequestId></ErrorResponse>`
  // On /long the message is 600 characters with an emoji (a surrogate pair) across the 512 cut.
  const long = `${'x'.repeat(511)}😀${'y'.repeat(87)}`
  const server = http.createServer((request, response) => {
    standInRequests++
    request.resume()
    const body = request.url.startsWith('/long') ? standInBody.replace(STAND_IN_MESSAGE, long) : standInBody
    request.on('end', () => {
      response.writeHead(503, {
        'content-type': 'text/xml',
        'x-amzn-requestid': STAND_IN_REQUEST_ID,
        'content-length': Buffer.byteLength(body),
      })
      response.end(body)
    })
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

before(async () => {
  ;[moto, standIn, closedPort] = await Promise.all([startMoto(), startStandIn(), freeTcpPort()])
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-v3-'))
  const port = await freeUdpPort()
  // aws-sdk v2 reads its CSM settings once, when it is required; the plugin reads the same variables.
  Object.assign(process.env, FAKE_CREDENTIALS, {
    AWS_CSM_ENABLED: 'true',
    AWS_CSM_PORT: String(port),
    AWS_CSM_CLIENT_ID: CLIENT_ID,
    AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1',
    AWS_CONFIG_FILE: path.join(dir, 'none'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'),
  })
  AWS = require('aws-sdk')
  // v2's events get the call's resources as the wrapper adds them, so both SDKs record the same.
  require('../sdk-v2/resources.js').recordSdkV2Resources(AWS)
  ;({ ApiCallRecorder, Recorder, recorderPlugin: plugin, instrumentSdkV3: instrument } = require('../index.js'))
  ;({ sdkV3Stats } = require('../sdk-v3/index.js'))
  sts3 = require('@aws-sdk/client-sts')
  s3v3 = require('@aws-sdk/client-s3')
  ddb3 = require('@aws-sdk/client-dynamodb')
  ;({ ConfiguredRetryStrategy } = require('@smithy/core/retry'))
  // v2 datagrams and the plugin's in-process events land in the same recorder.
  recorder = new Recorder({ port, sink: 'none', logger: memoryLogger() })
  recorder.start()
  const s3 = v3Client(s3v3.S3Client)
  await s3.send(new s3v3.CreateBucketCommand({ Bucket: 'v3-bucket' }))
  await s3.send(new s3v3.PutObjectCommand({ Bucket: 'v3-bucket', Key: 'here.txt', Body: 'hello' }))
})

after(async () => {
  await recorder?.stop()
  await new Promise((resolve) => (standIn ? standIn.close(resolve) : resolve()))
  await moto?.stop()
  fs.rmSync(dir, { recursive: true, force: true })
})

const endpoints = () => ({
  moto: moto.endpoint,
  standIn: `http://127.0.0.1:${standIn.address().port}`,
  closed: `http://127.0.0.1:${closedPort}`,
})

// Three attempts with a 5 ms pause in both SDKs, so the retry scenarios stay fast.
function v3Client(Client, endpoint = moto.endpoint, extra = {}) {
  return new Client({
    endpoint, region: 'us-west-2', forcePathStyle: true, retryStrategy: new ConfiguredRetryStrategy(3, 5), ...extra,
  })
}
const v2Client = (Service, endpoint = moto.endpoint) =>
  new Service({ endpoint, region: 'us-west-2', s3ForcePathStyle: true, maxRetries: 2, retryDelayOptions: { base: 5 } })

/** Runs a call to completion; returns what it resolved or rejected with. */
const settle = (promise) => promise.then((value) => ({ value }), (error) => ({ error }))

async function takeRecords(count, timeoutMs = 3000) {
  const deadline = Date.now() + timeoutMs
  while (recorder.records().length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  await new Promise((r) => setTimeout(r, 30)) // anything extra would show up as a count mismatch
  return recorder.takeRecords()
}

/** A recorder stand-in that keeps the raw JSON the plugin produced and passes it on to the real one. */
function tee() {
  const raw = []
  return { raw, ingest: (json) => { raw.push(json); recorder.ingest(json) } }
}

// Fields that legitimately differ between v2 and v3 for the same call:
// - UserAgent: each SDK sends its own (`aws-sdk-nodejs/2…` vs `aws-sdk-js/3…`); both are the header sent.
// - Timestamp, Latency, AttemptLatency: wall clock and timing of two separate calls.
// - XAmznRequestId: moto makes a new id per request (the stand-in's fixed id is compared exactly).
// - recordedAt: when the recorder took the event in.
// Fqdn is host only in both (v2 style); ClientId, Region, AccessKey and every status/exception field
// must be equal. Per scenario, `alsoDiffer` lists fields where v2 itself invents a value (see there).
const DIFFER = ['UserAgent', 'Timestamp', 'Latency', 'AttemptLatency', 'XAmznRequestId', 'recordedAt']

function comparable(record, alsoDiffer) {
  const copy = { ...record }
  for (const field of [...DIFFER, ...alsoDiffer]) delete copy[field]
  return copy
}

async function compareWithV2(name, { v2, v3, events, alsoDiffer = [] }) {
  recorder.takeRecords()
  const started = Date.now()
  const v2Outcome = await settle(v2())
  const v2Records = await takeRecords(events)
  const sink = tee()
  const v3Outcome = await settle(v3(plugin({ recorder: sink })))
  const v3Records = await takeRecords(events)
  assert.equal(v2Records.length, events, `${name}: v2 sent ${JSON.stringify(v2Records)}`)
  assert.deepEqual(v3Records.map((r) => comparable(r, alsoDiffer)), v2Records.map((r) => comparable(r, alsoDiffer)), name)
  for (const [i, r] of v3Records.entries()) {
    const twin = v2Records[i]
    assert.match(r.UserAgent, /^aws-sdk-js\/3\./, name)
    assert.match(twin.UserAgent, /^aws-sdk-nodejs\/2\./, name)
    assert.ok(r.Timestamp >= started && r.Timestamp <= Date.now(), `${name}: Timestamp ${r.Timestamp}`)
    for (const field of ['Latency', 'AttemptLatency']) {
      assert.equal(field in r, field in twin, `${name}: ${field} presence`)
      if (field in r) assert.ok(Number.isInteger(r[field]) && r[field] >= 0, `${name}: ${field}`)
    }
    assert.equal('XAmznRequestId' in r, 'XAmznRequestId' in twin, `${name}: XAmznRequestId presence`)
  }
  assertNoSecrets(sink.raw.join('\n'), `${name}: plugin output`)
  assertNoSecrets(JSON.stringify(v3Records), `${name}: records`)
  return { v2Outcome, v3Outcome, v2Records, v3Records }
}

test('explicit plugin: success, S3 404, DynamoDB 400 match aws-sdk v2 field by field', async () => {
  const { moto: endpoint } = endpoints()
  const sts = await compareWithV2('STS GetCallerIdentity', {
    events: 2,
    v2: () => v2Client(AWS.STS).getCallerIdentity().promise(),
    v3: (p) => withPlugin(v3Client(sts3.STSClient), p).send(new sts3.GetCallerIdentityCommand({})),
  })
  assert.equal(sts.v3Outcome.value.Account, sts.v2Outcome.value.Account)
  assert.equal(sts.v3Records[0].AccessKey, FAKE_CREDENTIALS.AWS_ACCESS_KEY_ID)
  assert.equal(sts.v3Records[0].Fqdn, '127.0.0.1')
  assert.equal(sts.v3Records[1].ClientId, CLIENT_ID)

  const missing = await compareWithV2('S3 GetObject 404', {
    events: 2,
    v2: () => v2Client(AWS.S3).getObject({ Bucket: 'v3-bucket', Key: 'nope.txt' }).promise(),
    v3: (p) => withPlugin(v3Client(s3v3.S3Client), p).send(new s3v3.GetObjectCommand({ Bucket: 'v3-bucket', Key: 'nope.txt' })),
  })
  assert.equal(missing.v3Outcome.error.name, 'NoSuchKey')
  assert.equal(missing.v3Records[1].FinalAwsException, 'NoSuchKey')
  assert.equal(missing.v3Records[1].FinalHttpStatusCode, 404)
  assert.equal(missing.v3Records[1].MaxRetriesExceeded, 0)

  await compareWithV2('S3 GetObject 200', {
    events: 2,
    v2: () => v2Client(AWS.S3).getObject({ Bucket: 'v3-bucket', Key: 'here.txt' }).promise(),
    v3: async (p) => {
      const out = await withPlugin(v3Client(s3v3.S3Client), p).send(new s3v3.GetObjectCommand({ Bucket: 'v3-bucket', Key: 'here.txt' }))
      return out.Body.transformToString()
    },
  })

  await compareWithV2('DynamoDB ListTables', {
    events: 2,
    v2: () => v2Client(AWS.DynamoDB).listTables({}).promise(),
    v3: (p) => withPlugin(v3Client(ddb3.DynamoDBClient), p).send(new ddb3.ListTablesCommand({})),
  })
  const table = await compareWithV2('DynamoDB PutItem 400', {
    events: 2,
    v2: () => v2Client(AWS.DynamoDB).putItem({ TableName: 'no-table', Item: { pk: { S: 'k' } } }).promise(),
    v3: (p) => withPlugin(v3Client(ddb3.DynamoDBClient), p).send(new ddb3.PutItemCommand({ TableName: 'no-table', Item: { pk: { S: 'k' } } })),
  })
  assert.equal(table.v3Records[1].FinalAwsException, 'ResourceNotFoundException')
  assert.equal(endpoint, moto.endpoint)
})

test('explicit plugin: a retried 503 (non-ASCII message) and a refused connection match aws-sdk v2', async () => {
  const { standIn: standInUrl, closed } = endpoints()
  standInRequests = 0
  const unavailable = await compareWithV2('STS 503 retried', {
    events: 4,
    v2: () => v2Client(AWS.STS, standInUrl).getCallerIdentity().promise(),
    v3: (p) => withPlugin(v3Client(sts3.STSClient, standInUrl), p).send(new sts3.GetCallerIdentityCommand({})),
  })
  assert.equal(standInRequests, 6, 'three attempts from each SDK')
  assert.equal(unavailable.v3Outcome.error.$metadata.attempts, 3)
  const [first, , , call] = unavailable.v3Records
  assert.equal(first.XAmznRequestId, STAND_IN_REQUEST_ID)
  assert.equal(first.AwsException, 'ServiceUnavailable')
  assert.equal(first.AwsExceptionMessage, STAND_IN_MESSAGE)
  assert.deepEqual([call.AttemptCount, call.MaxRetriesExceeded, call.FinalHttpStatusCode], [3, 1, 503])
  assert.equal(call.FinalAwsExceptionMessage, STAND_IN_MESSAGE)

  // v2 rewrites a refused connection as `UnknownEndpoint` / "Inaccessible host: …"; v3 reports the
  // Node.js error (`ECONNREFUSED` / "connect ECONNREFUSED 127.0.0.1:<port>"). Each is the SDK's own
  // exception, as botocore's `EndpointConnectionError` is, so these four fields differ by design.
  const sdkFields = ['SdkException', 'SdkExceptionMessage', 'FinalSdkException', 'FinalSdkExceptionMessage']
  const refused = await compareWithV2('STS connection refused', {
    events: 4,
    alsoDiffer: sdkFields,
    v2: () => v2Client(AWS.STS, closed).getCallerIdentity().promise(),
    v3: (p) => withPlugin(v3Client(sts3.STSClient, closed), p).send(new sts3.GetCallerIdentityCommand({})),
  })
  for (const r of refused.v3Records) {
    const prefix = r.Type === 'ApiCall' ? 'Final' : ''
    assert.equal(r[`${prefix}SdkException`], 'ECONNREFUSED')
    assert.equal(r[`${prefix}SdkExceptionMessage`], `connect ECONNREFUSED 127.0.0.1:${closedPort}`)
    assert.equal(refused.v2Records.find((x) => x.Type === r.Type)[`${prefix}SdkException`], 'UnknownEndpoint')
    assert.ok(!('HttpStatusCode' in r) && !('FinalHttpStatusCode' in r))
  }
  assert.deepEqual([refused.v3Records[3].AttemptCount, refused.v3Records[3].MaxRetriesExceeded], [3, 1])
})

function withPlugin(client, p) {
  client.middlewareStack.use(p)
  return client
}

test('the plugin changes no result, error or retry count of the SDK call', async () => {
  const { standIn: standInUrl, closed } = endpoints()
  const scenarios = [
    () => [v3Client(sts3.STSClient), new sts3.GetCallerIdentityCommand({})],
    () => [v3Client(s3v3.S3Client), new s3v3.GetObjectCommand({ Bucket: 'v3-bucket', Key: 'nope.txt' })],
    () => [v3Client(sts3.STSClient, standInUrl), new sts3.GetCallerIdentityCommand({})],
    () => [v3Client(sts3.STSClient, closed), new sts3.GetCallerIdentityCommand({})],
  ]
  const summary = ({ value, error }) => value
    ? { ok: Object.keys(value).sort(), attempts: value.$metadata.attempts, status: value.$metadata.httpStatusCode }
    : { name: error.name, message: error.message, attempts: error.$metadata.attempts, status: error.$metadata.httpStatusCode,
        ctor: error.constructor.name, code: error.code }
  for (const scenario of scenarios) {
    const [bare, command] = scenario()
    const [recorded, again] = scenario()
    recorded.middlewareStack.use(plugin({ recorder: tee() }))
    const without = summary(await settle(bare.send(command)))
    const withIt = summary(await settle(recorded.send(again)))
    assert.deepEqual(withIt, without)
  }
  recorder.takeRecords()
})

test('a recorder that throws never fails the call or changes its result', async () => {
  const failuresBefore = sdkV3Stats().failures
  const throwing = { ingest() { throw new Error('recorder exploded') } }
  const sts = withPlugin(v3Client(sts3.STSClient), plugin({ recorder: throwing }))
  const out = await sts.send(new sts3.GetCallerIdentityCommand({}))
  assert.equal(out.Account, '123456789012')
  assert.equal(sts.send.length, 3)
  // Errors still come through unchanged (same object type, same $metadata).
  const s3 = withPlugin(v3Client(s3v3.S3Client), plugin({ recorder: { get ingest() { throw new Error('no') } } }))
  const error = await s3.send(new s3v3.GetObjectCommand({ Bucket: 'v3-bucket', Key: 'nope.txt' })).catch((e) => e)
  assert.ok(error instanceof s3v3.NoSuchKey)
  assert.equal(error.$metadata.httpStatusCode, 404)
  assert.equal(sdkV3Stats().failures - failuresBefore, 4, 'two events per call, each failure counted')
  recorder.takeRecords()
})

test('concurrent calls on one client (also with cacheMiddleware) keep their attempts apart', async () => {
  const { standIn: standInUrl } = endpoints()
  for (const cacheMiddleware of [false, true]) {
    const sink = tee()
    const ok = withPlugin(v3Client(sts3.STSClient, moto.endpoint, { cacheMiddleware }), plugin({ recorder: sink }))
    const failing = withPlugin(v3Client(sts3.STSClient, standInUrl, { cacheMiddleware }), plugin({ recorder: sink }))
    const s3 = withPlugin(v3Client(s3v3.S3Client, moto.endpoint, { cacheMiddleware }), plugin({ recorder: sink }))
    const calls = [
      ...Array.from({ length: 6 }, () => ok.send(new sts3.GetCallerIdentityCommand({}))),
      ...Array.from({ length: 2 }, () => failing.send(new sts3.GetCallerIdentityCommand({}))),
      ...Array.from({ length: 4 }, (_, i) => s3.send(new s3v3.HeadObjectCommand({ Bucket: 'v3-bucket', Key: i % 2 ? 'here.txt' : 'nope.txt' }))),
    ]
    const outcomes = await Promise.all(calls.map(settle))
    assert.equal(outcomes.filter((o) => o.value).length, 8)
    const events = sink.raw.map((json) => JSON.parse(json))
    const apiCalls = events.filter((e) => e.Type === 'ApiCall')
    const attempts = events.filter((e) => e.Type === 'ApiCallAttempt')
    assert.equal(apiCalls.length, 12, `cacheMiddleware ${cacheMiddleware}`)
    assert.equal(attempts.length, 6 + 2 * 3 + 4)
    const retried = apiCalls.filter((e) => e.FinalHttpStatusCode === 503)
    assert.deepEqual(retried.map((e) => [e.AttemptCount, e.MaxRetriesExceeded]), [[3, 1], [3, 1]])
    assert.ok(apiCalls.filter((e) => e.FinalHttpStatusCode !== 503).every((e) => e.AttemptCount === 1))
    const heads = apiCalls.filter((e) => e.Api === 'HeadObject')
    assert.deepEqual(heads.map((e) => e.FinalHttpStatusCode).sort(), [200, 200, 404, 404])
    // HeadObject 404 has no message body: like v2, no message (v3 alone would say "UnknownError").
    assert.ok(heads.filter((e) => e.FinalHttpStatusCode === 404).every((e) => e.FinalAwsException === 'NotFound' && !('FinalAwsExceptionMessage' in e)))
  }
  assert.equal(recorder.records().length, 2 * (12 + 16))
  recorder.takeRecords()
})

test('automatic instrumentation through ApiCallRecorder, with a Lambda context', async () => {
  const file = path.join(dir, 'auto.jsonl')
  const logger = memoryLogger()
  // Created before the wrapper: clients that exist already are instrumented on their next send.
  const early = v3Client(sts3.STSClient)
  const explicit = withPlugin(v3Client(sts3.STSClient), plugin())
  const handler = ApiCallRecorder(async () => {
    const s3 = v3Client(s3v3.S3Client)
    const ddb = v3Client(ddb3.DynamoDBClient)
    await early.send(new sts3.GetCallerIdentityCommand({}))
    await explicit.send(new sts3.GetCallerIdentityCommand({}))
    const missing = await s3.send(new s3v3.GetObjectCommand({ Bucket: 'v3-bucket', Key: 'nope.txt' })).catch((e) => e.name)
    await ddb.send(new ddb3.ListTablesCommand({}))
    return missing
  }, { enabled: true, port: 0, sink: 'file', file, logger })
  const context = lambdaContext({ functionName: 'v3-orders' })
  try {
    assert.equal(await handler({}, context), 'NoSuchKey')
  } finally {
    instrument({ recorder: null }).stop()
  }
  assert.deepEqual(logger.warnings, [])
  assertNoSecrets(fs.readFileSync(file, 'utf8'), file)
  const records = readJsonl(file)
  assert.deepEqual(records.map((r) => `${r.Type}:${r.Service}.${r.Api}`), [
    'ApiCallAttempt:STS.GetCallerIdentity', 'ApiCall:STS.GetCallerIdentity',
    // the explicitly instrumented client is recorded once, by its own plugin
    'ApiCallAttempt:STS.GetCallerIdentity', 'ApiCall:STS.GetCallerIdentity',
    'ApiCallAttempt:S3.GetObject', 'ApiCall:S3.GetObject',
    'ApiCallAttempt:DynamoDB.ListTables', 'ApiCall:DynamoDB.ListTables',
  ])
  for (const r of records) {
    assert.equal(r.functionName, 'v3-orders')
    assert.equal(r.awsRequestId, context.awsRequestId)
    assert.equal(r.phase, 'invoke')
    assert.equal(r.coldStart, true)
    assert.equal(r.ClientId, CLIENT_ID)
    assert.equal(r.Region, 'us-west-2')
  }
  assert.equal(records[5].FinalAwsException, 'NoSuchKey')
  // Stopped: clients keep the middleware but record nothing, and still work.
  const countBefore = sdkV3Stats().calls
  await early.send(new sts3.GetCallerIdentityCommand({}))
  assert.equal(sdkV3Stats().calls, countBefore)
})

/** Runs `source` as an ES module in a child process with `env`; resolves with its stdout. */
function runChild(source, env) {
  const script = path.join(dir, `child-${Math.random().toString(36).slice(2)}.mjs`)
  fs.writeFileSync(script, source)
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += d })
    child.stderr.on('data', (d) => { stderr += d })
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(stdout)
      else reject(new Error(`child exited ${code}: ${stderr}`))
    })
  })
}

test('automatic instrumentation catches an SDK imported after ApiCallRecorder (Module._load hook)', async () => {
  const file = path.join(dir, 'late.jsonl')
  const out = await runChild(`
    import { createRequire } from 'node:module'
    const require = createRequire(${JSON.stringify(path.join(ROOT, 'index.js'))})
    const ApiCallRecorder = require('./index.js')
    const handler = ApiCallRecorder(async () => {
      const { STSClient, GetCallerIdentityCommand } = await import(${JSON.stringify(require.resolve('@aws-sdk/client-sts'))})
      const sts = new STSClient({ endpoint: ${JSON.stringify(moto.endpoint)}, region: 'us-west-2' })
      return (await sts.send(new GetCallerIdentityCommand({}))).Account
    }, { enabled: true, port: 0, sink: 'file', file: ${JSON.stringify(file)} })
    console.log(await handler({}, { functionName: 'late', awsRequestId: 'r-1' }))
  `, {})
  assert.equal(out.trim(), '123456789012')
  const records = readJsonl(file)
  assert.deepEqual(records.map((r) => `${r.Type}:${r.Service}.${r.Api}:${r.functionName}`),
    ['ApiCallAttempt:STS.GetCallerIdentity:late', 'ApiCall:STS.GetCallerIdentity:late'])
})

test('without an in-process recorder, events go out as CSM datagrams and respect AWS_CSM_ENABLED', async () => {
  const socket = dgram.createSocket('udp4')
  const received = []
  socket.on('message', (message) => received.push(message.toString('utf8')))
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const { port } = socket.address()
  const source = (mode) => `
    import { createRequire } from 'node:module'
    const require = createRequire(${JSON.stringify(path.join(ROOT, 'index.js'))})
    const { recorderPlugin, instrumentSdkV3 } = require('./index.js')
    const { STSClient, GetCallerIdentityCommand } = require(${JSON.stringify(require.resolve('@aws-sdk/client-sts'))})
    const sts = new STSClient({ endpoint: ${JSON.stringify(moto.endpoint)}, region: 'us-west-2' })
    if (${JSON.stringify(mode)} === 'explicit') sts.middlewareStack.use(recorderPlugin())
    else instrumentSdkV3()
    console.log((await sts.send(new GetCallerIdentityCommand({}))).Account)
    // and exits right away: the unref'd socket must neither hold the process nor lose the datagrams
  `
  try {
    for (const mode of ['explicit', 'auto']) {
      received.length = 0
      const out = await runChild(source(mode), { AWS_CSM_PORT: String(port), AWS_CSM_CLIENT_ID: `udp-${mode}` })
      assert.equal(out.trim(), '123456789012')
      const deadline = Date.now() + 2000
      while (received.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
      assertNoSecrets(received.join('\n'), `${mode} datagrams`)
      const events = received.map((d) => JSON.parse(d))
      assert.deepEqual(events.map((e) => `${e.Type}:${e.ClientId}:${e.Service}.${e.Api}`),
        [`ApiCallAttempt:udp-${mode}:STS.GetCallerIdentity`, `ApiCall:udp-${mode}:STS.GetCallerIdentity`])
      assert.equal(events[0].AccessKey, FAKE_CREDENTIALS.AWS_ACCESS_KEY_ID)
      assert.equal(events[1].FinalHttpStatusCode, 200)
    }
    // Off the same ways v2 is off: unset, "false" or "0".
    received.length = 0
    for (const enabled of ['false', '0', '']) {
      await runChild(source('explicit'), { AWS_CSM_PORT: String(port), AWS_CSM_ENABLED: enabled })
    }
    await new Promise((r) => setTimeout(r, 100))
    assert.deepEqual(received, [])
  } finally {
    socket.close()
  }
})

test('a 600-character message is cut to 512 like v2, without splitting a surrogate pair', async () => {
  const sink = tee()
  recorder.takeRecords()
  const sts = withPlugin(v3Client(sts3.STSClient, `${endpoints().standIn}/long`, { retryStrategy: new ConfiguredRetryStrategy(1) }), plugin({ recorder: sink }))
  const error = await sts.send(new sts3.GetCallerIdentityCommand({})).catch((e) => e)
  assert.equal(error.message.length, 600)
  const records = await takeRecords(2)
  // All of it reached the recorder: a lone surrogate would make the event invalid JSON text for it.
  assert.deepEqual(records.map((r) => [r.Type, r.AwsExceptionMessage?.length ?? r.FinalAwsExceptionMessage.length]),
    [['ApiCallAttempt', 511], ['ApiCall', 511]])
  assert.equal(records[1].FinalAwsExceptionMessage, 'x'.repeat(511))
  assert.deepEqual([records[1].AttemptCount, records[1].MaxRetriesExceeded], [1, 1])
})

test('ApiCallRecorder with sdkV3: false leaves v3 clients alone', async () => {
  const before = sdkV3Stats()
  const handler = ApiCallRecorder(async () => {
    return (await v3Client(sts3.STSClient).send(new sts3.GetCallerIdentityCommand({}))).Account
  }, { enabled: true, port: 0, sink: 'none', sdkV3: false, logger: memoryLogger() })
  assert.equal(await handler({}, lambdaContext()), '123456789012')
  const after = sdkV3Stats()
  assert.equal(after.instrumenting, false)
  assert.deepEqual([after.calls, after.attempts], [before.calls, before.attempts])
})

test('recorder: null sends datagrams even with a recorder in the process (here: to that recorder)', async () => {
  recorder.takeRecords()
  const sts = withPlugin(v3Client(sts3.STSClient), plugin({ recorder: null }))
  const sentBefore = sdkV3Stats().sent
  await sts.send(new sts3.GetCallerIdentityCommand({}))
  assert.equal(sdkV3Stats().sent - sentBefore, 2)
  const records = await takeRecords(2)
  assert.deepEqual(records.map((r) => r.Type), ['ApiCallAttempt', 'ApiCall'])
  assert.equal(records[1].ClientId, CLIENT_ID)
})
