// Records a real SDK's calls, locally: a moto server stands in for AWS on 127.0.0.1, a wrapped
// handler calls STS, S3 and DynamoDB with the v3 SDK (@aws-sdk/client-*) and then with aws-sdk v2,
// and the recorder writes what it saw to a JSON Lines file. No AWS account is needed.
//
//   npm run demo [-- OUTPUT.jsonl]
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { startMoto, freeTcpPort, freeUdpPort, FAKE_CREDENTIALS } from '../scripts/local-aws.mjs'

const require = createRequire(import.meta.url)
const output = path.resolve(process.argv[2] ?? path.join(os.tmpdir(), `api-calls-${process.pid}.jsonl`))
const REGION = 'us-west-2'

let moto
try {
  moto = await startMoto()
} catch (error) {
  console.error(`Cannot start moto_server (${error.message}).\nInstall it with: pip install -r requirements.txt`)
  process.exit(1)
}

try {
  // aws-sdk v2 reads its Client-Side Monitoring settings when it is loaded, so they go into the
  // environment first. The v3 clients need nothing: ApiCallRecorder instruments them itself.
  Object.assign(process.env, FAKE_CREDENTIALS, {
    AWS_CSM_ENABLED: 'true',
    AWS_CSM_PORT: String(await freeUdpPort()),
    AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1',
  })
  const ApiCallRecorder = require('../index.js')
  const closedEndpoint = `http://127.0.0.1:${await freeTcpPort()}`

  const handler = ApiCallRecorder(async () => {
    await callsWithSdkV3(moto.endpoint, closedEndpoint)
    await callsWithSdkV2(moto.endpoint)
    return { statusCode: 200 }
  }, { enabled: true, file: output })

  const result = await handler({}, { functionName: 'demo', functionVersion: '$LATEST', awsRequestId: 'demo-request-1' })
  const records = fs.readFileSync(output, 'utf8').trim().split('\n').map((line) => JSON.parse(line))
  console.log(`Handler returned ${JSON.stringify(result)}. Recorded ${records.length} events:`)
  console.table(records.map((r) => ({
    sdk: (r.UserAgent ?? '').startsWith('aws-sdk-js/3') ? 'v3' : 'v2',
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

/** The v3 SDK, as every current Node.js Lambda runtime ships it. */
async function callsWithSdkV3(endpoint, closedEndpoint) {
  const { STSClient, GetCallerIdentityCommand } = require('@aws-sdk/client-sts')
  const { S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand } = require('@aws-sdk/client-s3')
  const { DynamoDBClient, CreateTableCommand, PutItemCommand } = require('@aws-sdk/client-dynamodb')
  const { ConfiguredRetryStrategy } = require('@smithy/core/retry')
  const config = { endpoint, region: REGION }
  const s3 = new S3Client({ ...config, forcePathStyle: true })
  const ddb = new DynamoDBClient(config)

  await new STSClient(config).send(new GetCallerIdentityCommand({}))
  await s3.send(new CreateBucketCommand({ Bucket: 'demo', CreateBucketConfiguration: { LocationConstraint: REGION } }))
  await s3.send(new PutObjectCommand({ Bucket: 'demo', Key: 'hello.txt', Body: 'hello' }))
  await s3.send(new GetObjectCommand({ Bucket: 'demo', Key: 'missing.txt' })).catch(() => {}) // a 404
  await ddb.send(new CreateTableCommand({
    TableName: 'demo', BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
    KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
  }))
  await ddb.send(new PutItemCommand({ TableName: 'demo', Item: { pk: { S: 'hello' } } }))
  // Nothing listens here: the SDK tries three times, and the recorder shows each attempt.
  const unreachable = new STSClient({ ...config, endpoint: closedEndpoint, retryStrategy: new ConfiguredRetryStrategy(3, 20) })
  await unreachable.send(new GetCallerIdentityCommand({})).catch(() => {})
}

/** aws-sdk v2 (past its end of support, still in many functions): it reports over CSM itself. */
async function callsWithSdkV2(endpoint) {
  const AWS = require('aws-sdk')
  const config = { endpoint, region: REGION, s3ForcePathStyle: true }
  await new AWS.STS(config).getCallerIdentity().promise()
  await new AWS.S3(config).listObjectsV2({ Bucket: 'demo' }).promise()
  await new AWS.DynamoDB(config).getItem({ TableName: 'demo', Key: { pk: { S: 'hello' } } }).promise()
}
