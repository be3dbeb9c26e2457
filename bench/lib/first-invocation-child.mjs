// The first invocation against the warm ones, in a fresh process: the SDKs loaded, their clients made
// and their calls made once (the SDKs' own first use), then the recorder required and ApiCallRecorder
// called, then INVOCATIONS invocations of a handler making three v3 calls and two aws-sdk v2 calls to
// moto (its bucket, table and queue made beforehand, by the bench). Invocation 1 then differs from
// the warm ones by the recorder's first use: its code compiled, its tables read, its clients'
// middleware added. With `unrecorded` the same runs without the recorder, for the bench to take away. Prints one JSON line: per invocation, the handler's time and the CPU time the process
// spent in it (all threads; moto runs in its own process, so that is the SDKs' and the recorder's work
// alone, without the wait for moto, whose response times vary by milliseconds).
//
//   node first-invocation-child.mjs <recorded|unrecorded> <motoEndpoint> <udpPort> <resourceName>
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { createRequire } from 'node:module'
import { useSdkEnvironment } from './sdk-env.mjs'
import { lambdaContext } from '../../__test__/helpers/lambda.mjs'

const require = createRequire(import.meta.url)
const [mode, endpoint, port, name] = process.argv.slice(2)
const INVOCATIONS = 10

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-bench-first-'))
try {
  useSdkEnvironment(dir, port)
  let calls
  let handlerMs = 0
  let handlerCpuMs = 0
  const handler = async () => {
    const started = performance.now()
    const cpu = process.cpuUsage()
    await calls()
    handlerMs = performance.now() - started
    const { user, system } = process.cpuUsage(cpu)
    handlerCpuMs = (user + system) / 1000
    return 'ok'
  }
  const AWS = require('aws-sdk')
  const { S3Client, ListObjectsV2Command } = require('@aws-sdk/client-s3')
  const { DynamoDBClient, GetItemCommand } = require('@aws-sdk/client-dynamodb')
  const { SQSClient, SendMessageCommand } = require('@aws-sdk/client-sqs')
  const v3 = { endpoint, region: 'us-west-2' }
  const s3 = new S3Client({ ...v3, forcePathStyle: true })
  const dynamodb = new DynamoDBClient(v3)
  const sqs = new SQSClient(v3)
  const sts2 = new AWS.STS(v3)
  const s3v2 = new AWS.S3({ ...v3, s3ForcePathStyle: true })
  const queueUrl = `${endpoint}/123456789012/${name}`
  calls = async () => {
    await s3.send(new ListObjectsV2Command({ Bucket: name }))
    await dynamodb.send(new GetItemCommand({ TableName: name, Key: { pk: { S: 'k' } } }))
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'x' }))
    await sts2.getCallerIdentity().promise()
    await s3v2.listObjectsV2({ Bucket: name }).promise()
  }

  // The SDKs' own first calls, made before the recorder starts: otherwise their tens of milliseconds,
  // which vary by several from process to process, would bury the recorder's own first use.
  await calls()

  const warnings = []
  let wrapped = handler
  if (mode === 'recorded') {
    const { ApiCallRecorder } = require('aws-api-call-recorder')
    wrapped = ApiCallRecorder(handler, { enabled: true, port: Number(port), sink: 'none', logger: { warn: (m) => warnings.push(m) } })
    if (wrapped === handler) throw new Error(`the recorder did not start: ${warnings.join(' | ')}`)
  }
  // A full collection now (--expose-gc), in both modes: otherwise V8's first collection falls in the
  // first invocation or not, depending on how much everything before it allocated, and its cost
  // would be counted as the recorder's (or as a saving) in that one invocation.
  globalThis.gc()
  const invocations = []
  for (let i = 0; i < INVOCATIONS; i++) {
    await wrapped({}, lambdaContext({ functionName: 'bench-first' }))
    invocations.push({ ms: handlerMs, cpuMs: handlerCpuMs })
  }
  process.stdout.write(`${JSON.stringify({ mode, invocations, warnings })}\n`)
} finally {
  fs.rmSync(dir, { recursive: true, force: true })
}
process.exit(0)
