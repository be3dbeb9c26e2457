// Naming a v3 SDK call from its HTTP request alone (sdk-v3/operations.js and the table that
// scripts/generate-aws-operations.py writes), and what the HTTP layer records when it cannot.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const { identifyService, identifyOperation } = require('../sdk-v3/operations.js')
const { openIndexedLines } = require('../data/indexed-lines.js')
const { regionFromHostname } = require('../sdk-v3/fields.js')
const { Recorder, instrumentSdkV3 } = require('../index.js')
const { sdkV3Stats, settleHttpCalls } = require('../sdk-v3/index.js')

const op = (service, method, requestPath, extra = {}) =>
  identifyOperation(service, { method, requestPath, hostname: '127.0.0.1', headers: {}, ...extra })

test('the service comes from the user agent, else the target prefix, else an unshared signing name', () => {
  assert.equal(identifyService({ userAgent: 'aws-sdk-js/3.1 ua/2.1 api/s3#3.1 m/E' }), 'S3')
  assert.equal(identifyService({ userAgent: 'aws-sdk-js/3.1 api/secrets-manager#3.1' }), 'Secrets Manager')
  assert.equal(identifyService({ userAgent: 'aws-sdk-js/3.1 api/dynamodb-streams#3.1', signingName: 'dynamodb' }), 'DynamoDB Streams')
  assert.equal(identifyService({ target: 'DynamoDBStreams_20120810.GetRecords' }), 'DynamoDB Streams')
  assert.equal(identifyService({ signingName: 'sts' }), 'STS')
  // DynamoDB and DynamoDB Streams both sign as `dynamodb`: the name alone does not tell.
  assert.equal(identifyService({ signingName: 'dynamodb' }), undefined)
  assert.equal(identifyService({ userAgent: 'aws-sdk-js/3.1 api/no-such-service#3.1' }), undefined)
  assert.equal(identifyService({}), undefined)
})

test('unsigned requests take the region from a regional endpoint host name', () => {
  assert.equal(regionFromHostname('sts.eu-west-1.amazonaws.com'), 'eu-west-1')
  assert.equal(regionFromHostname('cognito-identity.us-gov-west-1.amazonaws.com'), 'us-gov-west-1')
  assert.equal(regionFromHostname('s3.cn-north-1.amazonaws.com.cn'), 'cn-north-1')
  assert.equal(regionFromHostname('bucket.s3.dualstack.ap-southeast-2.amazonaws.com'), 'ap-southeast-2')
  assert.equal(regionFromHostname('sts.amazonaws.com'), undefined)
  assert.equal(regionFromHostname('127.0.0.1'), undefined)
})

test('REST operations come from the HTTP bindings, the most specific one winning', () => {
  assert.equal(op('S3', 'PUT', '/bucket/'), 'CreateBucket')
  assert.equal(op('S3', 'GET', '/bucket/?list-type=2'), 'ListObjectsV2')
  assert.equal(op('S3', 'GET', '/bucket'), 'ListObjects')
  assert.equal(op('S3', 'GET', '/bucket?acl'), 'GetBucketAcl')
  assert.equal(op('S3', 'HEAD', '/bucket/a/b/c.txt'), 'HeadObject')
  assert.equal(op('S3', 'GET', '/bucket/key?uploadId=1'), 'ListParts')
  assert.equal(op('S3', 'DELETE', '/bucket/key?uploadId=1'), 'AbortMultipartUpload')
  // Same method and path: a required header tells CopyObject from PutObject.
  assert.equal(op('S3', 'PUT', '/bucket/key', { headers: { 'x-amz-copy-source': 'other/key' } }), 'CopyObject')
  assert.equal(op('S3', 'PUT', '/bucket/key'), 'PutObject')
  // The SDK's own x-id wins over the binding.
  assert.equal(op('S3', 'GET', '/bucket/key?x-id=GetObject'), 'GetObject')
  assert.equal(op('Lambda', 'GET', '/2015-03-31/functions/my-function'), 'GetFunction')
  assert.equal(op('Lambda', 'GET', '/2015-03-31/functions/'), 'ListFunctions')
  assert.equal(op('Lambda', 'POST', '/2015-03-31/functions/my-function/invocations'), 'Invoke')
  assert.equal(op('API Gateway', 'GET', '/restapis/abc/resources'), 'GetResources')
})

test('a deprecated operation bound like a current one gives way to it', () => {
  // GetBucketLifecycle and GetBucketLifecycleConfiguration are both `GET /{Bucket}?lifecycle`.
  assert.equal(op('S3', 'GET', '/bucket?lifecycle'), 'GetBucketLifecycleConfiguration')
  assert.equal(op('S3', 'PUT', '/bucket?lifecycle'), 'PutBucketLifecycleConfiguration')
  assert.equal(op('S3', 'GET', '/bucket?notification'), 'GetBucketNotificationConfiguration')
  assert.equal(op('S3', 'GET', '/?lifecycle', { hostname: 'bucket.s3.amazonaws.com' }), 'GetBucketLifecycleConfiguration')
})

test('S3 buckets in the host name are matched without the bucket in the path', () => {
  const host = (hostname) => ({ hostname })
  assert.equal(op('S3', 'GET', '/key?uploadId=1', host('bucket.s3.us-west-2.amazonaws.com')), 'ListParts')
  assert.equal(op('S3', 'HEAD', '/key', host('bucket.s3.us-west-2.amazonaws.com')), 'HeadObject')
  assert.equal(op('S3', 'HEAD', '/key', host('s3.us-west-2.amazonaws.com')), 'HeadBucket')
  // A custom host name could be either style; where the two readings disagree, nothing is guessed.
  assert.equal(op('S3', 'HEAD', '/key', host('storage.example.com')), undefined)
  assert.equal(op('S3', 'GET', '/key?x-id=GetObject', host('storage.example.com')), 'GetObject')
})

test('where the bindings do not decide, the operation is unknown', () => {
  // ListBuckets and ListDirectoryBuckets are both `GET /`.
  assert.equal(op('S3', 'GET', '/', { hostname: 's3.amazonaws.com' }), undefined)
  assert.equal(op('S3', 'PATCH', '/bucket/key'), undefined)
  assert.equal(op('Lambda', 'GET', '/no/such/path'), undefined)
  assert.equal(op(undefined, 'POST', '/', { headers: { 'x-amz-target': 'X.Y' } }), undefined)
})

test('JSON, query and RPC v2 protocols name the operation in the request', () => {
  assert.equal(op('DynamoDB', 'POST', '/', { headers: { 'x-amz-target': 'DynamoDB_20120810.PutItem' } }), 'PutItem')
  assert.equal(op('STS', 'POST', '/', { formAction: 'AssumeRole' }), 'AssumeRole')
  assert.equal(op('CloudWatch', 'POST', '/service/GraniteServiceVersion20100801/operation/GetMetricData',
    { headers: { 'smithy-protocol': 'rpc-v2-cbor' } }), 'GetMetricData')
  // A form body names nothing for a REST service (an upload may be form-encoded).
  assert.equal(op('S3', 'PATCH', '/bucket/key', { formAction: 'DeleteBucket' }), undefined)
})

test('every binding in the table reads as method, path pattern, operation, found at its indexed line', () => {
  const table = openIndexedLines('aws-operations.jsonl', require('../data/aws-operations.index.js'))
  const { services, botocoreVersion } = table.header
  assert.ok(services.length > 300, 'all of botocore, not a sample')
  assert.ok(table.keys().length > 200, 'every REST service')
  assert.match(botocoreVersion, /^\d+\.\d+\.\d+$/)
  for (const [serviceId, signingName, targetPrefix] of services) {
    assert.equal(typeof signingName, 'string', serviceId)
    assert.ok(targetPrefix === undefined || typeof targetPrefix === 'string', serviceId)
  }
  const serviceIds = new Set(services.map(([serviceId]) => serviceId))
  for (const serviceId of table.keys()) {
    assert.ok(serviceIds.has(serviceId), serviceId)
    // entry() reads the line at the indexed offset and checks it is that service's.
    for (const line of table.entry(serviceId).rest) {
      assert.match(line, /^(GET|PUT|POST|DELETE|HEAD|PATCH|OPTIONS) \/\S* [A-Za-z0-9]+( [qh]:\S+)*$/, `${serviceId}: ${line}`)
    }
  }
})

test('the committed table is what the script writes from the installed botocore', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-ops-'))
  try {
    const out = path.join(dir, 'ops.jsonl')
    execFileSync('python3', [path.join(ROOT, 'scripts', 'generate-aws-operations.py'), out], { stdio: 'pipe' })
    const fresh = fs.readFileSync(out, 'utf8')
    const committed = fs.readFileSync(path.join(ROOT, 'data', 'aws-operations.jsonl'), 'utf8')
    const version = (text) => JSON.parse(text.slice(0, text.indexOf('\n'))).botocoreVersion
    if (version(fresh) !== version(committed)) {
      t.skip(`botocore ${version(fresh)} is installed, the table is from ${version(committed)}`)
      return
    }
    assert.equal(fresh, committed)
    assert.equal(fs.readFileSync(path.join(dir, 'ops.index.js'), 'utf8').replace('ops.jsonl', 'aws-operations.jsonl'),
      fs.readFileSync(path.join(ROOT, 'data', 'aws-operations.index.js'), 'utf8'))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

// ---------------------------------------------------------------------------------------------
// What the HTTP layer records for requests it cannot name, or must not record.

let server, recorder, instrumentation, endpoint
const received = []

before(async () => {
  server = http.createServer((request, response) => {
    const chunks = []
    request.on('data', (chunk) => chunks.push(chunk))
    request.on('end', () => {
      received.push(Buffer.concat(chunks).toString())
      response.writeHead(200, { 'content-type': 'text/xml', 'x-amzn-requestid': 'req-1' })
      response.end('<Ok/>')
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  endpoint = { host: '127.0.0.1', port: server.address().port }
  recorder = new Recorder({ port: 0, sink: 'none' })
  recorder.start()
  instrumentation = instrumentSdkV3({ recorder, http: true })
})

after(async () => {
  instrumentation?.stop()
  await recorder?.stop()
  await new Promise((resolve) => server.close(resolve))
})

/** One request as the v3 SDK sends it (its headers), the body written in the chunks given. */
function send({ method = 'POST', path: requestPath = '/', headers = {}, chunks = [] }) {
  return new Promise((resolve, reject) => {
    const request = http.request({ ...endpoint, method, path: requestPath, headers }, (response) => {
      response.resume()
      response.on('end', resolve)
    })
    request.on('error', reject)
    for (const chunk of chunks.slice(0, -1)) request.write(chunk)
    request.end(chunks.at(-1))
  })
}

const v3Headers = (service, signingName, id) => ({
  'user-agent': `aws-sdk-js/3.1172.0 ua/2.1 lang/js api/${service}#3.1172.0`,
  'amz-sdk-invocation-id': id,
  'amz-sdk-request': 'attempt=1; max=3',
  authorization: `AWS4-HMAC-SHA256 Credential=AKIATESTFAKEKEY00001/20261125/eu-central-1/${signingName}/aws4_request, SignedHeaders=host, Signature=00`,
})

test('an operation the bindings do not name is recorded as unknown, with everything else', async () => {
  const before = sdkV3Stats().httpUnidentified
  await send({ method: 'PATCH', path: '/bucket/key', headers: v3Headers('s3', 's3', 'unknown-op-1') })
  settleHttpCalls()
  const records = recorder.takeRecords()
  assert.deepEqual(records.map((r) => r.Type), ['ApiCallAttempt', 'ApiCall'])
  for (const record of records) {
    assert.equal(record.Service, 'S3')
    assert.equal(record.Api, undefined)
    assert.equal(record.ApiUnknown, true)
    assert.equal(record.Region, 'eu-central-1')
  }
  assert.equal(records[1].FinalHttpStatusCode, 200)
  assert.equal(sdkV3Stats().httpUnidentified, before + 1)
})

test('the Action of a form body is read across chunks, and the body goes out unchanged', async () => {
  const body = ['Action=Get', 'CallerIdentity&Version=2011-06-15']
  await send({
    headers: { ...v3Headers('sts', 'sts', 'form-1'), 'content-type': 'application/x-www-form-urlencoded' },
    chunks: body.map((part, i) => (i === 0 ? part : Buffer.from(part))),
  })
  const calls = recorder.takeRecords().filter((r) => r.Type === 'ApiCall')
  assert.deepEqual(calls.map((r) => [r.Service, r.Api]), [['STS', 'GetCallerIdentity']])
  assert.equal(received.at(-1), body.join(''))
})

test('node:http is left for the program to load, and the form of its first request is still read', () => {
  // In a fresh process the recorder starts first; the program then loads Node's HTTP client itself.
  const script = `
    const { Recorder, instrumentSdkV3 } = require(${JSON.stringify(path.join(ROOT, 'index.js'))})
    const recorder = new Recorder({ port: 0, sink: 'none' })
    recorder.start()
    instrumentSdkV3({ recorder, http: true })
    const loadedByRecorder = process.moduleLoadList.includes('NativeModule _http_client')
    const http = require('node:http')
    const server = http.createServer((request, response) => {
      request.resume()
      request.on('end', () => response.end('<Ok/>'))
    })
    server.listen(0, '127.0.0.1', () => {
      const headers = { ...${JSON.stringify(v3Headers('sts', 'sts', 'first-form'))}, 'content-type': 'application/x-www-form-urlencoded' }
      const request = http.request({ host: '127.0.0.1', port: server.address().port, method: 'POST', path: '/', headers }, (response) => {
        response.resume()
        response.on('end', () => {
          const calls = recorder.takeRecords().filter((r) => r.Type === 'ApiCall').map((r) => [r.Service, r.Api])
          process.stdout.write(JSON.stringify({ loadedByRecorder, calls }))
          server.close()
          recorder.stop()
        })
      })
      request.end('Action=GetCallerIdentity&Version=2011-06-15')
    })`
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 }))
  assert.deepEqual(out, { loadedByRecorder: false, calls: [['STS', 'GetCallerIdentity']] })
})

test('requests without the v3 SDK invocation id (aws-sdk v2, other HTTP) are not recorded', async () => {
  await send({ headers: { 'user-agent': 'aws-sdk-nodejs/2.1693.0 linux/v20', authorization: v3Headers('sts', 'sts', 'x').authorization }, chunks: ['Action=GetCallerIdentity'] })
  await send({ method: 'GET', path: '/health' })
  settleHttpCalls()
  assert.deepEqual(recorder.takeRecords(), [])
})

test('stopped, the HTTP layer records nothing', async () => {
  const stopped = instrumentSdkV3({ recorder, http: false })
  try {
    await send({ method: 'PATCH', path: '/bucket/key', headers: v3Headers('s3', 's3', 'after-stop') })
    settleHttpCalls()
    assert.deepEqual(recorder.takeRecords(), [])
    assert.equal(sdkV3Stats().httpLayer, false)
  } finally {
    stopped.stop()
    instrumentation = instrumentSdkV3({ recorder, http: true })
  }
})
