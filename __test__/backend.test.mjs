// End to end through the backend in backend/: package the Serverless stack offline, deploy it into a
// moto server on loopback, record a wrapped handler's real aws-sdk v2 calls with the Firehose sink,
// and query the objects Firehose delivered with DuckDB, using the Athena query of backend/README.md.
//
// Needs `npm ci --prefix backend` (the Serverless Framework) and Python's `duckdb` and `moto[server]`.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { FAKE_CREDENTIALS, startMoto } from './helpers/moto.mjs'
import { freeUdpPort } from './helpers/ports.mjs'
import { lambdaContext, memoryLogger } from './helpers/lambda.mjs'

const run = promisify(execFile)
const require = createRequire(import.meta.url)
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const BACKEND = path.join(ROOT, 'backend')
const STAGE = 'dev'
const REGION = FAKE_CREDENTIALS.AWS_REGION
const STACK_NAME = `api-call-recorder-backend-${STAGE}`
/** The function name the README's query filters on. */
const FUNCTION_NAME = `api-call-recorder-example-${STAGE}-test`
const STEP_TIMEOUT_MS = 30_000

/** The fields of a delivered record, as the recorder writes them. */
const RECORD_FIELDS = [
  'Version', 'ClientId', 'Type', 'Service', 'Api', 'Timestamp', 'AttemptCount', 'Latency',
  'MaxRetriesExceeded', 'FinalHttpStatusCode', 'FinalAwsException', 'FinalAwsExceptionMessage',
  'FinalSdkException', 'FinalSdkExceptionMessage', 'Region', 'UserAgent', 'Fqdn', 'AttemptLatency',
  'HttpStatusCode', 'AccessKey', 'XAmznRequestId', 'XAmzRequestId', 'XAmzId2', 'AwsException',
  'AwsExceptionMessage', 'SdkException', 'SdkExceptionMessage',
  'Resources', 'functionName', 'functionVersion', 'awsRequestId', 'candidateRequestIds', 'phase', 'coldStart', 'recordedAt',
]

// moto 5 deploys these resource types through CloudFormation. Its CloudFormation skips the others
// and fails on outputs that use them, so the test creates those through their service APIs with the
// template's own properties.
const CLOUDFORMATION_TYPES = new Set(['AWS::S3::Bucket', 'AWS::IAM::Role', 'AWS::IAM::ManagedPolicy', 'AWS::Logs::LogGroup'])

let moto
let tmp
let AWS
let clients
let template
let exampleTemplate
/** logicalId -> { ref, attributes } of what was deployed. */
const physical = new Map()
let outputs
let delivered

function client(Service, options = {}) {
  return new Service({ endpoint: moto.endpoint, region: REGION, maxRetries: 0, ...options })
}

/** Resolves Ref, Fn::GetAtt, Fn::Join and Fn::Sub against the deployed resources. */
function resolve(value, pseudo) {
  if (Array.isArray(value)) return value.map((item) => resolve(item, pseudo))
  if (value === null || typeof value !== 'object') return value
  const keys = Object.keys(value)
  if (keys.length === 1 && keys[0] === 'Ref') {
    const name = value.Ref
    if (name in pseudo) return pseudo[name]
    assert.ok(physical.has(name), `Ref to ${name}, which is not deployed yet`)
    return physical.get(name).ref
  }
  if (keys.length === 1 && keys[0] === 'Fn::GetAtt') {
    const [name, attribute] = value['Fn::GetAtt']
    const found = physical.get(name)?.attributes?.[attribute]
    assert.ok(found !== undefined, `Fn::GetAtt ${name}.${attribute} is not known`)
    return found
  }
  if (keys.length === 1 && keys[0] === 'Fn::Join') {
    const [separator, parts] = value['Fn::Join']
    return resolve(parts, pseudo).join(separator)
  }
  if (keys.length === 1 && keys[0] === 'Fn::Sub') {
    return value['Fn::Sub'].replace(/\$\{([^}]+)\}/g, (_, name) => String(resolve({ Ref: name }, pseudo)))
  }
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, resolve(item, pseudo)]))
}

/** Replaces Ref and Fn::GetAtt to the given resources with their values, leaving the rest. */
function inline(value, logicalIds) {
  if (Array.isArray(value)) return value.map((item) => inline(item, logicalIds))
  if (value === null || typeof value !== 'object') return value
  if (typeof value.Ref === 'string' && logicalIds.has(value.Ref)) return physical.get(value.Ref).ref
  const getAtt = value['Fn::GetAtt']
  if (Array.isArray(getAtt) && logicalIds.has(getAtt[0])) return physical.get(getAtt[0]).attributes[getAtt[1]]
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, inline(item, logicalIds)]))
}

function references(value, found = new Set()) {
  if (Array.isArray(value)) value.forEach((item) => references(item, found))
  else if (value !== null && typeof value === 'object') {
    if (typeof value.Ref === 'string') found.add(value.Ref)
    if (Array.isArray(value['Fn::GetAtt'])) found.add(value['Fn::GetAtt'][0])
    Object.values(value).forEach((item) => references(item, found))
  }
  return found
}

/** What each API-created resource's Ref and attributes will be: its names are literals in the template. */
function plannedIdentity(type, props, pseudo) {
  switch (type) {
    case 'AWS::KinesisFirehose::DeliveryStream':
      return {
        ref: props.DeliveryStreamName,
        attributes: {
          Arn: `arn:aws:firehose:${pseudo['AWS::Region']}:${pseudo['AWS::AccountId']}:deliverystream/${props.DeliveryStreamName}`,
        },
      }
    case 'AWS::Logs::LogStream': return { ref: props.LogStreamName }
    case 'AWS::Glue::Database': return { ref: props.DatabaseInput.Name }
    case 'AWS::Glue::Table': return { ref: props.TableInput.Name }
    case 'AWS::Athena::WorkGroup': return { ref: props.Name }
    case 'AWS::S3::BucketPolicy': return { ref: undefined }
    default: throw new Error(`no way to create ${type} in moto: add it here`)
  }
}

/** Creates one resource the way CloudFormation would, through its service API. */
async function createThroughApi(type, props) {
  switch (type) {
    case 'AWS::S3::BucketPolicy': {
      const request = clients.s3.putBucketPolicy({ Bucket: props.Bucket, Policy: JSON.stringify(props.PolicyDocument) })
      // moto answers 200 with the body "True", which the SDK fails to parse as XML. The status is
      // what counts; the policy is read back later.
      return request.promise().catch((error) => {
        if (request.response.httpResponse.statusCode !== 200) throw error
      })
    }
    case 'AWS::Logs::LogStream':
      return clients.logs.createLogStream({ logGroupName: props.LogGroupName, logStreamName: props.LogStreamName }).promise()
    case 'AWS::KinesisFirehose::DeliveryStream':
      return clients.firehose.createDeliveryStream(props).promise()
    case 'AWS::Glue::Database':
      return clients.glue.createDatabase(props).promise()
    case 'AWS::Glue::Table':
      return clients.glue.createTable(props).promise()
    case 'AWS::Athena::WorkGroup':
      return clients.athena.createWorkGroup({
        Name: props.Name, Description: props.Description, Configuration: props.WorkGroupConfiguration,
      }).promise()
    default: throw new Error(`no way to create ${type} in moto: add it here`)
  }
}

/** The logical ids in an order where each comes after the resources it refers to. */
function dependencyOrder(resources) {
  const ordered = []
  const seen = new Set()
  const visit = (id) => {
    if (seen.has(id)) return
    seen.add(id)
    for (const other of references(resources[id].Properties ?? {})) if (other in resources) visit(other)
    for (const other of [resources[id].DependsOn ?? []].flat()) visit(other)
    ordered.push(id)
  }
  Object.keys(resources).forEach(visit)
  return ordered
}

/** Runs the first sql block of backend/README.md that contains `marker` in DuckDB over `dir`. */
async function duckdbQuery(dir, marker) {
  const readme = await fs.readFile(path.join(BACKEND, 'README.md'), 'utf8')
  const query = [...readme.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]).find((sql) => sql.includes(marker))
  assert.ok(query, `backend/README.md has a sql block with ${marker}`)
  const script = [
    'import duckdb, json, sys',
    'con = duckdb.connect()',
    'con.execute(open(sys.argv[1]).read())',
    'result = con.execute(sys.argv[2])',
    'names = [d[0].lower() for d in result.description]',
    'print(json.dumps([dict(zip(names, row)) for row in result.fetchall()], default=str))',
  ].join('\n')
  const { stdout } = await run('python3', ['-c', script, path.join(BACKEND, 'duckdb', 'calls.sql'), query], {
    cwd: dir, timeout: STEP_TIMEOUT_MS,
  })
  return JSON.parse(stdout)
}

function serverlessPackage(cwd, outDir, extraArgs = []) {
  const bin = path.join(BACKEND, 'node_modules', '.bin', 'serverless')
  return run(bin, ['package', '--stage', STAGE, '--region', REGION, '--package', outDir, ...extraArgs], {
    cwd,
    timeout: STEP_TIMEOUT_MS,
    // Offline: fake credentials, no telemetry. Nothing here may reach AWS.
    env: { ...process.env, ...FAKE_CREDENTIALS, SLS_TELEMETRY_DISABLED: '1', SLS_NOTIFICATIONS_MODE: 'off' },
  })
}

before(async () => {
  await fs.access(path.join(BACKEND, 'node_modules', '.bin', 'serverless'))
    .catch(() => assert.fail('the backend is not installed: run `npm ci --prefix backend`'))
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'recorder-backend-'))
  const [started] = await Promise.all([
    startMoto(),
    serverlessPackage(BACKEND, path.join(tmp, 'backend')),
    serverlessPackage(path.join(BACKEND, 'example'), path.join(tmp, 'example'), [
      '--param=recorderPolicyArn=arn:aws:iam::123456789012:policy/recorder',
      '--param=deliveryStreamName=recorder-stream',
    ]),
  ])
  moto = started
  // aws-sdk v2 reads the CSM settings when it is required, so they are set first. The recorder's
  // Firehose sink reads the endpoint, region and credentials from the standard variables.
  const csmPort = await freeUdpPort()
  Object.assign(process.env, FAKE_CREDENTIALS, {
    AWS_CSM_ENABLED: 'true', AWS_CSM_PORT: String(csmPort), AWS_ENDPOINT_URL_FIREHOSE: moto.endpoint,
    AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1',
  })
  template = JSON.parse(await fs.readFile(path.join(tmp, 'backend', 'cloudformation-template-update-stack.json'), 'utf8'))
  exampleTemplate = JSON.parse(await fs.readFile(path.join(tmp, 'example', 'cloudformation-template-update-stack.json'), 'utf8'))
  AWS = require('aws-sdk')
  clients = {
    cloudformation: client(AWS.CloudFormation),
    firehose: client(AWS.Firehose),
    glue: client(AWS.Glue),
    athena: client(AWS.Athena),
    logs: client(AWS.CloudWatchLogs),
    iam: client(AWS.IAM),
    sts: client(AWS.STS),
    s3: client(AWS.S3, { s3ForcePathStyle: true }),
    dynamodb: client(AWS.DynamoDB),
  }
})

after(async () => {
  await moto?.stop()
  if (tmp) await fs.rm(tmp, { recursive: true, force: true })
})

test('the packaged backend is private, encrypted and expires what it stores', () => {
  const resources = template.Resources
  const bucket = resources.ApiCallsBucket.Properties
  assert.deepEqual(bucket.PublicAccessBlockConfiguration, {
    BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true,
  })
  assert.equal(bucket.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm, 'AES256')
  assert.equal(bucket.LifecycleConfiguration.Rules[0].ExpirationInDays, 90)
  const tlsOnly = resources.ApiCallsBucketPolicy.Properties.PolicyDocument.Statement[0]
  assert.deepEqual([tlsOnly.Effect, tlsOnly.Condition], ['Deny', { Bool: { 'aws:SecureTransport': 'false' } }])
  const destination = resources.ApiCallRecorderDeliveryStream.Properties.ExtendedS3DestinationConfiguration
  assert.equal(destination.CompressionFormat, 'GZIP')
  assert.equal(destination.Prefix, 'calls/date=!{timestamp:yyyy-MM-dd}/')
  assert.equal(destination.CloudWatchLoggingOptions.Enabled, true)
})

test('the example packages offline, on nodejs22.x, with the recorder policy attached', () => {
  const fn = exampleTemplate.Resources.TestLambdaFunction.Properties
  assert.equal(fn.Runtime, 'nodejs22.x')
  assert.equal(fn.Environment.Variables.API_CALL_RECORDER_DELIVERY_STREAM_NAME, 'recorder-stream')
  assert.deepEqual(exampleTemplate.Resources.IamRoleLambdaExecution.Properties.ManagedPolicyArns,
    ['arn:aws:iam::123456789012:policy/recorder'])
})

test('the template deploys into moto', { timeout: STEP_TIMEOUT_MS }, async () => {
  const { Account } = await clients.sts.getCallerIdentity({}).promise()
  const pseudo = {
    'AWS::AccountId': Account, 'AWS::Region': REGION, 'AWS::Partition': 'aws', 'AWS::StackName': STACK_NAME,
    'AWS::URLSuffix': 'amazonaws.com',
  }
  const resources = template.Resources
  const viaApi = Object.keys(resources).filter((id) => !CLOUDFORMATION_TYPES.has(resources[id].Type))
  for (const id of viaApi) {
    physical.set(id, plannedIdentity(resources[id].Type, resources[id].Properties, pseudo))
  }
  // 1. Everything moto's CloudFormation supports, in one stack, with references to the rest inlined.
  const apiIds = new Set(viaApi)
  const stackTemplate = {
    ...template,
    Resources: Object.fromEntries(Object.entries(resources)
      .filter(([id]) => !apiIds.has(id))
      .map(([id, resource]) => [id, inline(resource, apiIds)])),
    Outputs: inline(template.Outputs, apiIds),
  }
  await clients.cloudformation.createStack({
    StackName: STACK_NAME, TemplateBody: JSON.stringify(stackTemplate), Capabilities: ['CAPABILITY_IAM'],
  }).promise()
  const [stack] = (await clients.cloudformation.describeStacks({ StackName: STACK_NAME }).promise()).Stacks
  assert.equal(stack.StackStatus, 'CREATE_COMPLETE', stack.StackStatusReason)
  const summaries = (await clients.cloudformation.listStackResources({ StackName: STACK_NAME }).promise()).StackResourceSummaries
  for (const { LogicalResourceId: id, PhysicalResourceId: ref, ResourceType: type } of summaries) {
    const attributes = {}
    if (type === 'AWS::S3::Bucket') attributes.Arn = `arn:aws:s3:::${ref}`
    if (type === 'AWS::IAM::Role') attributes.Arn = (await clients.iam.getRole({ RoleName: ref }).promise()).Role.Arn
    physical.set(id, { ref, attributes })
  }
  assert.deepEqual(summaries.map((s) => s.LogicalResourceId).sort(),
    Object.keys(stackTemplate.Resources).sort(), 'moto created every resource of the stack')

  // 2. The rest through their APIs, with the template's properties.
  for (const id of dependencyOrder(resources).filter((each) => apiIds.has(each))) {
    await createThroughApi(resources[id].Type, resolve(resources[id].Properties, pseudo))
  }
  outputs = Object.fromEntries(stack.Outputs.map((o) => [o.OutputKey, o.OutputValue]))

  // The outputs aws-lambda-api-call-recorder's README refers to, pointing at the real stream.
  const stream = (await clients.firehose.describeDeliveryStream({
    DeliveryStreamName: outputs.ApiCallRecorderDeliveryStreamName,
  }).promise()).DeliveryStreamDescription
  assert.equal(outputs.ApiCallRecorderDeliveryStreamName, STACK_NAME)
  const exports = (await clients.cloudformation.listExports({}).promise()).Exports
  assert.equal(exports.find((e) => e.Name === `${STACK_NAME}-DeliveryStreamArn`)?.Value, stream.DeliveryStreamARN)
  assert.equal(outputs.ApiCallRecorderDeliveryStreamArn, stream.DeliveryStreamARN)
  const s3Destination = stream.Destinations[0].ExtendedS3DestinationDescription
  assert.equal(s3Destination.BucketARN, `arn:aws:s3:::${outputs.ApiCallRecorderBucketName}`)
  assert.equal(s3Destination.CompressionFormat, 'GZIP')

  // The managed policy allows sending to this stream and nothing else.
  const policy = (await clients.iam.getPolicy({ PolicyArn: outputs.ApiCallRecorderPolicyArn }).promise()).Policy
  const version = (await clients.iam.getPolicyVersion({
    PolicyArn: policy.Arn, VersionId: policy.DefaultVersionId,
  }).promise()).PolicyVersion
  const document = JSON.parse(decodeURIComponent(version.Document))
  assert.deepEqual(document.Statement, [{ Effect: 'Allow', Action: 'firehose:PutRecordBatch', Resource: stream.DeliveryStreamARN }])

  const encryption = (await clients.s3.getBucketEncryption({ Bucket: outputs.ApiCallRecorderBucketName }).promise())
  assert.equal(encryption.ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault.SSEAlgorithm, 'AES256')
  const bucketPolicy = JSON.parse((await clients.s3.getBucketPolicy({ Bucket: outputs.ApiCallRecorderBucketName }).promise()).Policy)
  assert.deepEqual(bucketPolicy.Statement[0].Resource,
    [`arn:aws:s3:::${outputs.ApiCallRecorderBucketName}`, `arn:aws:s3:::${outputs.ApiCallRecorderBucketName}/*`])
  assert.deepEqual(bucketPolicy.Statement[0].Condition, { Bool: { 'aws:SecureTransport': 'false' } })

  // The Glue table has a column for every field the recorder writes, and projects `date`.
  const table = (await clients.glue.getTable({ DatabaseName: `api_calls_${STAGE}`, Name: 'calls' }).promise()).Table
  assert.deepEqual(table.StorageDescriptor.Columns.map((c) => c.Name).sort(), RECORD_FIELDS.map((f) => f.toLowerCase()).sort())
  assert.deepEqual(table.PartitionKeys.map((k) => k.Name), ['date'])
  assert.equal(table.StorageDescriptor.SerdeInfo.SerializationLibrary, 'org.openx.data.jsonserde.JsonSerDe')
  assert.equal(table.Parameters['projection.enabled'], 'true')
  assert.equal(table.Parameters['storage.location.template'],
    `s3://${outputs.ApiCallRecorderBucketName}/calls/date=\${date}/`)
})

test('recorded calls are delivered through the stream into the bucket', { timeout: STEP_TIMEOUT_MS }, async () => {
  assert.ok(outputs, 'the stack is deployed')
  const ApiCallRecorder = require(ROOT)
  const dataBucket = 'handler-data'
  await clients.s3.createBucket({ Bucket: dataBucket }).promise()

  // Prepare: the function's own clients, and the wrapper bound to the CSM port.
  const s3 = client(AWS.S3, { s3ForcePathStyle: true })
  const sts = client(AWS.STS)
  const dynamodb = client(AWS.DynamoDB)
  const logger = memoryLogger()
  async function handler(event) {
    await sts.getCallerIdentity({}).promise()
    for (let i = 0; i < 3; i++) {
      await s3.putObject({ Bucket: dataBucket, Key: `${event.run}/${i}`, Body: 'x' }).promise()
    }
    const missing = await s3.getObject({ Bucket: dataBucket, Key: 'missing' }).promise().catch((e) => e)
    await sts.getCallerIdentity({}).promise()
    await dynamodb.listTables({}).promise()
    return { run: event.run, missing: missing.code }
  }
  const wrapped = ApiCallRecorder(handler, {
    enabled: true, deliveryStreamName: outputs.ApiCallRecorderDeliveryStreamName, logger,
  })

  // Act: two invocations, a cold and a warm one.
  const contexts = [lambdaContext({ functionName: FUNCTION_NAME }), lambdaContext({ functionName: FUNCTION_NAME })]
  assert.deepEqual(await wrapped({ run: 1 }, contexts[0]), { run: 1, missing: 'NoSuchKey' })
  assert.deepEqual(await wrapped({ run: 2 }, contexts[1]), { run: 2, missing: 'NoSuchKey' })
  assert.deepEqual(logger.warnings, [])

  // Assess: what moto's Firehose wrote (it neither gzips nor expands the !{timestamp:...} prefix).
  const listed = await clients.s3.listObjectsV2({ Bucket: outputs.ApiCallRecorderBucketName, Prefix: 'calls/' }).promise()
  assert.ok(listed.KeyCount > 0, 'Firehose delivered objects under calls/')
  // moto ignores policy conditions, so the bucket policy's TLS-only Deny stops every object read in
  // moto (real S3 lets TLS requests through). The policy was checked when the stack was deployed.
  await clients.s3.deleteBucketPolicy({ Bucket: outputs.ApiCallRecorderBucketName }).promise()
  const objects = []
  for (const { Key } of listed.Contents) {
    const body = (await clients.s3.getObject({ Bucket: outputs.ApiCallRecorderBucketName, Key }).promise()).Body
    objects.push({ key: Key, body: body.toString('utf8') })
  }
  const raw = objects.map((d) => d.body).join('')
  assert.ok(!raw.includes(FAKE_CREDENTIALS.AWS_SESSION_TOKEN), 'the session token is never delivered')
  assert.ok(raw.endsWith('\n'), 'every record ends with a newline')
  const records = raw.split('\n').filter(Boolean).map((line) => JSON.parse(line))
  const columns = new Set(RECORD_FIELDS)
  for (const record of records) {
    for (const key of Object.keys(record)) assert.ok(columns.has(key), `${key} has a Glue column`)
  }
  const calls = records.filter((r) => r.Type === 'ApiCall')
  assert.equal(calls.length, 14)
  assert.ok(records.filter((r) => r.Type === 'ApiCallAttempt').length >= 14)
  assert.deepEqual(contexts.map((c) => calls.filter((r) => r.awsRequestId === c.awsRequestId).length), [7, 7])
  assert.ok(calls.every((r) => r.functionName === FUNCTION_NAME && r.phase === 'invoke'))
  assert.deepEqual([...new Set(calls.filter((r) => r.awsRequestId === contexts[0].awsRequestId).map((r) => r.coldStart))], [true])
  assert.deepEqual([...new Set(calls.filter((r) => r.awsRequestId === contexts[1].awsRequestId).map((r) => r.coldStart))], [false])
  const notFound = calls.filter((r) => r.Api === 'GetObject')
  assert.deepEqual(notFound.map((r) => [r.FinalHttpStatusCode, r.FinalAwsException]), [[404, 'NoSuchKey'], [404, 'NoSuchKey']])
  delivered = objects
})

test('the README query gives the calls made, in DuckDB over the delivered objects', { timeout: STEP_TIMEOUT_MS }, async () => {
  assert.ok(delivered, 'records were delivered')
  const dir = path.join(tmp, 'query')
  for (const { key, body } of delivered) {
    await fs.mkdir(path.dirname(path.join(dir, key)), { recursive: true })
    await fs.writeFile(path.join(dir, key), body)
  }
  const rows = await duckdbQuery(dir, 'avg(latency)')
  const calls = delivered.flatMap((d) => d.body.split('\n').filter(Boolean).map((l) => JSON.parse(l)))
    .filter((r) => r.Type === 'ApiCall')
  const averageLatency = (service, api) => {
    const latencies = calls.filter((r) => r.Service === service && r.Api === api).map((r) => r.Latency)
    return latencies.reduce((a, b) => a + b, 0) / latencies.length
  }
  const byCall = (a, b) => `${a.service}.${a.api}`.localeCompare(`${b.service}.${b.api}`)
  assert.deepEqual(rows.map(({ service, api, call_cnt }) => ({ service, api, call_cnt })).sort(byCall), [
    { service: 'DynamoDB', api: 'ListTables', call_cnt: 2 },
    { service: 'S3', api: 'GetObject', call_cnt: 2 },
    { service: 'S3', api: 'PutObject', call_cnt: 6 },
    { service: 'STS', api: 'GetCallerIdentity', call_cnt: 4 },
  ])
  for (const row of rows) {
    assert.ok(Math.abs(row.avg_latency - averageLatency(row.service, row.api)) < 1e-9, `avg latency of ${row.api}`)
  }
})
