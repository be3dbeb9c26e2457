// `api-call-recorder policy` proven by enforcement: a v3 and an aws-sdk v2 program touching two buckets,
// a DynamoDB table, an SQS queue, an SNS topic, a secret and an SSM parameter run recorded with admin
// keys against a moto server that enforces IAM; the policy drawn from the recording is given to a
// user of its own, who reruns the program: every call succeeds, and with any one statement removed
// the program fails on the call that needed it.
//
// moto checks resource ARNs for S3 and SQS only; for DynamoDB, SNS, Secrets Manager and SSM it
// matches a statement's Resource against "*". So the user gets the policy as generated for S3 and
// SQS, and "*" in the statements of the other services, whose ARNs are compared with the expected
// ones instead.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

import { FAKE_CREDENTIALS, startMoto } from './helpers/moto.mjs'
import { freeUdpPort } from './helpers/ports.mjs'
import { readJsonl, assertNoSecrets } from './helpers/records.mjs'

const require = createRequire(import.meta.url)
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const CLI = path.join(ROOT, 'cli', 'index.js')
const SCRIPT = path.join(ROOT, '__test__', 'fixtures', 'policy-script.cjs')
const ACCOUNT = '123456789012'
const REGION = 'us-west-2'
/** IAM calls moto lets through before it enforces: the users, their keys and the admin's policy. */
const SETUP_CALLS = 5
const RUN_TIMEOUT_MS = 60_000
/** Services whose resource ARNs moto checks; the others match only "*". */
const MOTO_CHECKS_RESOURCES = new Set(['s3', 'sqs'])

const NAMES = {
  uploads: 'acr-policy-uploads',
  reports: 'acr-policy-reports',
  table: 'acr-policy-orders',
  queue: 'acr-policy-jobs',
  topic: 'acr-policy-events',
  secret: 'acr-policy-db-password',
  parameter: '/acr-policy/feature-flag',
}

let moto
let tmp
let names
let adminKeys
let runnerKeys
let iam

function run(command, args, env, timeoutMs = RUN_TIMEOUT_MS) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    const result = { stdout: '', stderr: '' }
    child.stdout.on('data', (chunk) => { result.stdout += chunk })
    child.stderr.on('data', (chunk) => { result.stderr += chunk })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ ...result, code, signal })
    })
  })
}

/** The environment without the user's AWS settings: the given keys, the moto endpoint, no config files. */
function scriptEnv(keys, extra = {}) {
  const env = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('AWS_') && !key.startsWith('API_CALL_RECORDER_')) env[key] = value
  }
  return {
    ...env,
    AWS_ACCESS_KEY_ID: keys.AccessKeyId,
    AWS_SECRET_ACCESS_KEY: keys.SecretAccessKey,
    AWS_REGION: REGION,
    AWS_ENDPOINT_URL: moto.endpoint,
    AWS_CONFIG_FILE: path.join(tmp, 'none'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(tmp, 'none'),
    AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1',
    POLICY_TEST_RESOURCES: JSON.stringify(names),
    ...extra,
  }
}

function runScript(sdk, keys, extra) {
  return run(process.execPath, [SCRIPT, sdk], scriptEnv(keys, extra))
}

function v2Client(Service, keys, extra = {}) {
  const AWS = require('aws-sdk')
  return new AWS[Service]({
    endpoint: moto.endpoint,
    region: REGION,
    accessKeyId: keys.AccessKeyId,
    secretAccessKey: keys.SecretAccessKey,
    maxRetries: 0,
    ...extra,
  })
}

async function setPolicy(policy) {
  await iam.putUserPolicy({ UserName: 'runner', PolicyName: 'recorded', PolicyDocument: JSON.stringify(policy) }).promise()
}

/** The policy a moto user can be given: "*" for the services whose ARNs moto does not check. */
function motoEnforceable(policy) {
  return {
    ...policy,
    Statement: policy.Statement.map((statement) => {
      const prefix = statement.Action[0].split(':')[0]
      return MOTO_CHECKS_RESOURCES.has(prefix) ? statement : { ...statement, Resource: '*' }
    }),
  }
}

/** action -> sorted resources, over all statements. */
function resourcesByAction(policy) {
  const result = {}
  for (const statement of policy.Statement) {
    for (const action of statement.Action) {
      result[action] = [...(result[action] ?? []), ...[].concat(statement.Resource)].sort()
    }
  }
  return result
}

function expectedResources() {
  const arn = (service, resource) => `arn:aws:${service}:${REGION}:${ACCOUNT}:${resource}`
  return {
    's3:PutObject': [`arn:aws:s3:::${NAMES.uploads}/incoming/2026/*`],
    's3:GetObject': [`arn:aws:s3:::${NAMES.reports}/daily/*`, `arn:aws:s3:::${NAMES.uploads}/incoming/2026/*`],
    's3:ListBucket': [`arn:aws:s3:::${NAMES.reports}`],
    'dynamodb:PutItem': [arn('dynamodb', `table/${NAMES.table}`)],
    'dynamodb:GetItem': [arn('dynamodb', `table/${NAMES.table}`)],
    'sqs:SendMessage': [arn('sqs', NAMES.queue)],
    'sqs:ReceiveMessage': [arn('sqs', NAMES.queue)],
    'sns:Publish': [arn('sns', NAMES.topic)],
    'secretsmanager:GetSecretValue': [arn('secretsmanager', `secret:${NAMES.secret}-??????`)],
    'ssm:GetParameter': [arn('ssm', `parameter${NAMES.parameter}`)],
  }
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-policy-'))
  moto = await startMoto({ env: { INITIAL_NO_AUTH_ACTION_COUNT: String(SETUP_CALLS) } })
  const anyone = { AccessKeyId: FAKE_CREDENTIALS.AWS_ACCESS_KEY_ID, SecretAccessKey: FAKE_CREDENTIALS.AWS_SECRET_ACCESS_KEY }
  const setup = v2Client('IAM', anyone)
  await setup.createUser({ UserName: 'admin' }).promise()
  adminKeys = (await setup.createAccessKey({ UserName: 'admin' }).promise()).AccessKey
  await setup.putUserPolicy({
    UserName: 'admin',
    PolicyName: 'everything',
    PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] }),
  }).promise()
  await setup.createUser({ UserName: 'runner' }).promise()
  runnerKeys = (await setup.createAccessKey({ UserName: 'runner' }).promise()).AccessKey

  // From here on moto enforces IAM: the resources are made with the admin's keys.
  iam = v2Client('IAM', adminKeys)
  const s3 = v2Client('S3', adminKeys, { s3ForcePathStyle: true })
  for (const bucket of [NAMES.uploads, NAMES.reports]) {
    await s3.createBucket({ Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: REGION } }).promise()
  }
  await s3.putObject({ Bucket: NAMES.reports, Key: 'daily/summary.csv', Body: 'a,b\n' }).promise()
  await v2Client('DynamoDB', adminKeys).createTable({
    TableName: NAMES.table,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
    KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
  }).promise()
  const queueUrl = (await v2Client('SQS', adminKeys).createQueue({ QueueName: NAMES.queue }).promise()).QueueUrl
  const topicArn = (await v2Client('SNS', adminKeys).createTopic({ Name: NAMES.topic }).promise()).TopicArn
  await v2Client('SecretsManager', adminKeys).createSecret({ Name: NAMES.secret, SecretString: 'hunter2' }).promise()
  await v2Client('SSM', adminKeys).putParameter({ Name: NAMES.parameter, Value: 'on', Type: 'String' }).promise()
  names = { ...NAMES, queueUrl, topicArn }
})

after(async () => {
  await moto?.stop()
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
})

for (const sdk of ['v3', 'v2']) {
  describe(`a policy from a recorded ${sdk} program`, () => {
    let records
    let policy
    let file

    test('the program runs recorded with admin keys, and its calls carry their resources, no payload', async () => {
      file = path.join(tmp, `${sdk}.jsonl`)
      const extra = { RECORD_FILE: file, AWS_CSM_PORT: String(await freeUdpPort()) }
      // aws-sdk v2 reports through Client-Side Monitoring; in Lambda the account comes from the context.
      if (sdk === 'v2') Object.assign(extra, { AWS_CSM_ENABLED: 'true', LAMBDA_FUNCTION_ARN: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:orders` })
      const outcome = await runScript(sdk, adminKeys, extra)
      assert.equal(outcome.stdout.trim(), 'OK', outcome.stderr)
      assert.equal(outcome.code, 0)
      const text = fs.readFileSync(file, 'utf8')
      assertNoSecrets(text, file)
      for (const payload of ['payload', 'not recorded', 'hunter2', adminKeys.SecretAccessKey]) {
        assert.ok(!text.includes(payload), `the recording holds "${payload}"`)
      }
      records = readJsonl(file).filter((record) => record.Type === 'ApiCall')
      assert.equal(records.length, 11)
      for (const record of records) {
        assert.ok(record.Resources && typeof record.Resources === 'object', `${record.Service}.${record.Api} has Resources`)
      }
      const putObject = records.find((record) => record.Api === 'PutObject')
      assert.deepEqual(putObject.Resources, { 's3:PutObject': [`arn:aws:s3:::${NAMES.uploads}/incoming/2026/run.json`] })
      const getSecret = records.find((record) => record.Api === 'GetSecretValue')
      const account = sdk === 'v2' ? ACCOUNT : '*'
      assert.deepEqual(getSecret.Resources, {
        'secretsmanager:GetSecretValue': [`arn:aws:secretsmanager:${REGION}:${account}:secret:${NAMES.secret}-??????`],
      })
    })

    test('policy names the buckets and key folders, and the expected ARNs of the other services', async () => {
      // Outside Lambda the recording has no account for most ARNs: --account-id fills it in.
      const args = sdk === 'v3' ? ['policy', '--account-id', ACCOUNT, file] : ['policy', file]
      const outcome = await run(process.execPath, [CLI, ...args], process.env)
      assert.equal(outcome.code, 0, outcome.stderr)
      assert.equal(outcome.stderr, '', 'nothing to report: every resource is known')
      policy = JSON.parse(outcome.stdout)
      assert.deepEqual(resourcesByAction(policy), expectedResources())
      for (const statement of policy.Statement) {
        assert.equal(statement.Effect, 'Allow')
        assert.deepEqual(statement.Action, [...statement.Action].sort())
        assert.notEqual(statement.Resource, '*')
      }
      assert.equal(new Set(policy.Statement.map((statement) => statement.Sid)).size, policy.Statement.length)
    })

    test('a user holding exactly that policy reruns the program: every call succeeds', async () => {
      await setPolicy(motoEnforceable(policy))
      const outcome = await runScript(sdk, runnerKeys)
      assert.equal(outcome.stdout.trim(), 'OK', outcome.stderr)
    })

    test('without any one statement, the program fails on the call that needed it', async () => {
      const enforceable = motoEnforceable(policy)
      for (let i = 0; i < enforceable.Statement.length; i++) {
        const removed = enforceable.Statement[i]
        const needing = records.find((record) => Object.keys(record.Resources).some((action) => removed.Action.includes(action)))
        const call = `${needing.Service.replaceAll(' ', '')}.${needing.Api}`
        await setPolicy({ ...enforceable, Statement: enforceable.Statement.filter((_, j) => j !== i) })
        const outcome = await runScript(sdk, runnerKeys)
        assert.equal(outcome.code, 1, `without ${removed.Sid} the program still succeeded`)
        assert.match(outcome.stdout, new RegExp(`^FAILED ${call.replace('.', '\\.')} `), `without ${removed.Sid}`)
      }
      // And the whole policy still works afterwards (the failures were the statements' doing).
      await setPolicy(enforceable)
      assert.equal((await runScript(sdk, runnerKeys)).stdout.trim(), 'OK')
    })
  })
}

test('API_CALL_RECORDER_RESOURCES=false records the calls without their resources', async () => {
  const file = path.join(tmp, 'no-resources.jsonl')
  const outcome = await runScript('v3', adminKeys, {
    RECORD_FILE: file, AWS_CSM_PORT: String(await freeUdpPort()), API_CALL_RECORDER_RESOURCES: 'false',
  })
  assert.equal(outcome.stdout.trim(), 'OK', outcome.stderr)
  const calls = readJsonl(file).filter((record) => record.Type === 'ApiCall')
  assert.equal(calls.length, 11)
  assert.ok(calls.every((record) => !('Resources' in record)))
})

test('concurrent calls of both SDKs each record their own resources', async () => {
  const file = path.join(tmp, 'concurrent.jsonl')
  const outcome = await runScript('concurrent', adminKeys, {
    RECORD_FILE: file, AWS_CSM_PORT: String(await freeUdpPort()), AWS_CSM_ENABLED: 'true',
  })
  assert.equal(outcome.stdout.trim(), 'OK', outcome.stderr)
  const puts = readJsonl(file).filter((record) => record.Type === 'ApiCall' && record.Api === 'PutObject')
  assert.equal(puts.length, 40)
  const named = puts.map((record) => {
    assert.deepEqual(Object.keys(record.Resources), ['s3:PutObject'])
    assert.equal(record.Resources['s3:PutObject'].length, 1)
    return record.Resources['s3:PutObject'][0]
  }).sort()
  const expected = ['v2', 'v3'].flatMap((sdk) => Array.from({ length: 20 }, (_, i) => `arn:aws:s3:::${NAMES.uploads}/concurrent/${sdk}-${i}.txt`))
  assert.deepEqual(named, expected.sort())
})

describe('policy output', () => {
  const recording = () => path.join(tmp, 'v3.jsonl')
  const policyOf = async (...args) => {
    const outcome = await run(process.execPath, [CLI, 'policy', ...args], process.env)
    assert.equal(outcome.code, 0, outcome.stderr)
    return outcome
  }

  test('--format yaml is the same statements as iamRoleStatements YAML', async () => {
    const json = JSON.parse((await policyOf('--account-id', ACCOUNT, recording())).stdout)
    const yaml = (await policyOf('--format', 'yaml', '--account-id', ACCOUNT, recording())).stdout
    const check = await new Promise((resolve) => {
      const child = spawn('python3', ['-c', 'import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))'])
      let out = ''
      child.stdout.on('data', (chunk) => { out += chunk })
      child.once('close', (code) => resolve({ code, out }))
      child.stdin.end(yaml)
    })
    assert.equal(check.code, 0)
    const statements = JSON.parse(check.out).iamRoleStatements
    assert.deepEqual(statements, json.Statement.map((statement) => ({ ...statement, Resource: [].concat(statement.Resource) })))
  })

  test('--format cdk is PolicyStatements with the same content', async () => {
    const json = JSON.parse((await policyOf('--account-id', ACCOUNT, recording())).stdout)
    const cdk = (await policyOf('--format', 'cdk', '--account-id', ACCOUNT, recording())).stdout
    assert.match(cdk, /^import \* as iam from 'aws-cdk-lib\/aws-iam'$/m)
    // Evaluated with a stand-in for aws-cdk-lib's iam module, which records what it is given.
    const body = cdk.replace(/^import .*$/m, '').replace('export const statements =', 'return')
    const iamModule = { Effect: { ALLOW: 'Allow' }, PolicyStatement: class { constructor(props) { Object.assign(this, props) } } }
    const statements = new Function('iam', body)(iamModule)
    assert.deepEqual(statements.map((s) => ({ Sid: s.sid, Effect: s.effect, Action: s.actions, Resource: s.resources })),
      json.Statement.map((statement) => ({ ...statement, Resource: [].concat(statement.Resource) })))
  })

  test('--max-resources collapses to a common prefix and says so', async () => {
    const outcome = await policyOf('--max-resources', '1', '--account-id', ACCOUNT, recording())
    const byAction = resourcesByAction(JSON.parse(outcome.stdout))
    assert.deepEqual(byAction['s3:GetObject'], ['arn:aws:s3:::acr-policy-*'])
    assert.deepEqual(byAction['s3:PutObject'], [`arn:aws:s3:::${NAMES.uploads}/incoming/2026/*`])
    assert.match(outcome.stderr, /s3:GetObject: 2 resources collapsed to arn:aws:s3:::acr-policy-\* \(--max-resources\)/)
  })

  test('without --account-id the unknown account stays "*" and is reported', async () => {
    const outcome = await policyOf(recording())
    const byAction = resourcesByAction(JSON.parse(outcome.stdout))
    assert.deepEqual(byAction['dynamodb:GetItem'], [`arn:aws:dynamodb:${REGION}:*:table/${NAMES.table}`])
    assert.match(outcome.stderr, /ARNs have "\*" for the account: the recordings do not show it; give --account-id/)
  })

  test('records without resources (Client-Side Monitoring only) get "*", reported with their calls', async () => {
    const stripped = path.join(tmp, 'csm-only.jsonl')
    const lines = readJsonl(recording()).map(({ Resources, ...record }) => JSON.stringify(record))
    fs.writeFileSync(stripped, `${lines.join('\n')}\n`)
    const outcome = await policyOf(stripped)
    const policy = JSON.parse(outcome.stdout)
    for (const statement of policy.Statement) assert.equal(statement.Resource, '*')
    assert.deepEqual(Object.keys(resourcesByAction(policy)).sort(), Object.keys(expectedResources()).sort())
    assert.match(outcome.stderr, /Resource "\*" for s3:GetObject: recorded without resources: Client-Side Monitoring .*; from S3\.GetObject \(1 call\), S3\.HeadObject \(1 call\)/)
    assert.match(outcome.stderr, /note: S3\.HeadObject also needs s3:GetObjectVersion when its input has VersionId Exists/)
  })

  test('malformed Resources count as no resources: the call is kept, action-level', async () => {
    const file = path.join(tmp, 'malformed.jsonl')
    const call = (Resources) => JSON.stringify({ Type: 'ApiCall', Service: 'S3', Api: 'GetObject', AttemptCount: 1, Resources })
    fs.writeFileSync(file, [
      call({ 's3:GetObject': ['not-an-arn', 42], 'not an action': ['arn:aws:s3:::b/k'] }),
      call('oops'),
      call(['arn:aws:s3:::b/k']),
      call({ 's3:GetObject': [`arn:aws:s3:::b/${'k'.repeat(3000)}`] }),
    ].join('\n'))
    const outcome = await policyOf(file)
    assert.deepEqual(JSON.parse(outcome.stdout).Statement.map((s) => [s.Action, s.Resource]), [[['s3:GetObject'], '*']])
    assert.match(outcome.stderr, /Resource "\*" for s3:GetObject: recorded without resources: .*from S3\.GetObject \(4 calls\)/)
  })

  test('bad options are usage errors', async () => {
    for (const args of [['--format', 'xml'], ['--account-id', '12'], ['--max-resources', '0'], ['--max-resources', 'x']]) {
      const outcome = await run(process.execPath, [CLI, 'policy', ...args, recording()], process.env)
      assert.equal(outcome.code, 2, `${args.join(' ')}: ${outcome.stderr}`)
    }
  })
})
