// Records a real SDK's calls, locally: a moto server stands in for AWS on 127.0.0.1, aws-sdk v2
// (with Client-Side Monitoring on) calls STS, S3 and DynamoDB through a wrapped handler, and the
// recorder writes what it saw to a JSON Lines file. No AWS account is needed.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { startMoto, FAKE_CREDENTIALS } from '../__test__/helpers/moto.mjs'
import { freeUdpPort, freeTcpPort } from '../__test__/helpers/ports.mjs'

const require = createRequire(import.meta.url)
const output = path.resolve(process.argv[2] ?? path.join(os.tmpdir(), `api-calls-${process.pid}.jsonl`))

let moto
try {
  moto = await startMoto()
} catch (error) {
  console.error(`Cannot start moto_server (${error.message}).\nInstall it with: pip install "moto[server]"`)
  process.exit(1)
}

try {
  // The SDK reads its CSM settings when it is loaded, so they go into the environment first.
  Object.assign(process.env, FAKE_CREDENTIALS, {
    AWS_CSM_ENABLED: 'true',
    AWS_CSM_PORT: String(await freeUdpPort()),
    AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1',
  })
  const AWS = require('aws-sdk')
  const ApiCallRecorder = require('../index.js')
  const config = { endpoint: moto.endpoint, region: 'us-west-2', s3ForcePathStyle: true }

  const handler = ApiCallRecorder(async () => {
    const s3 = new AWS.S3(config)
    const ddb = new AWS.DynamoDB(config)
    await new AWS.STS(config).getCallerIdentity().promise()
    await s3.createBucket({ Bucket: 'demo', CreateBucketConfiguration: { LocationConstraint: 'us-west-2' } }).promise()
    await s3.putObject({ Bucket: 'demo', Key: 'hello.txt', Body: 'hello' }).promise()
    await s3.getObject({ Bucket: 'demo', Key: 'missing.txt' }).promise().catch(() => {})
    await ddb.createTable({
      TableName: 'demo', BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    }).promise()
    await ddb.putItem({ TableName: 'demo', Item: { pk: { S: 'hello' } } }).promise()
    // Nothing listens here: the SDK retries, and the recorder shows each attempt.
    const closed = `http://127.0.0.1:${await freeTcpPort()}`
    await new AWS.STS({ ...config, endpoint: closed, maxRetries: 2, retryDelayOptions: { base: 20 } })
      .getCallerIdentity().promise().catch(() => {})
    return { statusCode: 200 }
  }, { enabled: true, file: output })

  const result = await handler({}, { functionName: 'demo', functionVersion: '$LATEST', awsRequestId: 'demo-request-1' })
  const records = fs.readFileSync(output, 'utf8').trim().split('\n').map((line) => JSON.parse(line))
  console.log(`Handler returned ${JSON.stringify(result)}. Recorded ${records.length} events:`)
  console.table(records.map((r) => ({
    type: r.Type,
    service: r.Service,
    api: r.Api,
    status: r.HttpStatusCode ?? r.FinalHttpStatusCode ?? '-',
    attempts: r.AttemptCount ?? '',
    'latency ms': r.Latency ?? r.AttemptLatency,
    error: r.FinalAwsException ?? r.AwsException ?? r.FinalSdkException ?? r.SdkException ?? '',
  })))
  console.log(`Full records (JSON Lines): ${output}`)
} finally {
  await moto.stop()
}
