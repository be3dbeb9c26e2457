// aws-sdk v2 with Client-Side Monitoring off, as functions usually run: the wrapper records its calls
// from the SDK's own events, in process, each call once, with its resources and invocation, and no
// datagram is sent. Each case runs in its own process: v2 reads its CSM settings when it is loaded.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startMoto, FAKE_CREDENTIALS } from './helpers/moto.mjs'
import { freeTcpPort, freeUdpPort } from './helpers/ports.mjs'
import { readJsonl, assertNoSecrets } from './helpers/records.mjs'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
let moto, dir, closedPort

before(async () => {
  moto = await startMoto()
  closedPort = await freeTcpPort()
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-v2-in-process-'))
})

after(async () => {
  await moto?.stop()
  fs.rmSync(dir, { recursive: true, force: true })
})

/** A script: a wrapped handler making aws-sdk v2 calls, invoked twice, then its stats printed. */
const SCRIPT = `
const AWS = require('aws-sdk')
const ApiCallRecorder = require(process.env.PACKAGE)
const { randomUUID } = require('node:crypto')
const client = (Service, endpoint, extra = {}) =>
  new Service({ endpoint: endpoint ?? process.env.MOTO, region: 'us-west-2', s3ForcePathStyle: true, ...extra })
const warnings = []
let recorder
const handler = ApiCallRecorder(async (event) => {
  const s3 = client(AWS.S3)
  await s3.createBucket({ Bucket: process.env.BUCKET + event.n, CreateBucketConfiguration: { LocationConstraint: 'us-west-2' } }).promise()
  await s3.putObject({ Bucket: process.env.BUCKET + event.n, Key: 'dir/ä ✓.txt', Body: 'x' }).promise()
  const missing = await s3.getObject({ Bucket: process.env.BUCKET + event.n, Key: 'nope' }).promise().catch((e) => e.code)
  const refused = await client(AWS.STS, 'http://127.0.0.1:' + process.env.CLOSED_PORT, { maxRetries: 2, retryDelayOptions: { base: 5 } })
    .getCallerIdentity().promise().catch((e) => e.code)
  return { missing, refused }
}, { enabled: true, file: process.env.FILE, port: Number(process.env.AWS_CSM_PORT ?? 0), logger: { warn: (m) => warnings.push(String(m)) } })
;(async () => {
  // During init, before any invocation.
  await client(AWS.STS).getCallerIdentity().promise()
  const ids = []
  for (const n of [1, 2]) {
    const context = { functionName: 'v2-in-process', functionVersion: '1', awsRequestId: randomUUID(),
      getRemainingTimeInMillis: () => 30000, callbackWaitsForEmptyEventLoop: true }
    ids.push(context.awsRequestId)
    const result = await handler({ n }, context)
    if (result.missing !== 'NoSuchKey' || result.refused === undefined) throw new Error(JSON.stringify(result))
  }
  process.stdout.write(JSON.stringify({ ids, warnings, csm: AWS.Service._clientSideMonitoring === true }))
})()
`

function runScript(name, env) {
  const file = path.join(dir, `${name}.jsonl`)
  const script = path.join(dir, `${name}.cjs`)
  fs.writeFileSync(script, SCRIPT)
  const childEnv = { PATH: process.env.PATH, HOME: dir, ...FAKE_CREDENTIALS,
    AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1', AWS_CONFIG_FILE: path.join(dir, 'none'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'), PACKAGE: ROOT, MOTO: moto.endpoint,
    CLOSED_PORT: String(closedPort), FILE: file, BUCKET: `v2-${name}-`, NODE_PATH: path.join(ROOT, 'node_modules'), ...env }
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script], { env: childEnv, cwd: ROOT, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`${error.message}\n${stderr}`))
      resolve({ ...JSON.parse(stdout), records: readJsonl(file), text: fs.readFileSync(file, 'utf8'), stderr })
    })
  })
}

test('with CSM off, every v2 call is recorded once, in process, with its invocation and resources', async () => {
  const { ids, warnings, csm, records, text } = await runScript('off', {})
  assert.equal(csm, false)
  assert.deepEqual(warnings, [])
  assertNoSecrets(text, 'the recording')
  const calls = records.filter((r) => r.Type === 'ApiCall')
  const summary = calls.map((r) => `${r.awsRequestId ?? r.phase} ${r.Service} ${r.Api}`)
  const perInvocation = (id) => [`${id} S3 CreateBucket`, `${id} S3 PutObject`, `${id} S3 GetObject`, `${id} STS GetCallerIdentity`]
  assert.deepEqual(summary, ['init STS GetCallerIdentity', ...perInvocation(ids[0]), ...perInvocation(ids[1])])
  const put = calls.find((r) => r.Api === 'PutObject' && r.awsRequestId === ids[1])
  assert.deepEqual(put.Resources, { 's3:PutObject': ['arn:aws:s3:::v2-off-2/dir/ä ✓.txt'] })
  const refused = calls.filter((r) => r.Api === 'GetCallerIdentity' && r.awsRequestId)
  assert.ok(refused.every((r) => r.AttemptCount === 3 && r.FinalSdkException), JSON.stringify(refused))
  const attempts = records.filter((r) => r.Type === 'ApiCallAttempt')
  assert.equal(attempts.length, 1 + 2 * (3 + 3), 'one per HTTP attempt, the refused ones included')
  assert.ok(attempts.every((r) => r.AccessKey === FAKE_CREDENTIALS.AWS_ACCESS_KEY_ID))
})

test('with CSM on, v2 sends its own datagrams and nothing is recorded twice', async () => {
  const { csm, records } = await runScript('on', { AWS_CSM_ENABLED: 'true', AWS_CSM_PORT: String(await freeUdpPort()) })
  assert.equal(csm, true)
  const calls = records.filter((r) => r.Type === 'ApiCall')
  assert.equal(calls.length, 1 + 2 * 4, calls.map((r) => r.Api).join(', '))
})
