// botocore (Python) making real calls to moto with CSM on, received by a Recorder in this process.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startMoto, FAKE_CREDENTIALS } from './helpers/moto.mjs'
import { freeTcpPort } from './helpers/ports.mjs'
import { onlyCall, assertNoSecrets } from './helpers/records.mjs'
import { Recorder } from '../index.js'

const here = path.dirname(fileURLToPath(import.meta.url))
let moto, dir

before(async () => {
  moto = await startMoto()
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-boto-'))
})
after(async () => {
  await moto?.stop()
  fs.rmSync(dir, { recursive: true, force: true })
})

test('botocore calls are recorded with service, operation, status and retries', async () => {
  const recorder = new Recorder({ port: 0, sink: 'none' })
  const port = recorder.start().split(':')[1]
  const closed = await freeTcpPort()
  const { stdout } = await promisify(execFile)(
    'python3', [path.join(here, 'fixtures', 'botocore_calls.py'), moto.endpoint, String(closed)],
    {
      timeout: 60_000,
      env: {
        ...process.env, ...FAKE_CREDENTIALS,
        AWS_CSM_ENABLED: 'true', AWS_CSM_PORT: port, AWS_CSM_CLIENT_ID: 'boto-test',
        AWS_CONFIG_FILE: path.join(dir, 'none'), AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'),
      },
    },
  )
  assert.match(stdout, /404 NoSuchKey/)
  assert.match(stdout, /refused/)
  await recorder.flush()
  const records = recorder.takeRecords()
  await recorder.stop()
  assertNoSecrets(JSON.stringify(records), 'records')
  // A plain Recorder outside Lambda attributes nothing: no phase, no function.
  assert.ok(records.every((r) => r.ClientId === 'boto-test' && !('phase' in r) && !('functionName' in r)))

  assert.equal(onlyCall(records, 'STS', 'GetCallerIdentity', (r) => r.FinalHttpStatusCode === 200).AttemptCount, 1)
  assert.equal(onlyCall(records, 'S3', 'ListObjectsV2').FinalHttpStatusCode, 200)
  const missing = onlyCall(records, 'S3', 'GetObject')
  assert.deepEqual([missing.FinalHttpStatusCode, missing.FinalAwsException], [404, 'NoSuchKey'])
  assert.equal(onlyCall(records, 'DynamoDB', 'PutItem').FinalHttpStatusCode, 200)
  const refused = onlyCall(records, 'STS', 'GetCallerIdentity', (r) => r.FinalHttpStatusCode === undefined)
  assert.equal(refused.AttemptCount, 3)
  assert.equal(refused.MaxRetriesExceeded, 1)
  assert.equal(refused.FinalSdkException, 'EndpointConnectionError')
  const attempts = records.filter((r) => r.Type === 'ApiCallAttempt')
  assert.equal(attempts.length, 10, '7 calls of one attempt each, and 3 attempts of the refused call')
  assert.ok(attempts.filter((r) => r.HttpStatusCode).every((r) => r.AccessKey === FAKE_CREDENTIALS.AWS_ACCESS_KEY_ID))
  assert.deepEqual(recorder.stats().malformed, 0)
})
