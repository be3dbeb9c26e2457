// The whole pipeline on loopback: a wrapped handler's real aws-sdk v2 calls, delivered by the Rust
// Firehose sink to moto, which writes each PutRecordBatch to S3.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { startMoto, FAKE_CREDENTIALS, sdkV2CsmEnv } from './helpers/moto.mjs'
import { freeUdpPort, sendDatagrams } from './helpers/ports.mjs'
import { lambdaContext, memoryLogger } from './helpers/lambda.mjs'
import { createDeliveryStream, deliveredRecords } from './helpers/firehose.mjs'
import { onlyCall, assertNoSecrets } from './helpers/records.mjs'

const require = createRequire(import.meta.url)
let moto, AWS, ApiCallRecorder, Recorder, dir, s3

before(async () => {
  moto = await startMoto()
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-fh-'))
  Object.assign(process.env, await sdkV2CsmEnv(dir, { AWS_ENDPOINT_URL_FIREHOSE: moto.endpoint }))
  AWS = require('aws-sdk')
  ;({ ApiCallRecorder, Recorder } = require('../index.js'))
  ;({ s3 } = await createDeliveryStream(AWS, moto.endpoint, { bucket: 'recordings', stream: 'api-calls' }))
  await createDeliveryStream(AWS, moto.endpoint, { bucket: 'bulk', stream: 'bulk' })
})

after(async () => {
  await moto?.stop()
  fs.rmSync(dir, { recursive: true, force: true })
})

test('a wrapped handler\'s calls arrive in S3 through Firehose, with context and without secrets', async () => {
  const logger = memoryLogger()
  const config = { endpoint: moto.endpoint, region: 'us-west-2', s3ForcePathStyle: true }
  const handler = ApiCallRecorder(async () => {
    await new AWS.STS(config).getCallerIdentity().promise()
    await new AWS.S3(config).listObjectsV2({ Bucket: 'recordings' }).promise()
    return 'delivered'
  }, { enabled: true, deliveryStreamName: 'api-calls', logger })
  const context = lambdaContext({ functionName: 'checkout' })
  assert.equal(await handler({}, context), 'delivered')
  const second = lambdaContext({ functionName: 'checkout' })
  assert.equal(await handler({}, second), 'delivered')
  assert.deepEqual(logger.warnings, [])

  const { records, objects } = await deliveredRecords(s3, 'recordings')
  assertNoSecrets(JSON.stringify(records), 'delivered records')
  const first = records.filter((r) => r.awsRequestId === context.awsRequestId)
  assert.equal(first.length, 4)
  assert.equal(onlyCall(first, 'STS', 'GetCallerIdentity').FinalHttpStatusCode, 200)
  assert.equal(onlyCall(first, 'S3', 'ListObjectsV2').FinalHttpStatusCode, 200)
  assert.ok(first.every((r) => r.functionName === 'checkout' && r.phase === 'invoke' && r.coldStart === true))
  assert.equal(records.filter((r) => r.awsRequestId === second.awsRequestId && r.coldStart === false).length, 4)
  // The recorder's own PutRecordBatch calls are not among the recorded calls.
  assert.equal(records.filter((r) => r.Api === 'PutRecordBatch').length, 0)
  assert.equal(objects, 2, 'one PutRecordBatch per invocation')
})

test('10,000 records in one flush reach S3 in batches of at most 500', async () => {
  const recorder = new Recorder({ port: 0, deliveryStreamName: 'bulk' })
  for (let i = 0; i < 10_000; i++) {
    recorder.ingest(JSON.stringify({ Type: 'ApiCall', Service: 'DynamoDB', Api: 'GetItem', Latency: i, Version: 1 }))
  }
  const report = await recorder.flush({ drainMs: 0 })
  assert.deepEqual([report.records, report.delivered, report.failed, report.requests], [10_000, 10_000, 0, 20])
  const { records, objects } = await deliveredRecords(s3, 'bulk')
  assert.equal(objects, 20)
  assert.deepEqual(records.map((r) => r.Latency).sort((a, b) => a - b), Array.from({ length: 10_000 }, (_, i) => i))
  const stats = recorder.stats()
  assert.deepEqual([stats.delivered, stats.failed, stats.requests], [10_000, 0, 20])
})

test('an unknown delivery stream is one warning; the handler result is unchanged and nothing hangs', async () => {
  const logger = memoryLogger()
  const port = await freeUdpPort()
  const call = '{"Type":"ApiCall","Service":"STS","Api":"GetCallerIdentity","FinalHttpStatusCode":200}'
  const handler = ApiCallRecorder(async () => {
    await sendDatagrams(port, [call])
    return 42
  }, { enabled: true, port, deliveryStreamName: 'no-such-stream', logger, flushTimeoutMs: 3000 })
  const started = Date.now()
  assert.equal(await handler({}, lambdaContext()), 42)
  assert.ok(Date.now() - started < 3000)
  assert.equal(logger.warnings.length, 1)
  assert.match(logger.warnings[0], /1 of 1 recorded calls were not delivered: firehose sink: .*no-such-stream/)
})
