// The recording proxy of `run`: real programs (the aws CLI on botocore, the v3 JS SDK) as child
// processes, their requests sent to the real AWS host names and, with --upstream, on to moto.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

import { FAKE_CREDENTIALS, startMoto } from './helpers/moto.mjs'
import { assertNoLeaks, SECRET_VALUES } from './helpers/leaks.mjs'
import { ADMIN_POLICY, runCommand, userWithPolicy as createUser } from './helpers/commands.mjs'
import { readJsonl } from './helpers/records.mjs'

const require = createRequire(import.meta.url)
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const CLI = path.join(ROOT, 'cli', 'index.js')
const COMMAND_TIMEOUT_MS = 90_000

let tmp

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'recorder-proxy-test-'))
})

after(() => {
  fs.rmSync(tmp, { recursive: true, force: true })
})

/** The environment without the user's AWS and proxy settings; empty AWS config files. */
function cleanEnv(credentials) {
  const env = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(AWS_|API_CALL_RECORDER_)/.test(key) && !/_proxy$/i.test(key)) env[key] = value
  }
  const none = path.join(tmp, 'none')
  fs.writeFileSync(none, '')
  // The machine's own bundle settings stay, as a user's would: the proxy must override them.
  return {
    ...env,
    SSL_CERT_FILE: process.env.SSL_CERT_FILE ?? '/etc/ssl/certs/ca-certificates.crt',
    AWS_CA_BUNDLE: process.env.AWS_CA_BUNDLE ?? '/etc/ssl/certs/ca-certificates.crt',
    ...credentials,
    AWS_REGION: 'us-west-2',
    AWS_DEFAULT_REGION: 'us-west-2',
    AWS_CONFIG_FILE: none,
    AWS_SHARED_CREDENTIALS_FILE: none,
    AWS_PAGER: '',
  }
}

const run = (command, args, env) => runCommand(command, args, { env, timeoutMs: COMMAND_TIMEOUT_MS })

/** The CA directory the child was given (it prints its bundle variable as `CA=path`). */
function caDirOf(stdout, name = 'CA') {
  const match = new RegExp(`^${name}=(.+)$`, 'm').exec(stdout)
  assert.ok(match, `the child printed ${name}=: ${stdout}`)
  return path.dirname(match[1])
}

/** The aws CLI with `env` against moto directly (setting moto up, not recorded). */
function awsDirect(moto, args, env) {
  return run('aws', ['--endpoint-url', moto.endpoint, ...args], env)
}

/** A moto IAM user holding exactly `policy`; its credentials. `adminEnv` signs the IAM calls. */
const userWithPolicy = (moto, name, policy, adminEnv) => createUser((args) => awsDirect(moto, args, adminEnv), name, policy)

/** `api-call-recorder policy` of recordings, parsed. */
async function policyOf(files) {
  const result = await run(process.execPath, [CLI, 'policy', '--account-id', '123456789012', ...files], cleanEnv({}))
  assert.equal(result.code, 0, result.stderr)
  return { policy: JSON.parse(result.stdout), stderr: result.stderr }
}

const BOTO3_SCRIPT = [
  'import boto3',
  's3 = boto3.client("s3")',
  's3.put_object(Bucket="proxied-bucket", Key="boto3/object.txt", Body=b"from boto3")',
  's3.delete_object(Bucket="proxied-bucket", Key="boto3/object.txt")',
  'boto3.client("dynamodb").get_item(TableName="proxied-table", Key={"id": {"S": "1"}})',
].join('; ')

test('the aws CLI through the proxy to moto with IAM enforced: signatures verify, and the policy it records is exactly enough', async (t) => {
  // The first three requests are free (they make the admin user); every later one must be signed.
  const moto = await startMoto({ env: { INITIAL_NO_AUTH_ACTION_COUNT: '3' } })
  t.after(() => moto.stop())
  const setupEnv = cleanEnv(FAKE_CREDENTIALS)
  const adminCredentials = await userWithPolicy(moto, 'admin', ADMIN_POLICY, setupEnv)
  const adminEnv = cleanEnv(adminCredentials)

  const file = path.join(tmp, 'upload.txt')
  fs.writeFileSync(file, 'recorded through the proxy\n')
  // Large enough for botocore to send `Expect: 100-continue` and wait for moto's interim answer.
  const large = path.join(tmp, 'large.bin')
  fs.writeFileSync(large, Buffer.alloc(3 << 20, 7))
  // The CLI also sends CSM (run turns it on): CSM's copy of each call the proxy recorded is left
  // out, so every call below is recorded once, by the proxy. The script leaves nothing behind, so
  // that it runs again as it did.
  const script = [
    'echo "CA=$AWS_CA_BUNDLE"',
    'aws sts get-caller-identity',
    'aws s3 mb s3://proxied-bucket',
    `aws s3api put-object --bucket proxied-bucket --key reports/upload.txt --body ${file}`,
    `aws s3api put-object --bucket proxied-bucket --key large.bin --body ${large}`,
    `aws s3api get-object --bucket proxied-bucket --key reports/upload.txt ${path.join(tmp, 'downloaded.txt')}`,
    'q=$(aws sqs create-queue --queue-name proxied --query QueueUrl --output text)',
    'aws sqs send-message --queue-url "$q" --message-body hello',
    'aws dynamodb create-table --table-name proxied-table --attribute-definitions AttributeName=id,AttributeType=S --key-schema AttributeName=id,KeyType=HASH --billing-mode PAY_PER_REQUEST',
    `aws dynamodb put-item --table-name proxied-table --item '{"id":{"S":"1"}}'`,
    // boto3 as a script uses it: the same proxy, the same CA through AWS_CA_BUNDLE.
    `python3 -c '${BOTO3_SCRIPT}'`,
    // Refused by moto (no such table): an error recorded with its code.
    '{ aws dynamodb describe-table --table-name missing || true; }',
    'aws dynamodb delete-table --table-name proxied-table',
    'aws sqs delete-queue --queue-url "$q"',
    'aws s3api delete-object --bucket proxied-bucket --key reports/upload.txt',
    'aws s3api delete-object --bucket proxied-bucket --key large.bin',
    'aws s3 rb s3://proxied-bucket',
  ].join(' && ')
  const recordScript = async (credentials, output) => {
    const args = [CLI, 'run', '--upstream', moto.endpoint, ...(output ? ['--output', output] : []), '--', 'sh', '-c', script]
    return run(process.execPath, args, cleanEnv(credentials))
  }
  const output = path.join(tmp, 'aws-cli.jsonl')
  const result = await recordScript(adminCredentials, output)
  assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`)
  assert.doesNotMatch(result.stderr, /SignatureDoesNotMatch|InvalidClientTokenId|AccessDenied/)
  assert.match(result.stderr, /proxy: \d+ requests, \d+ tunnels decrypted, \d+ passed through, 0 not understood, \d+ CSM events of proxied calls left out/)

  const records = readJsonl(output)
  const calls = records.filter((r) => r.Type === 'ApiCall')
  const named = (service) => calls.filter((c) => c.Service === service).map((c) => [c.Api, c.FinalHttpStatusCode, c.FinalAwsException])
  assert.deepEqual(named('STS'), [['GetCallerIdentity', 200, undefined]])
  assert.deepEqual(named('SQS'), [['CreateQueue', 200, undefined], ['SendMessage', 200, undefined], ['DeleteQueue', 200, undefined]])
  assert.deepEqual(named('DynamoDB'), [['CreateTable', 200, undefined], ['PutItem', 200, undefined], ['GetItem', 200, undefined],
    ['DescribeTable', 400, 'ResourceNotFoundException'], ['DeleteTable', 200, undefined]])
  // S3 is named through the service model's REST bindings, virtual-hosted buckets included.
  assert.deepEqual(named('S3').map(([api, status]) => [api, status]), [['CreateBucket', 200], ['PutObject', 200], ['PutObject', 200],
    ['GetObject', 200], ['PutObject', 200], ['DeleteObject', 204], ['DeleteObject', 204], ['DeleteObject', 204], ['DeleteBucket', 204]])
  assert.deepEqual(calls.filter((c) => c.UserAgent?.startsWith('Boto3/')).map((c) => c.Resources), [
    { 's3:PutObject': ['arn:aws:s3:::proxied-bucket/boto3/object.txt'] },
    { 's3:DeleteObject': ['arn:aws:s3:::proxied-bucket/boto3/object.txt'] },
    { 'dynamodb:GetItem': ['arn:aws:dynamodb:us-west-2:*:table/proxied-table'] },
  ])
  assert.ok(calls.every((c) => c.ApiUnknown === undefined), JSON.stringify(calls.filter((c) => c.ApiUnknown)))
  // Resources as the input named them, read back from the URI, the query, the headers and the body.
  const resources = (api) => calls.filter((c) => c.Api === api).map((c) => c.Resources)
  assert.deepEqual(resources('CreateBucket'), [{ 's3:CreateBucket': ['arn:aws:s3:::proxied-bucket'] }])
  assert.deepEqual(resources('GetObject'), [{ 's3:GetObject': ['arn:aws:s3:::proxied-bucket/reports/upload.txt'] }])
  assert.deepEqual(resources('PutItem'), [{ 'dynamodb:PutItem': ['arn:aws:dynamodb:us-west-2:*:table/proxied-table'] }])
  assert.deepEqual(resources('SendMessage'), [{ 'sqs:SendMessage': ['arn:aws:sqs:us-west-2:123456789012:proxied'] }])
  for (const attempt of records.filter((r) => r.Type === 'ApiCallAttempt')) {
    assert.equal(attempt.AccessKey, adminCredentials.AWS_ACCESS_KEY_ID)
    assert.equal(attempt.Region, 'us-west-2')
    assert.match(attempt.Fqdn, /amazonaws\.com$/)
    assert.equal(attempt.Resources, undefined)
  }
  for (const [what, text] of [['records', fs.readFileSync(output, 'utf8')], ['stdout', result.stdout], ['stderr', result.stderr]]) {
    assertNoLeaks(text, what, { textKeys: false })
    assert.ok(!text.includes(adminCredentials.AWS_SECRET_ACCESS_KEY), `the secret key in ${what}`)
    assert.ok(!text.includes('recorded through the proxy') && !text.includes('from boto3'), `a request body in ${what}`)
  }
  assert.equal(fs.existsSync(caDirOf(result.stdout)), false, 'the CA directory is removed')

  // The policy the recording gives is resource-level for S3, SQS and DynamoDB, and enough: a user
  // holding exactly it runs the script again.
  const { policy } = await policyOf([output])
  const statementOf = (action) => policy.Statement.find((s) => [s.Action].flat().includes(action))
  // Keys become their folder: the object statement names `reports/*`, not the whole bucket.
  assert.deepEqual([statementOf('s3:GetObject').Resource].flat(), ['arn:aws:s3:::proxied-bucket/reports/*'])
  assert.deepEqual([statementOf('sqs:SendMessage').Resource].flat(), ['arn:aws:sqs:us-west-2:123456789012:proxied'])
  assert.match([statementOf('dynamodb:PutItem').Resource].flat().join(), /table\/proxied-table$/)
  assert.ok(policy.Statement.every((s) => [s.Resource].flat().every((r) => r !== '*' || [s.Action].flat().every((a) => /^(sts|dynamodb:DescribeTable)/.test(a)))),
    JSON.stringify(policy, null, 1))
  // moto checks resource ARNs for S3 and SQS requests only; others it checks against "*", so the
  // test widens their statements to "*" (their ARNs are asserted above). It also checks CreateQueue
  // against "*", not the queue's ARN as AWS does: that action is granted on "*" besides.
  const forMoto = (document) => ({
    ...document,
    Statement: [
      ...document.Statement.map((s) => ([s.Action].flat().every((a) => /^(s3|sqs):/.test(a)) ? s : { ...s, Resource: '*' })),
      { Effect: 'Allow', Action: 'sqs:CreateQueue', Resource: '*' },
    ],
  })
  const least = await userWithPolicy(moto, 'least', forMoto(policy), adminEnv)
  const again = await recordScript(least)
  assert.equal(again.code, 0, `the recorded policy is not enough: ${again.stderr}\n${JSON.stringify(policy, null, 1)}`)
  // moto checks the ARNs of S3 and SQS requests: without any one of their statements, the script fails.
  const checked = policy.Statement.filter((s) => [s.Action].flat().every((a) => /^(s3|sqs):/.test(a)))
  assert.ok(checked.length >= 2, JSON.stringify(policy))
  for (const [i, removed] of checked.entries()) {
    const partial = { ...policy, Statement: policy.Statement.filter((s) => s !== removed) }
    const user = await userWithPolicy(moto, `partial-${i}`, forMoto(partial), adminEnv)
    const denied = await recordScript(user)
    assert.notEqual(denied.code, 0, `the script ran without ${JSON.stringify(removed)}`)
    assert.match(denied.stderr, /AccessDenied/)
    // What the refused run left behind goes, so that the next one starts as the first did.
    const cleanup = [
      'aws s3 rm s3://proxied-bucket --recursive', 'aws s3 rb s3://proxied-bucket',
      `aws sqs delete-queue --queue-url ${moto.endpoint}/123456789012/proxied`, 'aws dynamodb delete-table --table-name proxied-table',
    ].map((command) => `${command.replace(/^aws /, `aws --endpoint-url ${moto.endpoint} `)} >/dev/null 2>&1`).join('; ')
    await run('sh', ['-c', `export AWS_CSM_ENABLED=false; ${cleanup}; true`], adminEnv)
  }
})

/** A Node 20 program's way through an HTTPS proxy (the v3 SDK does not read HTTPS_PROXY itself). */
const V3_PROGRAM = String.raw`
const http = require('node:http')
const https = require('node:https')
const tls = require('node:tls')
const { NodeHttpHandler } = require('@smithy/node-http-handler')
const { DynamoDBClient, ListTablesCommand } = require('@aws-sdk/client-dynamodb')
const { S3Client, CreateBucketCommand, PutObjectCommand } = require('@aws-sdk/client-s3')
const { STSClient, GetCallerIdentityCommand } = require('@aws-sdk/client-sts')

class ConnectAgent extends https.Agent {
  constructor(proxy) {
    super({ keepAlive: true })
    this.proxy = new URL(proxy)
  }
  createConnection(options, callback) {
    const authority = options.host + ':' + options.port
    const request = http.request({ host: this.proxy.hostname, port: this.proxy.port, method: 'CONNECT', path: authority, headers: { host: authority } })
    request.once('connect', (response, socket) => {
      if (response.statusCode !== 200) return callback(new Error('CONNECT ' + response.statusCode))
      callback(null, tls.connect({ ...options, socket, servername: options.servername || options.host }))
    })
    request.once('error', callback)
    request.end()
  }
}

async function main() {
  console.log('CA=' + process.env.NODE_EXTRA_CA_CERTS)
  const requestHandler = new NodeHttpHandler({ httpsAgent: new ConnectAgent(process.env.HTTPS_PROXY) })
  const config = { region: 'us-west-2', requestHandler }
  const dynamodb = new DynamoDBClient(config)
  console.log(JSON.stringify(await dynamodb.send(new ListTablesCommand({}))))
  console.log(JSON.stringify(await new STSClient(config).send(new GetCallerIdentityCommand({}))))
  const s3 = new S3Client(config)
  await s3.send(new CreateBucketCommand({ Bucket: 'v3-proxied', CreateBucketConfiguration: { LocationConstraint: 'us-west-2' } }))
  await s3.send(new PutObjectCommand({ Bucket: 'v3-proxied', Key: 'object.json', Body: JSON.stringify({ big: 'x'.repeat(200000) }) }))
}
main().catch((error) => { console.error(error); process.exitCode = 1 })
`

/**
 * A stand-in in front of moto that fails the first attempt of each ListTables with a 500 (so the
 * SDK retries) and keeps every request signature it sees, to search the outputs for them.
 */
async function flakyUpstream(moto) {
  const signatures = new Set()
  const server = http.createServer((request, response) => {
    const auth = request.headers.authorization ?? ''
    const signature = /Signature=([0-9a-f]+)/.exec(auth)?.[1]
    if (signature) signatures.add(signature)
    const target = request.headers['x-amz-target'] ?? ''
    if (target.endsWith('.ListTables') && /attempt=1\b/.test(request.headers['amz-sdk-request'] ?? '')) {
      request.resume()
      response.writeHead(500, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-ErrorType': 'InternalServerError' })
      response.end(JSON.stringify({ __type: 'InternalServerError', message: 'try again' }))
      return
    }
    const upstream = http.request({ host: '127.0.0.1', port: moto.port, method: request.method, path: request.url, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode, answer.headers)
      answer.pipe(response)
    })
    upstream.once('error', () => response.destroy())
    request.pipe(upstream)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${server.address().port}`, signatures, close: () => new Promise((resolve) => server.close(resolve)) }
}

test('a v3 JS SDK program run as a child: retries grouped into one call, nothing secret in any output', async (t) => {
  const moto = await startMoto()
  t.after(() => moto.stop())
  const upstream = await flakyUpstream(moto)
  t.after(() => upstream.close())
  const program = path.join(tmp, 'v3-program.js')
  fs.writeFileSync(program, V3_PROGRAM)
  const output = path.join(tmp, 'v3.jsonl')
  const env = { ...cleanEnv(FAKE_CREDENTIALS), NODE_PATH: path.join(ROOT, 'node_modules') }
  const result = await run(process.execPath, [CLI, 'run', '--upstream', upstream.url, '--output', output, '--', process.execPath, program], env)
  assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`)

  const records = readJsonl(output)
  const listTables = records.filter((r) => r.Api === 'ListTables')
  assert.deepEqual(listTables.map((r) => [r.Type, r.HttpStatusCode ?? r.FinalHttpStatusCode]),
    [['ApiCallAttempt', 500], ['ApiCallAttempt', 200], ['ApiCall', 200]])
  assert.equal(listTables[0].AwsException, 'InternalServerError')
  assert.equal(listTables[2].AttemptCount, 2)
  assert.equal(listTables[2].MaxRetriesExceeded, 0)
  assert.ok(listTables.every((r) => r.Service === 'DynamoDB' && r.Region === 'us-west-2'))
  assert.ok(listTables.filter((r) => r.Type === 'ApiCallAttempt').every((r) => r.AccessKey === FAKE_CREDENTIALS.AWS_ACCESS_KEY_ID))
  const calls = records.filter((r) => r.Type === 'ApiCall')
  // The v3 SDK names its service in the user agent (`api/s3#...`); REST operations come from the
  // service model, and the resources from the input read back from the request.
  assert.deepEqual(calls.map((c) => [c.Service, c.Api ?? null, c.FinalHttpStatusCode, c.Resources]), [
    ['DynamoDB', 'ListTables', 200, { 'dynamodb:ListTables': ['*'] }],
    ['STS', 'GetCallerIdentity', 200, undefined],
    ['S3', 'CreateBucket', 200, { 's3:CreateBucket': ['arn:aws:s3:::v3-proxied'] }],
    ['S3', 'PutObject', 200, { 's3:PutObject': ['arn:aws:s3:::v3-proxied/object.json'] }],
  ])
  assert.ok(upstream.signatures.size >= 5, `signatures seen: ${upstream.signatures.size}`)
  for (const [what, text] of [['records', fs.readFileSync(output, 'utf8')], ['stdout', result.stdout], ['stderr', result.stderr]]) {
    assertNoLeaks(text, what, { textKeys: false })
    for (const signature of upstream.signatures) assert.ok(!text.includes(signature), `a signature in ${what}`)
    assert.ok(!text.includes('x'.repeat(100)), `a request body in ${what}`)
  }
  assert.ok(SECRET_VALUES.length >= 2)
  assert.equal(fs.existsSync(caDirOf(result.stdout)), false, 'the CA directory is removed')
})

// Built by `cargo test` (every example is) and by `cargo build --example rust-sdk-program`.
const RUST_PROGRAM = path.join(ROOT, 'target', 'debug', 'examples', 'rust-sdk-program')

test('a program on the AWS SDK for Rust run as a child: recorded through the proxy, resources named', async (t) => {
  if (!fs.existsSync(RUST_PROGRAM)) {
    t.skip(`${RUST_PROGRAM} is not built (cargo build --example rust-sdk-program)`)
    return
  }
  const moto = await startMoto()
  t.after(() => moto.stop())
  const env = cleanEnv(FAKE_CREDENTIALS)
  assert.equal((await awsDirect(moto, ['s3', 'mb', 's3://rust-destination'], env)).code, 0)
  const output = path.join(tmp, 'rust.jsonl')
  const script = `echo "CA=$AWS_CA_BUNDLE"; exec ${RUST_PROGRAM} from-rust arn:aws:s3:::rust-destination`
  const result = await run(process.execPath, [CLI, 'run', '--upstream', moto.endpoint, '--output', output, '--', 'sh', '-c', script], env)
  assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`)
  assert.match(result.stdout, /arn:aws:firehose:us-west-2:123456789012:deliverystream\/from-rust/)
  const calls = readJsonl(output).filter((r) => r.Type === 'ApiCall')
  const stream = 'arn:aws:firehose:us-west-2:*:deliverystream/from-rust'
  assert.deepEqual(calls.map((c) => [c.Service, c.Api, c.FinalHttpStatusCode, c.Resources]), [
    ['Firehose', 'CreateDeliveryStream', 200, { 'firehose:CreateDeliveryStream': [stream], 'iam:PassRole': ['arn:aws:iam::123456789012:role/firehose-delivery'] }],
    ['Firehose', 'PutRecord', 200, { 'firehose:PutRecord': [stream] }],
    ['Firehose', 'DescribeDeliveryStream', 200, { 'firehose:DescribeDeliveryStream': [stream] }],
    ['Firehose', 'DeleteDeliveryStream', 200, { 'firehose:DeleteDeliveryStream': [stream] }],
  ])
  assert.ok(calls.every((c) => c.UserAgent.startsWith('aws-sdk-rust/')), JSON.stringify(calls.map((c) => c.UserAgent)))
  for (const [what, text] of [['records', fs.readFileSync(output, 'utf8')], ['stdout', result.stdout], ['stderr', result.stderr]]) {
    assertNoLeaks(text, what, { textKeys: false })
    assert.ok(!text.includes('recorded from Rust'), `a record's data in ${what}`)
  }
  assert.equal(fs.existsSync(caDirOf(result.stdout)), false, 'the CA directory is removed')
})

test('--no-proxy runs without it, and --upstream without the proxy is a usage error', async () => {
  const env = cleanEnv(FAKE_CREDENTIALS)
  const off = await run(process.execPath, [CLI, 'run', '--no-proxy', '--', 'sh', '-c', 'echo "P=${HTTPS_PROXY:-none} B=$AWS_CA_BUNDLE"'], env)
  assert.equal(off.code, 0, off.stderr)
  assert.match(off.stdout, new RegExp(`P=none B=${env.AWS_CA_BUNDLE}`))
  assert.doesNotMatch(off.stderr, /proxy:/)
  const bad = await run(process.execPath, [CLI, 'run', '--no-proxy', '--upstream', 'http://127.0.0.1:1', '--', 'true'], env)
  assert.equal(bad.code, 2)
  assert.match(bad.stderr, /--upstream needs the proxy/)
  const badUrl = await run(process.execPath, [CLI, 'run', '--upstream', 'ftp://x', '--', 'true'], env)
  assert.equal(badUrl.code, 2, badUrl.stderr)
  assert.match(badUrl.stderr, /invalid upstream URL/)
})

test('run gives the child the proxy and the CA bundle, overriding the bundle the machine names', async () => {
  const env = cleanEnv(FAKE_CREDENTIALS)
  const names = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'AWS_CA_BUNDLE', 'SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'NODE_EXTRA_CA_CERTS']
  const print = `for n in ${names.join(' ')}; do eval "echo $n=\\$$n"; done; stat -c '%a' "$(dirname "$AWS_CA_BUNDLE")" "$AWS_CA_BUNDLE"`
  const result = await run(process.execPath, [CLI, 'run', '--', 'sh', '-c', print], { ...env, NO_PROXY: 'internal.example' })
  assert.equal(result.code, 0, result.stderr)
  const values = Object.fromEntries(result.stdout.trim().split('\n').filter((l) => l.includes('=')).map((l) => l.split(/=(.*)/s).slice(0, 2)))
  assert.match(values.HTTPS_PROXY, /^http:\/\/127\.0\.0\.1:\d+$/)
  assert.equal(values.http_proxy, values.HTTPS_PROXY)
  assert.deepEqual(values.NO_PROXY.split(',').sort(), ['127.0.0.1', '169.254.169.254', '169.254.170.2', '::1', 'internal.example', 'localhost'])
  assert.notEqual(values.AWS_CA_BUNDLE, env.AWS_CA_BUNDLE)
  assert.equal(values.SSL_CERT_FILE, values.AWS_CA_BUNDLE)
  assert.equal(values.REQUESTS_CA_BUNDLE, values.AWS_CA_BUNDLE)
  assert.equal(path.dirname(values.NODE_EXTRA_CA_CERTS), path.dirname(values.AWS_CA_BUNDLE))
  assert.deepEqual(result.stdout.trim().split('\n').slice(-2), ['700', '600'])
  assert.equal(fs.existsSync(path.dirname(values.AWS_CA_BUNDLE)), false)
})

test('a client that refuses the run\'s CA gets one warning naming the host and the way out', async (t) => {
  const upstream = http.createServer((request, response) => response.end())
  await new Promise((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.after(() => upstream.close())
  const env = { ...cleanEnv(FAKE_CREDENTIALS), AWS_MAX_ATTEMPTS: '1', AWS_RETRY_MODE: 'standard' }
  // The child trusts the system's roots only, not the run's CA.
  const script = 'AWS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt aws sts get-caller-identity; ' +
    'AWS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt aws sts get-caller-identity; true'
  const result = await run(process.execPath, [CLI, 'run', '--upstream', `http://127.0.0.1:${upstream.address().port}`, '--', 'sh', '-c', script], env)
  assert.equal(result.code, 0, result.stderr)
  const warnings = result.stderr.split('\n').filter((line) => line.includes('refused the recording proxy'))
  assert.equal(warnings.length, 1, result.stderr)
  assert.match(warnings[0], /sts\.us-west-2\.amazonaws\.com/)
  assert.match(warnings[0], /--no-proxy/)
  assert.match(warnings[0], /AWS_CA_BUNDLE/)
  assert.match(result.stderr, /proxy: 0 requests, 0 tunnels decrypted, 0 passed through, 0 not understood, 2 TLS handshakes refused/)
})

test('listen --proxy prints the variables; a program started elsewhere is recorded through it', async (t) => {
  const moto = await startMoto()
  t.after(() => moto.stop())
  const env = cleanEnv(FAKE_CREDENTIALS)
  const listener = spawn(process.execPath, [CLI, 'listen', '--port', '0', '--proxy', '--upstream', moto.endpoint], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  listener.stdout.on('data', (chunk) => { stdout += chunk })
  listener.stderr.on('data', (chunk) => { stderr += chunk })
  const closed = new Promise((resolve) => listener.once('close', resolve))
  t.after(() => listener.kill('SIGKILL'))
  const deadline = Date.now() + 20_000
  while (!/export NODE_EXTRA_CA_CERTS=/.test(stderr)) {
    assert.ok(Date.now() < deadline, `no variables printed: ${stderr}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const exported = Object.fromEntries([...stderr.matchAll(/^export ([A-Za-z_]+)='([^']*)'$/gm)].map((m) => [m[1], m[2]]))
  assert.match(exported.HTTPS_PROXY, /^http:\/\/127\.0\.0\.1:\d+$/)
  const program = await run('aws', ['sqs', 'create-queue', '--queue-name', 'from-elsewhere'], { ...env, ...exported })
  assert.equal(program.code, 0, program.stderr)
  const recorded = Date.now() + 10_000
  while (!stdout.includes('"Api":"CreateQueue"')) {
    assert.ok(Date.now() < recorded, `not recorded: ${stdout}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  listener.kill('SIGINT')
  await closed
  const call = stdout.trim().split('\n').map((line) => JSON.parse(line)).find((r) => r.Type === 'ApiCall')
  assert.deepEqual([call.Service, call.Api, call.FinalHttpStatusCode], ['SQS', 'CreateQueue', 200])
  assert.deepEqual(call.Resources, { 'sqs:CreateQueue': ['arn:aws:sqs:us-west-2:*:from-elsewhere'] })
  assert.match(stderr, /proxy: 1 requests, 1 tunnels decrypted/)
  assert.equal(fs.existsSync(path.dirname(exported.AWS_CA_BUNDLE)), false, 'the CA directory is removed')
})

test('Recorder#startProxy: its files under caDir, its counts in stats(), its errors coded', async () => {
  const { Recorder } = require('../index.js')
  const recorder = new Recorder({ sink: 'none', port: 0 })
  const parent = fs.mkdtempSync(path.join(tmp, 'ca-parent-'))
  const started = recorder.startProxy({ caDir: parent })
  assert.match(started.address, /^127\.0\.0\.1:\d+$/)
  assert.equal(path.dirname(started.caDir), parent)
  assert.equal(started.env.AWS_CA_BUNDLE, started.caBundlePath)
  assert.equal(started.env.NODE_EXTRA_CA_CERTS, started.caCertPath)
  assert.equal(fs.statSync(started.caDir).mode & 0o777, 0o700)
  assert.match(fs.readFileSync(started.caCertPath, 'utf8'), /^-----BEGIN CERTIFICATE-----/)
  assert.throws(() => recorder.startProxy(), { code: 'ERR_RECORDER_PROXY', message: /already running/ })
  const { proxy, paths } = recorder.stats()
  assert.deepEqual(proxy, { connections: 0, requests: 0, decrypted: 0, tunnelled: 0, notUnderstood: 0, refused: 0, upstreamFailed: 0, unnamed: 0, csmCopies: 0 })
  assert.deepEqual(paths.proxy, { calls: 0, attempts: 0 })
  await recorder.stopProxy()
  assert.equal(fs.existsSync(started.caDir), false)
  assert.throws(() => recorder.startProxy({ upstream: 'localhost:5000' }), { code: 'ERR_RECORDER_CONFIG' })
  assert.throws(() => recorder.startProxy({ caDir: path.join(tmp, 'does-not-exist') }), { code: 'ERR_RECORDER_PROXY' })
  // Stopping the recorder stops a running proxy first (its last records are named and kept).
  const again = recorder.startProxy({ caDir: parent })
  await recorder.stop()
  assert.equal(fs.existsSync(again.caDir), false)
})
