// Overlapping invocations in one process: every call recorded in process (v3 plugin, aws-sdk v2's
// events) carries the request id of the invocation whose code made it; a datagram that can only be
// attributed by time names every invocation then running, and none as its own.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startMoto, FAKE_CREDENTIALS } from './helpers/moto.mjs'
import { freeUdpPort } from './helpers/ports.mjs'
import { readJsonl } from './helpers/records.mjs'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
let moto, dir

before(async () => {
  moto = await startMoto()
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-attribution-'))
})

after(async () => {
  await moto?.stop()
  fs.rmSync(dir, { recursive: true, force: true })
})

// 24 invocations, up to 8 at once, each making v3 and aws-sdk v2 calls with delays between them,
// so that the calls of different invocations interleave; one datagram sent while several run.
const SCRIPT = `
const AWS = require('aws-sdk')
const { STSClient, GetCallerIdentityCommand } = require('@aws-sdk/client-sts')
const { S3Client, ListBucketsCommand } = require('@aws-sdk/client-s3')
const ApiCallRecorder = require(process.env.PACKAGE)
const dgram = require('node:dgram')
const { randomUUID } = require('node:crypto')
const endpoint = process.env.MOTO
const sts = new STSClient({ endpoint })
const s3 = new S3Client({ endpoint, forcePathStyle: true })
const stsV2 = new AWS.STS({ endpoint })
const pause = () => new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 15)))
const port = Number(process.env.AWS_CSM_PORT)
let datagramSent = null
const handler = ApiCallRecorder(async (event, context) => {
  await pause()
  await sts.send(new GetCallerIdentityCommand({}))
  await pause()
  await stsV2.getCallerIdentity().promise()
  if (event.n === 5) {
    const socket = dgram.createSocket('udp4')
    await new Promise((resolve) => socket.send(JSON.stringify({ Type: 'ApiCall', Service: 'Other', Api: 'FromAnotherProgram', Latency: 1 }), port, '127.0.0.1', resolve))
    socket.close()
    datagramSent = true
  }
  await pause()
  await s3.send(new ListBucketsCommand({}))
  return { n: event.n, id: context.awsRequestId }
}, { enabled: true, file: process.env.FILE, port, logger: { warn: (m) => process.stderr.write(m + '\\n') } })
;(async () => {
  const contexts = Array.from({ length: 24 }, (_, n) => ({ n, context: { functionName: 'overlap', functionVersion: '1',
    awsRequestId: randomUUID(), getRemainingTimeInMillis: () => 30000, callbackWaitsForEmptyEventLoop: true } }))
  const results = []
  for (let i = 0; i < contexts.length; i += 8) {
    results.push(...await Promise.all(contexts.slice(i, i + 8).map(({ n, context }) => handler({ n }, context))))
  }
  process.stdout.write(JSON.stringify({ results, datagramSent }))
})()
`

test('calls of overlapping invocations each carry their own request id; a datagram names the candidates', { timeout: 120_000 }, async () => {
  const file = path.join(dir, 'calls.jsonl')
  const script = path.join(dir, 'overlap.cjs')
  fs.writeFileSync(script, SCRIPT)
  const env = { PATH: process.env.PATH, HOME: dir, ...FAKE_CREDENTIALS, AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1',
    AWS_CONFIG_FILE: path.join(dir, 'none'), AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'),
    PACKAGE: ROOT, MOTO: moto.endpoint, FILE: file, AWS_CSM_PORT: String(await freeUdpPort()),
    NODE_PATH: path.join(ROOT, 'node_modules') }
  const stdout = await new Promise((resolve, reject) => execFile(process.execPath, [script], { env, cwd: ROOT, timeout: 90_000 },
    (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out))))
  const { results, datagramSent } = JSON.parse(stdout)
  assert.equal(results.length, 24)
  assert.equal(datagramSent, true)
  const records = readJsonl(file)
  const calls = records.filter((r) => r.Type === 'ApiCall' && r.Service !== 'Other')
  // The first invocation ran alone until the second began: its calls while the others ran are
  // attributed by time, so they name the candidates, its own among them. Every other call is exact.
  const [first, ...others] = results
  for (const { id } of others) {
    const own = calls.filter((r) => r.awsRequestId === id).map((r) => `${r.Service} ${r.Api}`).sort()
    assert.deepEqual(own, ['S3 ListBuckets', 'STS GetCallerIdentity', 'STS GetCallerIdentity'], id)
  }
  const ofFirst = calls.filter((r) => r.awsRequestId === first.id || (r.candidateRequestIds ?? []).includes(first.id) &&
    !others.some(({ id }) => id === r.awsRequestId))
  assert.equal(ofFirst.length, 3, JSON.stringify(ofFirst))
  assert.ok(ofFirst.every((r) => r.awsRequestId === first.id || r.awsRequestId === undefined))
  assert.equal(calls.length, 24 * 3, 'each call once')
  assert.ok(records.filter((r) => r.Type === 'ApiCallAttempt' && r.awsRequestId !== undefined).every((r) => results.some(({ id }) => id === r.awsRequestId)))
  // The datagram came from outside the process: only its time is known, while several ran.
  const [other] = records.filter((r) => r.Service === 'Other')
  assert.equal(other.awsRequestId, undefined)
  assert.ok(Array.isArray(other.candidateRequestIds) && other.candidateRequestIds.length > 1, JSON.stringify(other))
  assert.ok(other.candidateRequestIds.every((id) => results.some((r) => r.id === id)))
  assert.equal(other.phase, 'invoke')
})
