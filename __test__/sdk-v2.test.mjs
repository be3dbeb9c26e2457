// aws-sdk v2 making real calls to moto, recorded through ApiCallRecorder into a JSON Lines file.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { startMoto, FAKE_CREDENTIALS, sdkV2CsmEnv } from './helpers/moto.mjs'
import { freeUdpPort, freeTcpPort } from './helpers/ports.mjs'
import { lambdaContext, memoryLogger } from './helpers/lambda.mjs'
import { readJsonl, onlyCall, assertNoSecrets } from './helpers/records.mjs'

const require = createRequire(import.meta.url)
let moto, AWS, ApiCallRecorder, dir, file, closedPort

before(async () => {
  moto = await startMoto()
  closedPort = await freeTcpPort()
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-v2-'))
  file = path.join(dir, 'calls.jsonl')
  // aws-sdk v2 reads its CSM settings once, when it is required.
  Object.assign(process.env, await sdkV2CsmEnv(dir))
  AWS = require('aws-sdk')
  ApiCallRecorder = require('../index.js')
})

after(async () => {
  await moto?.stop()
  fs.rmSync(dir, { recursive: true, force: true })
})

const client = (Service, endpoint, extra = {}) =>
  new Service({ endpoint: endpoint ?? moto.endpoint, region: 'us-west-2', s3ForcePathStyle: true, ...extra })

test('records STS, S3 (with a 404), DynamoDB and a retried connection failure, with no secrets', async () => {
  const logger = memoryLogger()
  const handler = ApiCallRecorder(async (event) => {
    const s3 = client(AWS.S3)
    const ddb = client(AWS.DynamoDB)
    await client(AWS.STS).getCallerIdentity().promise()
    await s3.createBucket({ Bucket: 'v2-bucket', CreateBucketConfiguration: { LocationConstraint: 'us-west-2' } }).promise()
    await s3.putObject({ Bucket: 'v2-bucket', Key: 'für/✓.txt', Body: 'hello' }).promise()
    const missing = await s3.getObject({ Bucket: 'v2-bucket', Key: 'nope.txt' }).promise().catch((e) => e.code)
    await ddb.createTable({
      TableName: 'v2-table', BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    }).promise()
    await ddb.putItem({ TableName: 'v2-table', Item: { pk: { S: event.key } } }).promise()
    const refused = await client(AWS.STS, `http://127.0.0.1:${closedPort}`, {
      maxRetries: 2, retryDelayOptions: { base: 10 },
    }).getCallerIdentity().promise().catch((e) => e.code)
    return { missing, refused }
  }, { enabled: true, file, logger })

  // A call during module init is recorded too, with phase "init", and flushed with the first invocation.
  // aws-sdk v2 sends the call's last datagram after its promise settles; in Lambda the first
  // invocation comes well after init, so the test lets it arrive first.
  await client(AWS.STS).getCallerIdentity().promise()
  await new Promise((resolve) => setTimeout(resolve, 50))

  const context = lambdaContext({ functionName: 'orders' })
  const result = await handler({ key: 'k1' }, context)
  assert.deepEqual(result, { missing: 'NoSuchKey', refused: 'UnknownEndpoint' })
  assert.deepEqual(logger.warnings, [])

  const text = fs.readFileSync(file, 'utf8')
  assertNoSecrets(text, file)
  const records = readJsonl(file)
  const invoke = records.filter((r) => r.phase === 'invoke')
  const init = records.filter((r) => r.phase === 'init')
  assert.deepEqual(init.map((r) => `${r.Type}:${r.Service}.${r.Api}`), ['ApiCallAttempt:STS.GetCallerIdentity', 'ApiCall:STS.GetCallerIdentity'])
  for (const r of invoke) {
    assert.equal(r.functionName, 'orders')
    assert.equal(r.functionVersion, '$LATEST')
    assert.equal(r.awsRequestId, context.awsRequestId)
    assert.equal(r.coldStart, true)
    assert.equal(typeof r.recordedAt, 'number')
  }

  const sts = onlyCall(invoke, 'STS', 'GetCallerIdentity', (r) => r.FinalHttpStatusCode === 200)
  assert.equal(sts.AttemptCount, 1)
  assert.equal(sts.MaxRetriesExceeded, 0)
  assert.equal(sts.Region, 'us-west-2')
  const notFound = onlyCall(invoke, 'S3', 'GetObject')
  assert.equal(notFound.FinalHttpStatusCode, 404)
  assert.equal(notFound.FinalAwsException, 'NoSuchKey')
  assert.equal(onlyCall(invoke, 'S3', 'PutObject').FinalHttpStatusCode, 200)
  assert.equal(onlyCall(invoke, 'DynamoDB', 'CreateTable').FinalHttpStatusCode, 200)
  assert.equal(onlyCall(invoke, 'DynamoDB', 'PutItem').FinalHttpStatusCode, 200)
  const refused = onlyCall(invoke, 'STS', 'GetCallerIdentity', (r) => r.FinalHttpStatusCode === undefined)
  assert.equal(refused.AttemptCount, 3)
  assert.equal(refused.MaxRetriesExceeded, 1)
  assert.equal(refused.FinalSdkException, 'UnknownEndpoint')

  const attempts = invoke.filter((r) => r.Type === 'ApiCallAttempt')
  assert.equal(attempts.length, 9, 'one attempt per HTTP try: 6 calls + 3 tries of the refused one')
  const signed = attempts.filter((r) => r.AccessKey)
  assert.ok(signed.every((r) => r.AccessKey === FAKE_CREDENTIALS.AWS_ACCESS_KEY_ID))
  assert.equal(attempts.filter((r) => r.Api === 'GetCallerIdentity' && r.SdkException === 'UnknownEndpoint').length, 3)
})

test('the second invocation is warm, keeps the receiver bound and gets its own request id', async () => {
  const warmFile = path.join(dir, 'warm.jsonl')
  // Same port as the wrapper in the test above: the two share that wrapper's receiver and sink.
  const shared = ApiCallRecorder(async () => client(AWS.STS).getCallerIdentity().promise().then(() => 'ok'), {
    enabled: true, file: warmFile, logger: memoryLogger(),
  })
  const first = lambdaContext()
  const second = lambdaContext()
  assert.equal(await shared({}, first), 'ok')
  assert.equal(await shared({}, second), 'ok')
  assert.ok(!fs.existsSync(warmFile))
  const records = readJsonl(file).filter((r) => r.awsRequestId === first.awsRequestId || r.awsRequestId === second.awsRequestId)
  assert.deepEqual(records.map((r) => [r.awsRequestId === first.awsRequestId ? 'first' : 'second', r.Type, r.coldStart]), [
    ['first', 'ApiCallAttempt', true], ['first', 'ApiCall', true],
    ['second', 'ApiCallAttempt', false], ['second', 'ApiCall', false],
  ])
})
