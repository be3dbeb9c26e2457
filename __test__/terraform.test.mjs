// A Terraform run recorded through the proxy of `run --upstream` against moto with IAM enforced: the
// AWS provider (the Go SDK v2, which sends no CSM) applies and destroys a module of eight services,
// and the policy the recording gives is exactly enough to apply and destroy it again.
//
// Terraform and its AWS provider come from the machine: /usr/local/bin/terraform (or TERRAFORM) and
// a provider mirror at /opt/tf-plugins (or TF_PLUGIN_MIRROR), read through a CLI config file with a
// filesystem_mirror so that `terraform init` needs no network. Without them the test says so and skips.
//
// moto's enforcement differs from AWS's in ways the test adapts to, each in `forMoto` below:
//   - it checks IAM, SNS, DynamoDB, SSM, Secrets Manager, Logs and STS requests against "*", not
//     against their ARNs: statements of those services are widened to "*" (their ARNs are asserted
//     on the records instead);
//   - it names some S3 requests with actions of its own: a HEAD of a bucket is `s3:HeadBucket`, and
//     GETs of bucket subresources it does not know (?encryption, ?replication, ?object-lock,
//     ?requestPayment, ?ownershipControls) are `s3:ListBucket`: those names are granted beside the
//     real actions, in the same statements;
//   - it checks SQS requests on a queue that does not exist against "*": CreateQueue, and the
//     GetQueueAttributes the provider polls with until a deleted queue is gone. Those two actions
//     are granted on "*" besides.
//   - it checks only each operation's own action, not those AWS checks besides: CreateQueue with
//     tags needs `sqs:TagQueue` on AWS, not on moto. A statement of such actions alone is not
//     removed.
// Only S3 and SQS statements are then checked by removing them one at a time.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'

import { FAKE_CREDENTIALS, startMoto } from './helpers/moto.mjs'
import { assertNoLeaks } from './helpers/leaks.mjs'
import { ADMIN_POLICY, runCommand, userWithPolicy as createUser } from './helpers/commands.mjs'
import { readJsonl } from './helpers/records.mjs'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const CLI = path.join(ROOT, 'cli', 'index.js')
const MODULE = path.join(ROOT, '__test__', 'fixtures', 'terraform', 'main.tf')
const TERRAFORM = process.env.TERRAFORM ?? '/usr/local/bin/terraform'
const PLUGIN_MIRROR = process.env.TF_PLUGIN_MIRROR ?? '/opt/tf-plugins'
// The provider retries refused requests with backoff; a denied run still ends well within this.
const COMMAND_TIMEOUT_MS = 240_000

const missing = [TERRAFORM, PLUGIN_MIRROR].filter((p) => !fs.existsSync(p))
const skip = missing.length > 0 ? `Terraform is not on this machine (${missing.join(', ')} absent)` : false

let tmp

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'recorder-terraform-test-'))
})

after(() => {
  fs.rmSync(tmp, { recursive: true, force: true })
})

const run = (command, args, options) => runCommand(command, args, { ...options, timeoutMs: COMMAND_TIMEOUT_MS })

/** The environment of one run: no AWS or proxy settings of the user's, Terraform offline. */
function terraformEnv(credentials) {
  const env = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(AWS_|API_CALL_RECORDER_|TF_)/.test(key) && !/_proxy$/i.test(key)) env[key] = value
  }
  const none = path.join(tmp, 'none')
  fs.writeFileSync(none, '')
  const cliConfig = path.join(tmp, 'terraform.rc')
  fs.writeFileSync(cliConfig, `provider_installation {\n  filesystem_mirror {\n    path = ${JSON.stringify(PLUGIN_MIRROR)}\n  }\n}\n`)
  return {
    ...env,
    ...credentials,
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: none,
    AWS_SHARED_CREDENTIALS_FILE: none,
    // The machine's own bundle settings stay, as a user's would: the proxy must override them.
    SSL_CERT_FILE: process.env.SSL_CERT_FILE ?? '/etc/ssl/certs/ca-certificates.crt',
    AWS_CA_BUNDLE: process.env.AWS_CA_BUNDLE ?? '/etc/ssl/certs/ca-certificates.crt',
    TF_CLI_CONFIG_FILE: cliConfig,
    TF_IN_AUTOMATION: '1',
    TF_INPUT: '0',
    CHECKPOINT_DISABLE: '1',
  }
}

/** A working directory with the module, initialised from the mirror. */
async function workingDirectory(name) {
  const dir = path.join(tmp, name)
  fs.mkdirSync(dir)
  fs.copyFileSync(MODULE, path.join(dir, 'main.tf'))
  const init = await run(TERRAFORM, ['init', '-no-color'], { env: terraformEnv({}), cwd: dir })
  assert.equal(init.code, 0, `${init.stdout}\n${init.stderr}`)
  return dir
}

/** `terraform <command>` under `run --upstream moto`; with `output`, its records go there. */
function terraform(moto, dir, credentials, command, output) {
  const recorded = output ? ['--output', output] : []
  // The child prints the CA bundle it was given, to check afterwards that the directory is gone.
  const script = `echo "CA=$AWS_CA_BUNDLE" && exec ${TERRAFORM} ${command} -auto-approve -no-color`
  return run(process.execPath, [CLI, 'run', '--upstream', moto.endpoint, ...recorded, '--', 'sh', '-c', script],
    { env: terraformEnv(credentials), cwd: dir })
}

/** The aws CLI straight at moto, to set up users (not recorded). */
function aws(moto, args, credentials) {
  return run('aws', ['--endpoint-url', moto.endpoint, '--output', 'json', ...args], { env: { ...terraformEnv(credentials), AWS_CSM_ENABLED: 'false' } })
}

/** A moto IAM user holding exactly `policy`, made by the user of `credentials`. */
const userWithPolicy = (moto, name, policy, credentials) => createUser((args) => aws(moto, args, credentials), name, policy)

const actionsOf = (statement) => [statement.Action].flat()
const resourcesOf = (statement) => [statement.Resource].flat()

// The names moto checks some S3 requests under, beside the action AWS checks (see the header).
const MOTO_S3_NAMES = {
  's3:ListBucket': ['s3:HeadBucket'],
  's3:GetEncryptionConfiguration': ['s3:ListBucket'],
  's3:GetReplicationConfiguration': ['s3:ListBucket'],
  's3:GetBucketObjectLockConfiguration': ['s3:ListBucket'],
  's3:GetBucketRequestPayment': ['s3:ListBucket'],
  's3:GetBucketOwnershipControls': ['s3:ListBucket'],
}
const MOTO_SQS_ANYWHERE = ['sqs:CreateQueue', 'sqs:GetQueueAttributes']
// Actions AWS checks beside the operation's own that moto does not check at all.
const MOTO_UNCHECKED = [...MOTO_SQS_ANYWHERE, 'sqs:TagQueue']
const checkedByArn = (statement) => actionsOf(statement).every((a) => /^(s3|sqs):/.test(a))

function forMoto(policy) {
  return {
    ...policy,
    Statement: [
      ...policy.Statement.map((statement) => {
        if (!checkedByArn(statement)) return { ...statement, Resource: '*' }
        const actions = actionsOf(statement)
        const extra = actions.flatMap((a) => MOTO_S3_NAMES[a] ?? []).filter((a) => !actions.includes(a))
        return extra.length > 0 ? { ...statement, Action: [...actions, ...new Set(extra)] } : statement
      }),
      { Effect: 'Allow', Action: MOTO_SQS_ANYWHERE, Resource: '*' },
    ],
  }
}

test('terraform apply and destroy through the proxy: every call named, and the policy it records is exactly enough', { skip, timeout: 1_200_000 }, async (t) => {
  // The first three requests are free (they make the admin user); every later one must be signed.
  const moto = await startMoto({ env: { INITIAL_NO_AUTH_ACTION_COUNT: '3' } })
  t.after(() => moto.stop())
  const admin = await userWithPolicy(moto, 'admin', ADMIN_POLICY, FAKE_CREDENTIALS)
  const dir = await workingDirectory('recorded')

  const applied = path.join(tmp, 'apply.jsonl')
  const apply = await terraform(moto, dir, admin, 'apply', applied)
  assert.equal(apply.code, 0, `${apply.stdout}\n${apply.stderr}`)
  assert.match(apply.stdout, /Apply complete! Resources: \d+ added/)
  const destroyed = path.join(tmp, 'destroy.jsonl')
  const destroy = await terraform(moto, dir, admin, 'destroy', destroyed)
  assert.equal(destroy.code, 0, `${destroy.stdout}\n${destroy.stderr}`)
  assert.match(destroy.stdout, /Destroy complete!/)
  for (const result of [apply, destroy]) {
    assert.match(result.stderr, /proxy: \d+ requests, \d+ tunnels decrypted, \d+ passed through, 0 not understood/)
    assert.equal(fs.existsSync(path.dirname(/^CA=(.+)$/m.exec(result.stdout)[1])), false, 'the CA directory is removed')
  }

  const records = [...readJsonl(applied), ...readJsonl(destroyed)]
  const calls = records.filter((r) => r.Type === 'ApiCall')
  // The provider sends no CSM: every record is the proxy's, and each names its operation.
  assert.ok(calls.length > 50, `${calls.length} calls`)
  assert.deepEqual(calls.filter((c) => c.ApiUnknown), [])
  assert.deepEqual([...new Set(calls.map((c) => c.Service))].sort(),
    ['CloudWatch Logs', 'DynamoDB', 'IAM', 'S3', 'SNS', 'SQS', 'SSM', 'STS', 'Secrets Manager'])
  const apis = new Set(calls.map((c) => `${c.Service}.${c.Api}`))
  for (const expected of ['S3.CreateBucket', 'S3.PutBucketVersioning', 'S3.PutObject', 'S3.DeleteObject', 'S3.DeleteBucket',
    'SQS.CreateQueue', 'SQS.DeleteQueue', 'SNS.CreateTopic', 'SNS.Subscribe', 'DynamoDB.CreateTable', 'SSM.PutParameter',
    'Secrets Manager.CreateSecret', 'Secrets Manager.DeleteSecret', 'CloudWatch Logs.CreateLogGroup', 'IAM.CreateRole',
    'IAM.PutRolePolicy', 'STS.GetCallerIdentity']) {
    assert.ok(apis.has(expected), `${expected} among ${[...apis].sort().join(', ')}`)
  }
  assert.ok(calls.filter((c) => c.Service !== 'STS').every((c) => c.Resources !== undefined),
    JSON.stringify(calls.filter((c) => c.Service !== 'STS' && !c.Resources).map((c) => `${c.Service}.${c.Api}`)))
  const resources = (api) => calls.filter((c) => c.Api === api).flatMap((c) => Object.entries(c.Resources ?? {}))
  // Versioning is enabled by the apply and suspended by the destroy.
  assert.deepEqual(resources('PutBucketVersioning'), Array(2).fill(['s3:PutBucketVersioning', ['arn:aws:s3:::recorder-terraform-data']]))
  assert.deepEqual(resources('CreateTable'), [['dynamodb:CreateTable', ['arn:aws:dynamodb:us-east-1:*:table/recorder-terraform-items']]])
  for (const attempt of records.filter((r) => r.Type === 'ApiCallAttempt')) {
    assert.equal(attempt.AccessKey, admin.AWS_ACCESS_KEY_ID)
    assert.match(attempt.Fqdn, /amazonaws\.com$/)
  }
  const outputs = [['records', fs.readFileSync(applied, 'utf8') + fs.readFileSync(destroyed, 'utf8')],
    ['stdout', apply.stdout + destroy.stdout], ['stderr', apply.stderr + destroy.stderr]]
  for (const [what, text] of outputs) {
    assertNoLeaks(text, what, { textKeys: false })
    assert.ok(!text.includes(admin.AWS_SECRET_ACCESS_KEY), `the secret key in ${what}`)
  }
  // Terraform prints the planned content itself; the recorder keeps no body.
  for (const [what, text] of outputs.filter(([what]) => what !== 'stdout')) {
    assert.ok(!text.includes('written by terraform'), `the object's content in ${what}`)
  }

  const policyRun = await run(process.execPath, [CLI, 'policy', '--account-id', '123456789012', applied, destroyed], { env: terraformEnv({}) })
  assert.equal(policyRun.code, 0, policyRun.stderr)
  const policy = JSON.parse(policyRun.stdout)
  const show = JSON.stringify(policy, null, 1)
  const statementOf = (action) => policy.Statement.find((s) => actionsOf(s).includes(action))
  // What the input asked for: the object's versions (its destroy deletes each VersionId), tags
  // given at creation, and a secret named by its ARN, whatever its random suffix.
  assert.deepEqual(resourcesOf(statementOf('s3:DeleteObjectVersion') ?? {}), ['arn:aws:s3:::recorder-terraform-data/readme.txt'], show)
  assert.ok(statementOf('sns:TagResource'), show)
  // The topic names no delivery-status role: nothing is passed, so no iam:PassRole.
  assert.equal(statementOf('iam:PassRole'), undefined, show)
  assert.deepEqual(resourcesOf(statementOf('sqs:DeleteQueue')).sort(), ['arn:aws:sqs:us-east-1:123456789012:recorder-terraform-dead-letters',
    'arn:aws:sqs:us-east-1:123456789012:recorder-terraform-work'], show)
  assert.deepEqual(resourcesOf(statementOf('sqs:TagQueue')), ['arn:aws:sqs:us-east-1:123456789012:recorder-terraform-work'], show)
  assert.ok(resourcesOf(statementOf('secretsmanager:DeleteSecret')).every((arn) => arn.endsWith(':secret:recorder-terraform-token-??????')), show)
  assert.ok(policy.Statement.filter(checkedByArn).every((s) => resourcesOf(s).every((r) => r !== '*' || actionsOf(s).every((a) => /^s3:(ListAllMyBuckets|CreateBucket)$|^sqs:ListQueues$/.test(a)))), show)

  // A user holding exactly the policy applies and destroys the module again; without any one S3 or
  // SQS statement (moto checks their ARNs), the run fails. Each run has a moto of its own, so that
  // they run side by side (the provider spends most of a run waiting on its polls).
  const checked = policy.Statement.filter((s) => checkedByArn(s) && actionsOf(s).some((a) => !MOTO_UNCHECKED.includes(a)))
  assert.ok(checked.length >= 2, show)
  const runAs = async (name, document) => {
    const own = await startMoto({ env: { INITIAL_NO_AUTH_ACTION_COUNT: '3' } })
    try {
      const ownAdmin = await userWithPolicy(own, 'admin', ADMIN_POLICY, FAKE_CREDENTIALS)
      const user = await userWithPolicy(own, name, forMoto(document), ownAdmin)
      const where = await workingDirectory(name)
      const applyRun = await terraform(own, where, user, 'apply')
      return applyRun.code !== 0 ? applyRun : await terraform(own, where, user, 'destroy')
    } finally {
      await own.stop()
    }
  }
  const [enough, ...partials] = await Promise.all([
    runAs('least', policy),
    ...checked.map((removed, i) => runAs(`partial-${i}`, { ...policy, Statement: policy.Statement.filter((s) => s !== removed) })),
  ])
  assert.equal(enough.code, 0, `the recorded policy is not enough: ${enough.stdout}\n${enough.stderr}\n${show}`)
  for (const [i, denied] of partials.entries()) {
    assert.notEqual(denied.code, 0, `the module was applied and destroyed without ${JSON.stringify(checked[i])}`)
    assert.match(denied.stdout + denied.stderr, /AccessDenied|not authorized|403/, `${denied.stdout}\n${denied.stderr}`)
  }
})
