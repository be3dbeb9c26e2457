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

function run(command, args, env) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => { stdout += chunk })
    child.stderr.on('data', (chunk) => { stderr += chunk })
    const timer = setTimeout(() => child.kill('SIGKILL'), COMMAND_TIMEOUT_MS)
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

function readJsonl(file) {
  return fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line))
}

/** Records the proxy made: their Service is the SigV4 signing name; CSM's is the SDK's service id. */
function proxyRecords(records) {
  return records.filter((r) => /^[a-z0-9-]+$/.test(r.Service ?? ''))
}

/** The CA directory the child was given (it prints its bundle variable as `CA=path`). */
function caDirOf(stdout, name = 'CA') {
  const match = new RegExp(`^${name}=(.+)$`, 'm').exec(stdout)
  assert.ok(match, `the child printed ${name}=: ${stdout}`)
  return path.dirname(match[1])
}

test('the aws CLI through the proxy to moto with IAM enforced: signatures still verify, calls recorded', async (t) => {
  // The first three requests are free (they make the user); every later one must be signed by it.
  const moto = await startMoto({ env: { INITIAL_NO_AUTH_ACTION_COUNT: '3' } })
  t.after(() => moto.stop())
  const direct = (args, env) => run('aws', ['--endpoint-url', moto.endpoint, ...args], env)
  const setupEnv = cleanEnv(FAKE_CREDENTIALS)
  assert.equal((await direct(['iam', 'create-user', '--user-name', 'recorded'], setupEnv)).code, 0)
  const created = await direct(['iam', 'create-access-key', '--user-name', 'recorded'], setupEnv)
  assert.equal(created.code, 0, created.stderr)
  const { AccessKeyId, SecretAccessKey } = JSON.parse(created.stdout).AccessKey
  const policy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] })
  const put = await direct(['iam', 'put-user-policy', '--user-name', 'recorded', '--policy-name', 'all', '--policy-document', policy], setupEnv)
  assert.equal(put.code, 0, put.stderr)

  const env = cleanEnv({ AWS_ACCESS_KEY_ID: AccessKeyId, AWS_SECRET_ACCESS_KEY: SecretAccessKey })
  const file = path.join(tmp, 'upload.txt')
  fs.writeFileSync(file, 'recorded through the proxy\n')
  // Large enough for botocore to send `Expect: 100-continue` and wait for moto's interim answer.
  const large = path.join(tmp, 'large.bin')
  fs.writeFileSync(large, Buffer.alloc(3 << 20, 7))
  const output = path.join(tmp, 'aws-cli.jsonl')
  const script = [
    'echo "CA=$AWS_CA_BUNDLE"',
    'aws sts get-caller-identity',
    'aws s3 mb s3://proxied-bucket',
    `aws s3 cp ${file} s3://proxied-bucket/upload.txt`,
    `aws s3api put-object --bucket proxied-bucket --key large.bin --body ${large}`,
    'aws sqs create-queue --queue-name proxied',
    'aws dynamodb list-tables',
    // Refused by moto (no such table): an error recorded with its code.
    'aws dynamodb describe-table --table-name missing || true',
  ].join(' && ')
  const result = await run(process.execPath, [CLI, 'run', '--upstream', moto.endpoint, '--output', output, '--', 'sh', '-c', script], env)
  assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`)
  assert.doesNotMatch(result.stderr, /SignatureDoesNotMatch|InvalidClientTokenId|AccessDenied/)
  assert.match(result.stderr, /proxy: \d+ requests, \d+ tunnels decrypted, \d+ passed through, 0 not understood/)

  const records = proxyRecords(readJsonl(output))
  const calls = records.filter((r) => r.Type === 'ApiCall')
  const byService = (service) => calls.filter((c) => c.Service === service)
  assert.deepEqual(byService('sts').map((c) => [c.Api, c.FinalHttpStatusCode]), [['GetCallerIdentity', 200]])
  assert.deepEqual(byService('sqs').map((c) => [c.Api, c.FinalHttpStatusCode]), [['CreateQueue', 200]])
  assert.deepEqual(byService('dynamodb').map((c) => [c.Api, c.FinalHttpStatusCode, c.FinalAwsException]),
    [['ListTables', 200, undefined], ['DescribeTable', 400, 'ResourceNotFoundException']])
  const s3 = byService('s3')
  assert.ok(s3.length >= 3, JSON.stringify(s3))
  assert.ok(s3.every((c) => c.ApiUnknown === true && c.Api === undefined && c.FinalHttpStatusCode === 200), JSON.stringify(s3))
  for (const attempt of records.filter((r) => r.Type === 'ApiCallAttempt')) {
    assert.equal(attempt.AccessKey, AccessKeyId)
    assert.equal(attempt.Region, 'us-west-2')
    assert.match(attempt.Fqdn, /amazonaws\.com$/)
  }
  for (const [what, text] of [['records', fs.readFileSync(output, 'utf8')], ['stdout', result.stdout], ['stderr', result.stderr]]) {
    assertNoLeaks(text, what, { textKeys: false })
    assert.ok(!text.includes(SecretAccessKey), `the secret key in ${what}`)
  }
  assert.equal(fs.existsSync(caDirOf(result.stdout)), false, 'the CA directory is removed')
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
  assert.ok(listTables.every((r) => r.Service === 'dynamodb' && r.Region === 'us-west-2'))
  assert.ok(listTables.filter((r) => r.Type === 'ApiCallAttempt').every((r) => r.AccessKey === FAKE_CREDENTIALS.AWS_ACCESS_KEY_ID))
  const calls = records.filter((r) => r.Type === 'ApiCall')
  assert.deepEqual(calls.map((c) => [c.Service, c.Api ?? null, c.FinalHttpStatusCode]), [
    ['dynamodb', 'ListTables', 200],
    ['sts', 'GetCallerIdentity', 200],
    ['s3', null, 200],
    ['s3', null, 200],
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
  assert.deepEqual([call.Service, call.Api, call.FinalHttpStatusCode], ['sqs', 'CreateQueue', 200])
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
  assert.deepEqual(proxy, { connections: 0, requests: 0, decrypted: 0, tunnelled: 0, notUnderstood: 0, refused: 0, upstreamFailed: 0 })
  assert.deepEqual(paths.proxy, { calls: 0, attempts: 0 })
  await recorder.stopProxy()
  assert.equal(fs.existsSync(started.caDir), false)
  assert.throws(() => recorder.startProxy({ upstream: 'localhost:5000' }), { code: 'ERR_RECORDER_CONFIG' })
  assert.throws(() => recorder.startProxy({ caDir: path.join(tmp, 'does-not-exist') }), { code: 'ERR_RECORDER_PROXY' })
  await recorder.stop()
})
