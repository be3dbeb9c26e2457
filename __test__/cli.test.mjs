// The api-call-recorder command line, driven with the aws CLI v1 and boto3 against a moto server.
import { spawn } from 'node:child_process'
import dgram from 'node:dgram'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import zlib from 'node:zlib'

import { FAKE_CREDENTIALS, startMoto } from './helpers/moto.mjs'
import { freeUdpPort, sendDatagrams } from './helpers/ports.mjs'

const require = createRequire(import.meta.url)
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const CLI = path.join(ROOT, 'cli', 'index.js')
// The captured datagrams, next to the repository (as the other tests find them).
const CORPUS = path.join(ROOT, 'tests', 'fixtures', 'csm-corpus')
const { csvColumns } = require('../binding.js')
const { parseCsv } = require('../cli/records.js')

const COMMAND_TIMEOUT_MS = 30_000

let moto
let tmp
let baseEnv

/** The environment without the user's AWS settings, with fake credentials and empty config files. */
function cleanEnv() {
  const env = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('AWS_') && !key.startsWith('API_CALL_RECORDER_')) env[key] = value
  }
  const config = path.join(tmp, 'aws-config')
  const credentials = path.join(tmp, 'aws-credentials')
  fs.writeFileSync(config, '')
  fs.writeFileSync(credentials, '')
  return { ...env, ...FAKE_CREDENTIALS, AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: credentials, AWS_PAGER: '' }
}

/** Starts a process; `done` resolves with its exit code, signal and output. Killed after a timeout. */
function start(command, args, { env = baseEnv, timeoutMs = COMMAND_TIMEOUT_MS } = {}) {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const result = { stdout: '', stderr: '' }
  child.stdout.on('data', (chunk) => { result.stdout += chunk })
  child.stderr.on('data', (chunk) => { result.stderr += chunk })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const done = new Promise((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ ...result, code, signal })
    })
  })
  return { child, result, done }
}

function cli(args, options) {
  return start(process.execPath, [CLI, ...args], options).done
}

/** Resolves once `predicate()` holds, checking every 50 ms; fails after `timeoutMs`. */
async function waitFor(predicate, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Runs the aws CLI against moto with CSM on `port`. */
async function aws(port, args) {
  const env = { ...baseEnv, AWS_CSM_ENABLED: 'true', AWS_CSM_PORT: String(port) }
  return start('aws', ['--endpoint-url', moto.endpoint, '--region', 'us-west-2', ...args], { env }).done
}

function readJsonl(file) {
  return fs.readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line))
}

const calls = (records) => records.filter((record) => record.Type === 'ApiCall')
const find = (records, api) => calls(records).find((record) => record.Api === api)

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'api-call-recorder-cli-'))
  baseEnv = cleanEnv()
  moto = await startMoto()
})

after(async () => {
  await moto?.stop()
  fs.rmSync(tmp, { recursive: true, force: true })
})

describe('run', () => {
  const recording = () => path.join(tmp, 'awscli.jsonl')
  let outcome

  before(async () => {
    // Arrange: one shell script with several aws CLI commands, ending with its own exit status.
    const aws = `aws --endpoint-url ${moto.endpoint} --region us-west-2`
    const script = [
      `${aws} sts get-caller-identity`,
      `${aws} s3api create-bucket --bucket cli-bucket --create-bucket-configuration LocationConstraint=us-west-2`,
      `${aws} s3api list-objects-v2 --bucket cli-bucket`,
      `${aws} s3api head-object --bucket cli-bucket --key missing.txt || true`,
      `${aws} dynamodb create-table --table-name cli-table --billing-mode PAY_PER_REQUEST ` +
        '--attribute-definitions AttributeName=pk,AttributeType=S --key-schema AttributeName=pk,KeyType=HASH',
      `${aws} dynamodb put-item --table-name cli-table --item '{"pk":{"S":"k1"}}'`,
      'exit 3',
    ].join(' && ')
    // Act
    outcome = await cli(['run', '--output', recording(), '--', 'sh', '-c', script])
  })

  test('exits with the command status and summarizes its calls on stderr', () => {
    assert.equal(outcome.code, 3, outcome.stderr)
    assert.match(outcome.stderr, /sh exited with status 3/)
    assert.match(outcome.stderr, /6 calls to 3 services, 1 error/)
    assert.match(outcome.stderr, /STS\s+GetCallerIdentity\s+1\s+0\s+0/)
    assert.match(outcome.stderr, /S3\s+HeadObject\s+404 404\s+1/)
    // The command's own output is passed through.
    assert.match(outcome.stdout, /"Account": "123456789012"/)
  })

  test('writes every event to --output, without the session token', () => {
    const records = readJsonl(recording())
    assert.deepEqual(calls(records).map((record) => `${record.Service} ${record.Api}`), [
      'STS GetCallerIdentity', 'S3 CreateBucket', 'S3 ListObjectsV2', 'S3 HeadObject',
      'DynamoDB CreateTable', 'DynamoDB PutItem',
    ])
    assert.equal(records.filter((record) => record.Type === 'ApiCallAttempt').length, 6)
    assert.equal(find(records, 'ListObjectsV2').FinalHttpStatusCode, 200)
    assert.equal(find(records, 'HeadObject').FinalHttpStatusCode, 404)
    assert.equal(find(records, 'PutItem').FinalHttpStatusCode, 200)
    assert.match(find(records, 'PutItem').UserAgent, /^aws-cli\//)
    const text = fs.readFileSync(recording(), 'utf8')
    assert.ok(!text.includes(FAKE_CREDENTIALS.AWS_SESSION_TOKEN))
    assert.ok(!text.includes('SessionToken'))
  })

  test('summary reads the recording, plain and gzip-compressed', async () => {
    const plain = await cli(['summary', '--json', recording()])
    assert.equal(plain.code, 0, plain.stderr)
    const summary = JSON.parse(plain.stdout)
    assert.equal(summary.calls, 6)
    assert.equal(summary.errors, 1)
    assert.equal(summary.attempts, 6)
    assert.deepEqual(summary.errorKinds, [{ service: 'S3', api: 'HeadObject', error: '404 404', count: 1 }])
    assert.ok(summary.latencyMs.p50 > 0 && summary.latencyMs.p99 >= summary.latencyMs.p50)

    const gz = path.join(tmp, 'firehose-object')
    fs.writeFileSync(gz, zlib.gzipSync(fs.readFileSync(recording())))
    const compressed = await cli(['summary', '--json', gz])
    assert.equal(compressed.code, 0, compressed.stderr)
    assert.deepEqual(JSON.parse(compressed.stdout), summary)
  })

  test('policy maps the calls to IAM actions', async () => {
    const outcome = await cli(['policy', recording()])
    assert.equal(outcome.code, 0, outcome.stderr)
    const policy = JSON.parse(outcome.stdout)
    assert.equal(policy.Version, '2012-10-17')
    const actions = policy.Statement.flatMap((statement) => statement.Action).sort()
    // sts:GetCallerIdentity needs no permission.
    assert.deepEqual(actions, [
      'dynamodb:CreateTable', 'dynamodb:PutItem',
      's3:CreateBucket', 's3:GetObject', 's3:ListBucket',
    ])
    // The aws CLI reports through Client-Side Monitoring only: no resources, so "*", reported.
    for (const statement of policy.Statement) {
      assert.equal(statement.Effect, 'Allow')
      assert.equal(statement.Resource, '*')
    }
    assert.match(outcome.stderr, /Resource "\*" for s3:GetObject: recorded without resources: Client-Side Monitoring events carry no request parameters .*; from S3\.HeadObject \(1 call\)/)
    assert.match(outcome.stderr, /note: STS\.GetCallerIdentity needs no permission/)
  })

  test('records a boto3 script as CSV with the file sink columns', async () => {
    const csv = path.join(tmp, 'boto3.csv')
    const script = [
      'import boto3, sys',
      `kw = dict(endpoint_url="${moto.endpoint}", region_name="us-west-2")`,
      'boto3.client("sts", **kw).get_caller_identity()',
      'ddb = boto3.client("dynamodb", **kw)',
      'try:',
      '    ddb.put_item(TableName="no-such-table", Item={"pk": {"S": "k"}})',
      'except ddb.exceptions.ResourceNotFoundException:',
      '    sys.exit(0)',
      'sys.exit(1)',
    ].join('\n')
    const outcome = await cli(['run', '--output', csv, '--', 'python3', '-c', script])
    assert.equal(outcome.code, 0, outcome.stderr)

    const rows = parseCsv(fs.readFileSync(csv, 'utf8'))
    assert.deepEqual(rows[0], csvColumns().map((column) => column.name))
    const column = (row, name) => row[rows[0].indexOf(name)]
    const putItem = rows.find((row) => column(row, 'Type') === 'ApiCall' && column(row, 'Api') === 'PutItem')
    assert.equal(column(putItem, 'FinalHttpStatusCode'), '400')
    assert.equal(column(putItem, 'FinalAwsException'), 'ResourceNotFoundException')
    // The botocore user agent has commas in it, so the field is quoted and parsed back whole.
    assert.match(column(putItem, 'UserAgent'), /^Boto3\/.* Botocore\//)
    assert.ok(rows.every((row) => row.length === rows[0].length))

    const summary = JSON.parse((await cli(['summary', '--json', csv])).stdout)
    assert.equal(summary.calls, 2)
    assert.equal(summary.errors, 1)
    const policy = JSON.parse((await cli(['policy', csv])).stdout)
    assert.deepEqual(policy.Statement.flatMap((statement) => statement.Action).sort(), ['dynamodb:PutItem'])
  })

  test('records a Node.js script using aws-sdk v2', async () => {
    const script = [
      "const { STS } = require('aws-sdk')",
      `new STS({ endpoint: '${moto.endpoint}', region: 'us-west-2' }).getCallerIdentity().promise()`,
      '  .then((identity) => console.log(identity.Account))',
    ].join('\n')
    const outcome = await cli(['run', '--output', '-', '--format', 'jsonl', '--', process.execPath, '-e', script],
      { env: { ...baseEnv, NODE_PATH: path.join(ROOT, 'node_modules'), AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1' } })
    assert.equal(outcome.code, 0, outcome.stderr)
    const lines = outcome.stdout.trim().split('\n')
    assert.ok(lines.includes('123456789012'))
    const records = lines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line))
    assert.equal(find(records, 'GetCallerIdentity').FinalHttpStatusCode, 200)
    assert.match(find(records, 'GetCallerIdentity').UserAgent, /^aws-sdk-nodejs\/2\./)
    assert.match(outcome.stderr, /1 call to 1 service, 0 errors/)
  })

  test('a command ended by a signal gives 128 + the signal number', async () => {
    const outcome = await cli(['run', '--', 'sh', '-c', 'kill -TERM $$'])
    assert.equal(outcome.code, 128 + os.constants.signals.SIGTERM)
  })

  test('a command that does not exist gives 127', async () => {
    const outcome = await cli(['run', '--', 'no-such-command-for-the-recorder'])
    assert.equal(outcome.code, 127)
    assert.match(outcome.stderr, /command not found/)
  })
})

describe('listen', () => {
  async function startListening(args) {
    const port = await freeUdpPort()
    const listener = start(process.execPath, [CLI, 'listen', '--port', String(port), ...args])
    await waitFor(() => listener.result.stderr.includes('listening on udp'), 'the listener to start')
    return { port, listener }
  }

  test('streams CSV and prints the summary on SIGINT, exiting 0', async () => {
    const { port, listener } = await startListening(['--format', 'csv'])
    const call = await aws(port, ['sts', 'get-caller-identity'])
    assert.equal(call.code, 0, call.stderr)
    await waitFor(() => listener.result.stdout.includes('ApiCall,'), 'the call to be written')
    listener.child.kill('SIGINT')
    const outcome = await listener.done
    assert.equal(outcome.code, 0, outcome.stderr)
    const rows = parseCsv(outcome.stdout)
    assert.deepEqual(rows[0], csvColumns().map((column) => column.name))
    assert.deepEqual(rows.slice(1).map((row) => `${row[0]} ${row[2]} ${row[3]}`),
      ['ApiCallAttempt STS GetCallerIdentity', 'ApiCall STS GetCallerIdentity'])
    assert.match(outcome.stderr, /stopped \(SIGINT\)/)
    assert.match(outcome.stderr, /1 call to 1 service, 0 errors/)
    assert.match(outcome.stderr, /STS\s+GetCallerIdentity\s+1\s+0\s+0\s+\d+\s+\d+/)
  })

  test('--only-errors writes only failed calls and attempts; SIGTERM also stops it', async () => {
    const { port, listener } = await startListening(['--only-errors'])
    await aws(port, ['s3api', 'list-objects-v2', '--bucket', 'no-such-bucket'])
    await aws(port, ['sts', 'get-caller-identity'])
    listener.child.kill('SIGTERM')
    const outcome = await listener.done
    assert.equal(outcome.code, 0, outcome.stderr)
    const records = outcome.stdout.trim().split('\n').map((line) => JSON.parse(line))
    assert.deepEqual(records.map((record) => `${record.Type} ${record.Api} ${record.FinalHttpStatusCode ?? record.HttpStatusCode}`),
      ['ApiCallAttempt ListObjectsV2 404', 'ApiCall ListObjectsV2 404'])
    assert.equal(records[1].FinalAwsException, 'NoSuchBucket')
    // The summary counts everything received.
    assert.match(outcome.stderr, /2 calls to 2 services, 1 error/)
  })

  test('ends cleanly when its output is closed early (| head -n 1)', async () => {
    const port = await freeUdpPort()
    const pipeline = start('sh', ['-c', `"${process.execPath}" "${CLI}" listen --port ${port} | head -n 1`])
    await waitFor(() => pipeline.result.stderr.includes('listening on udp'), 'the listener to start')
    const call = await aws(port, ['sts', 'get-caller-identity'])
    assert.equal(call.code, 0, call.stderr)
    // head has its line and exits; the next write fails with EPIPE and ends the listener.
    const corpus = fs.readFileSync(path.join(CORPUS, 'botocore.jsonl'), 'utf8').trim().split('\n')
    const datagram = JSON.parse(corpus[0]).datagram
    let exited = false
    pipeline.done.then(() => { exited = true })
    for (let i = 0; i < 50 && !exited; i += 1) {
      await sendDatagrams(port, [datagram])
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const outcome = await pipeline.done
    assert.equal(outcome.code, 0, outcome.stderr)
    assert.equal(outcome.stdout.trim().split('\n').length, 1)
    assert.equal(JSON.parse(outcome.stdout).Api, 'GetCallerIdentity')
    assert.match(outcome.stderr, /stopped \(output closed\)/)
    assert.doesNotMatch(outcome.stderr, /EPIPE|Error:/)
  })

  test('an output it cannot write is a clear error, before anything is received', async () => {
    const output = path.join(tmp, 'no-such-dir', 'calls.jsonl')
    const outcome = await cli(['listen', '--port', '0', '--output', output])
    assert.equal(outcome.code, 1)
    assert.match(outcome.stderr, /cannot write records to .*no-such-dir.*calls\.jsonl/)
    assert.doesNotMatch(outcome.stderr, /listening on udp|\n\s+at /)
  })

  test('a port already in use is a clear error', async () => {
    const socket = dgram.createSocket('udp4')
    await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve))
    try {
      const outcome = await cli(['listen', '--port', String(socket.address().port)])
      assert.equal(outcome.code, 1)
      assert.match(outcome.stderr, /already in use/i)
      assert.match(outcome.stderr, /--port/)
    } finally {
      socket.close()
    }
  })
})

describe('arguments', () => {
  const bad = [
    ['frobnicate'],
    ['listen', '--port', 'abc'],
    ['listen', '--port', '70000'],
    ['listen', '--format', 'xml'],
    ['listen', '--no-such-option'],
    ['listen', 'extra'],
    ['run'],
    ['run', '--port', '-1', '--', 'true'],
    ['run', '--format', 'csv', '--', 'true'],
    ['summary'],
    ['policy'],
    ['report'],
    ['report', '--account-id', '12', 'calls.jsonl'],
    ['report', '--format', 'pdf', 'calls.jsonl'],
    [],
  ]
  for (const args of bad) {
    test(`exit 2: ${args.join(' ') || '(no arguments)'}`, async () => {
      const outcome = await cli(args)
      assert.equal(outcome.code, 2, outcome.stderr)
      assert.ok(outcome.stderr.length > 0)
    })
  }

  test('every command has --help', async () => {
    for (const command of ['listen', 'run', 'summary', 'policy', 'report']) {
      const outcome = await cli([command, '--help'])
      assert.equal(outcome.code, 0)
      assert.match(outcome.stdout, new RegExp(`Usage: api-call-recorder ${command}`))
    }
    assert.match((await cli(['--help'])).stdout, /Commands:/)
  })

  test('a missing recording is an error naming the file', async () => {
    const outcome = await cli(['summary', path.join(tmp, 'nope.jsonl')])
    assert.equal(outcome.code, 1)
    assert.match(outcome.stderr, /nope\.jsonl: no such file/)
  })
})

describe('summary and policy over captured datagrams', () => {
  test('summary of the botocore corpus counts calls, errors and retries', async () => {
    const outcome = await cli(['summary', '--json', path.join(CORPUS, 'botocore.jsonl')])
    assert.equal(outcome.code, 0, outcome.stderr)
    const summary = JSON.parse(outcome.stdout)
    assert.equal(summary.calls, 27)
    const sts = summary.byApi.find((entry) => entry.api === 'GetCallerIdentity')
    assert.equal(sts.errors, 5)
    assert.ok(sts.retries > 0)
  })

  test('policy maps service ids to IAM prefixes and lists unmapped calls', async () => {
    const file = path.join(tmp, 'mixed.jsonl')
    const call = (Service, Api) => JSON.stringify({ Type: 'ApiCall', Service, Api, AttemptCount: 1, Latency: 5 })
    fs.writeFileSync(file, [
      call('CloudWatch', 'PutMetricData'),
      call('SFN', 'StartExecution'),
      call('Lambda', 'Invoke'),
      call('SQS', 'SendMessageBatch'),
      call('IoT Data Plane', 'Publish'),
      call('API Gateway', 'GetRestApis'),
      call('Not A Service', 'DoThing'),
    ].join('\n'))
    const outcome = await cli(['policy', file])
    assert.equal(outcome.code, 0, outcome.stderr)
    const actions = JSON.parse(outcome.stdout).Statement.flatMap((statement) => statement.Action).sort()
    assert.deepEqual(actions, [
      'apigateway:GET', 'cloudwatch:PutMetricData', 'iot:Publish', 'lambda:InvokeFunction',
      'sqs:SendMessage', 'states:StartExecution',
    ])
    assert.match(outcome.stderr, /Service "Not A Service" Api "DoThing" \(1 call\)/)
  })
})
