// The layer as Lambda runs it: `npm run layer`'s zip extracted with its file modes, the runtime
// started through its exec wrapper (AWS_LAMBDA_EXEC_WRAPPER) under the real runtime interface client,
// and functions that know nothing of the recorder. Every shape of handler is recorded, each call
// once with its invocation; a handler that fails to load fails as it does without the layer.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { startLambda, runtimeClient, lambdaLayoutUnavailable } from './helpers/lambda-runtime.mjs'
import { startMoto, FAKE_CREDENTIALS } from './helpers/moto.mjs'
import { readJsonl, assertNoSecrets } from './helpers/records.mjs'
import { extractedLayer } from './helpers/layer.mjs'
import { freeUdpPort } from './helpers/ports.mjs'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const STEP_TIMEOUT_MS = 120_000
let moto, dir, opt, wrapper

// The functions, as users write them: no recorder in sight.
const V3_AND_V2_CALLS = `
  const sts = new STSClient({ endpoint: process.env.MOTO_ENDPOINT })
  const s3 = new S3Client({ endpoint: process.env.MOTO_ENDPOINT, forcePathStyle: true })
  const stsV2 = new AWS.STS({ endpoint: process.env.MOTO_ENDPOINT })
`
const FUNCTIONS = {
  'cjs/index.js': `
const { STSClient, GetCallerIdentityCommand } = require('@aws-sdk/client-sts')
const { S3Client, ListBucketsCommand } = require('@aws-sdk/client-s3')
const AWS = require('aws-sdk')
${V3_AND_V2_CALLS}
// A call started at load that ends in the first invocation belongs to that invocation.
const started = sts.send(new GetCallerIdentityCommand({}))
exports.handler = async (event) => {
  await started
  await s3.send(new ListBucketsCommand({}))
  await stsV2.getCallerIdentity().promise()
  return { shape: 'cjs', i: event.i }
}`,
  'src/app.mjs': `
import { STSClient, GetCallerIdentityCommand } from '@aws-sdk/client-sts'
import { S3Client, ListBucketsCommand } from '@aws-sdk/client-s3'
import AWS from 'aws-sdk'
${V3_AND_V2_CALLS}
await sts.send(new GetCallerIdentityCommand({}))
export const handler = async (event) => {
  await s3.send(new ListBucketsCommand({}))
  await stsV2.getCallerIdentity().promise()
  return { shape: 'esm', i: event.i }
}`,
  'typed/package.json': '{ "type": "module" }',
  'typed/app.js': `
import { S3Client, ListBucketsCommand } from '@aws-sdk/client-s3'
const s3 = new S3Client({ endpoint: process.env.MOTO_ENDPOINT, forcePathStyle: true })
export const nested = { handler: async (event) => {
  await s3.send(new ListBucketsCommand({}))
  return { shape: 'type-module', i: event.i }
} }`,
  'callback.js': `
const AWS = require('aws-sdk')
const stsV2 = new AWS.STS({ endpoint: process.env.MOTO_ENDPOINT })
exports.handler = (event, context, callback) => {
  stsV2.getCallerIdentity((error) => callback(error, { shape: 'callback', i: event.i }))
}`,
  'wrapped.js': `
const ApiCallRecorder = require('aws-api-call-recorder')
const { S3Client, ListBucketsCommand } = require('@aws-sdk/client-s3')
const s3 = new S3Client({ endpoint: process.env.MOTO_ENDPOINT, forcePathStyle: true })
exports.handler = ApiCallRecorder(async (event) => {
  await s3.send(new ListBucketsCommand({}))
  return { shape: 'wrapped', i: event.i }
})`,
  'streaming.js': `
const { S3Client, ListBucketsCommand } = require('@aws-sdk/client-s3')
const s3 = new S3Client({ endpoint: process.env.MOTO_ENDPOINT, forcePathStyle: true })
exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  responseStream.setContentType('text/plain')
  await s3.send(new ListBucketsCommand({}))
  responseStream.end('streamed ' + event.i)
})`,
  'bundle-src/app.js': `
import { S3Client, ListBucketsCommand } from '@aws-sdk/client-s3'
const s3 = new S3Client({ endpoint: process.env.MOTO_ENDPOINT, forcePathStyle: true })
export const handler = async (event) => {
  await s3.send(new ListBucketsCommand({}))
  return { shape: 'bundle', i: event.i }
}`,
  'syntax.js': 'exports.handler = async () => {',
  'noexport.js': 'exports.other = async () => 1',
  'throws.js': 'throw new TypeError("the function\'s init failed")',
  'notfunction.js': 'exports.handler = 42',
}

before(async () => {
  const client = runtimeClient()
  if (client.error) throw new Error(`these tests run functions under the Lambda runtime interface client: ${client.error}`)
  moto = await startMoto()
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-layer-'))
  ;({ opt, wrapper } = extractedLayer(dir))
  const task = path.join(dir, 'task')
  for (const [file, text] of Object.entries(FUNCTIONS)) {
    fs.mkdirSync(path.dirname(path.join(task, file)), { recursive: true })
    fs.writeFileSync(path.join(task, file), text)
  }
  // The SDKs, where Lambda's runtime provides them (ES modules do not read NODE_PATH).
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(task, 'node_modules'))
  // A function bundled with its SDK, as esbuild users deploy it.
  createRequire(import.meta.url)('esbuild').buildSync({
    entryPoints: [path.join(task, 'bundle-src', 'app.js')], bundle: true, platform: 'node', format: 'cjs',
    outfile: path.join(task, 'bundle', 'index.js'), logLevel: 'error', absWorkingDir: ROOT,
  })
})

after(async () => {
  await moto?.stop()
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

let functions = 0

/** The runtime client generations this Node.js runs: 3.x everywhere, 4.x (nodejs24.x's) on Node.js 22 and later. */
const GENERATIONS = [3, 4].filter((generation) => !runtimeClient(generation).error)

async function layerFunction(handler, { layer = true, env = {}, generation = 3, wrapper: execWrapper = wrapper, lambdaLayout = false } = {}) {
  const file = path.join(dir, `records-${++functions}.jsonl`)
  const inside = lambdaLayout ? { opt: '/opt', task: '/var/task' } : { opt, task: path.join(dir, 'task') }
  const fn = await startLambda({
    taskRoot: inside.task,
    handler,
    runtimeGeneration: generation,
    bootstrap: true,
    execWrapper: layer ? (lambdaLayout ? '/opt/aws-api-call-recorder' : execWrapper) : null,
    layout: lambdaLayout ? { opt, task: path.join(dir, 'task') } : null,
    env: {
      ...FAKE_CREDENTIALS,
      AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1',
      AWS_CONFIG_FILE: path.join(dir, 'none'),
      AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'),
      MOTO_ENDPOINT: moto.endpoint,
      NODE_PATH: path.join(inside.opt, 'nodejs', 'node_modules'),
      // The recorder's CSM port, free for each function (tests and other runs may share the machine).
      AWS_CSM_PORT: String(await freeUdpPort()),
      API_CALL_RECORDER_FILE: file,
      ...env,
    },
  })
  return { fn, file }
}

test('the zip has the exec wrapper at its root, executable, and ending in exec "$@"', () => {
  const mode = fs.statSync(wrapper).mode
  assert.equal(mode & 0o111, 0o111, `mode ${mode.toString(8)}`)
  const script = fs.readFileSync(wrapper, 'utf8')
  assert.match(script, /^#!\/bin\/sh\n/)
  assert.match(script.trimEnd(), /\nexec "\$@"$/)
  assert.doesNotMatch(script, /NODE_OPTIONS=/, 'NODE_OPTIONS is the user\'s')
})

test('the exec wrapper points _HANDLER at the layer\'s handler module by an absolute path, however it is run', () => {
  const handlerModule = path.join(opt, 'nodejs', 'node_modules', 'aws-api-call-recorder', 'layer', 'handler')
  const env = { PATH: process.env.PATH, _HANDLER: 'src/app.handler' }
  const settings = (command, cwd) => Object.fromEntries(execFileSync(command, ['env'], { cwd, env, encoding: 'utf8' })
    .split('\n').filter((line) => /^(_HANDLER|API_CALL_RECORDER_HANDLER)=/.test(line)).map((line) => line.split('=')))
  const expected = { _HANDLER: `${handlerModule}.handler`, API_CALL_RECORDER_HANDLER: 'src/app.handler' }
  // As Lambda runs it (its absolute path), then by a relative path from its own folder and from below it.
  assert.deepEqual(settings(wrapper, dir), expected)
  assert.deepEqual(settings(`./${path.basename(wrapper)}`, path.dirname(wrapper)), expected)
  assert.deepEqual(settings(`../${path.basename(wrapper)}`, path.join(opt, 'nodejs')), expected)
})

const SHAPES = [
  ['cjs/index.handler', 'cjs', ['S3 ListBuckets', 'STS GetCallerIdentity'], []],
  ['src/app.handler', 'esm', ['S3 ListBuckets', 'STS GetCallerIdentity'], ['STS GetCallerIdentity']],
  ['typed/app.nested.handler', 'type-module', ['S3 ListBuckets'], []],
  ['wrapped.handler', 'wrapped', ['S3 ListBuckets'], []],
  ['bundle/index.handler', 'bundle', ['S3 ListBuckets'], []],
]

for (const [handler, shape, perInvocation, atInit] of SHAPES) for (const generation of GENERATIONS) {
  test(`${shape} (${handler}), runtime client ${generation}.x: every call once, with its invocation, and the init calls`, { timeout: STEP_TIMEOUT_MS }, async () => {
    const { fn, file } = await layerFunction(handler, { generation })
    const requestIds = []
    try {
      for (let i = 0; i < 3; i++) {
        const outcome = await fn.invoke({ i })
        assert.deepEqual(outcome.result, { shape, i }, fn.output())
        requestIds.push(outcome.requestId)
      }
    } finally {
      await fn.shutdown()
    }
    const records = readJsonl(file)
    const calls = records.filter((r) => r.Type === 'ApiCall')
    const of = (where) => calls.filter(where).map((r) => `${r.Service} ${r.Api}`).sort()
    assert.deepEqual(of((r) => r.phase === 'init'), atInit, fn.output())
    const extra = shape === 'cjs' ? ['STS GetCallerIdentity'] : []
    requestIds.forEach((requestId, i) => {
      assert.deepEqual(of((r) => r.awsRequestId === requestId), [...perInvocation, ...(i === 0 ? extra : [])].sort())
    })
    assert.equal(calls.length, atInit.length + 3 * perInvocation.length + extra.length, 'nothing recorded twice')
    assertNoSecrets(fs.readFileSync(file, 'utf8'), 'the records')
    assert.doesNotMatch(fn.output(), /aws-api-call-recorder.*(not recording|warn)/i)
  })
}

test('a callback-style handler keeps the 3.x runtime client\'s callback semantics', { timeout: STEP_TIMEOUT_MS }, async (t) => {
  if (Number(process.versions.node.split('.')[0]) >= 24) return t.skip('nodejs24.x refuses callback handlers')
  const { fn, file } = await layerFunction('callback.handler')
  let outcome
  try {
    outcome = await fn.invoke({ i: 7 })
  } finally {
    await fn.shutdown()
  }
  assert.deepEqual(outcome.result, { shape: 'callback', i: 7 }, fn.output())
  const calls = readJsonl(file).filter((r) => r.Type === 'ApiCall')
  assert.deepEqual(calls.map((r) => [r.Service, r.Api, r.awsRequestId]), [['STS', 'GetCallerIdentity', outcome.requestId]])
})

for (const generation of GENERATIONS) {
  test(`laid out as Lambda does (layer on /opt, code on /var/task), runtime client ${generation}.x`, { timeout: STEP_TIMEOUT_MS }, async (t) => {
    const unavailable = lambdaLayoutUnavailable()
    if (unavailable) return t.skip(unavailable)
    for (const handler of ['cjs/index.handler', 'src/app.handler']) {
      const { fn, file } = await layerFunction(handler, { generation, lambdaLayout: true })
      let outcome
      try {
        outcome = await fn.invoke({ i: 1 })
      } finally {
        await fn.shutdown()
      }
      assert.equal(outcome.result?.i, 1, fn.output())
      const calls = readJsonl(file).filter((r) => r.Type === 'ApiCall' && r.awsRequestId === outcome.requestId)
      assert.ok(calls.some((r) => r.Api === 'ListBuckets'), `${handler}: ${fn.output()}`)
    }
  })

  test(`a response-streaming handler gets its stream, runtime client ${generation}.x`, { timeout: STEP_TIMEOUT_MS }, async () => {
    const { fn, file } = await layerFunction('streaming.handler', { generation })
    const outcomes = []
    try {
      for (let i = 0; i < 2; i++) outcomes.push(await fn.invoke({ i }))
    } finally {
      await fn.shutdown()
    }
    outcomes.forEach((outcome, i) => {
      assert.equal(outcome.streamed, true, fn.output())
      assert.equal(outcome.body, `streamed ${i}`)
    })
    const calls = readJsonl(file).filter((r) => r.Type === 'ApiCall')
    assert.deepEqual(calls.map((r) => r.awsRequestId), outcomes.map((o) => o.requestId))
  })
}

test('a layer whose addon does not load: the function runs unchanged, after one warning', { timeout: STEP_TIMEOUT_MS }, async () => {
  const broken = path.join(dir, 'opt-broken')
  fs.cpSync(opt, broken, { recursive: true })
  const addon = path.join(broken, 'nodejs', 'node_modules', 'aws-api-call-recorder', 'api-call-recorder.linux-x64-gnu.node')
  fs.writeFileSync(addon, 'not an ELF file')
  const { fn, file } = await layerFunction('cjs/index.handler', { wrapper: path.join(broken, 'aws-api-call-recorder') })
  const outcomes = []
  try {
    for (let i = 0; i < 2; i++) outcomes.push(await fn.invoke({ i }))
  } finally {
    await fn.shutdown()
  }
  outcomes.forEach((outcome, i) => assert.deepEqual(outcome.result, { shape: 'cjs', i }, fn.output()))
  assert.deepEqual(readJsonl(file), [])
  const warnings = fn.output().split('\n').filter((line) => /aws-api-call-recorder/.test(line) && /not recording/.test(line))
  assert.equal(warnings.length, 1, fn.output())
})

test('an unusable option under the layer: the function runs unchanged, after one warning', { timeout: STEP_TIMEOUT_MS }, async () => {
  const { fn, file } = await layerFunction('cjs/index.handler', { env: { API_CALL_RECORDER_SINK: 'carrier-pigeon' } })
  let outcome
  try {
    outcome = await fn.invoke({ i: 3 })
  } finally {
    await fn.shutdown()
  }
  assert.deepEqual(outcome.result, { shape: 'cjs', i: 3 }, fn.output())
  assert.deepEqual(readJsonl(file), [])
  const warnings = fn.output().split('\n').filter((line) => /carrier-pigeon/.test(line))
  assert.equal(warnings.length, 1, fn.output())
})

test('the exec wrapper run twice (wrappers chained) wraps once; a function with its own copy is recorded once', { timeout: STEP_TIMEOUT_MS }, async () => {
  // A second wrapper that runs this one, as a user combining two layers' wrappers would write it.
  const chained = path.join(dir, 'chained-wrapper')
  fs.writeFileSync(chained, `#!/bin/sh\nexec "${wrapper}" "${wrapper}" "$@"\n`, { mode: 0o755 })
  // The function ships its own copy of the package in its node_modules.
  const own = path.join(dir, 'own-copy')
  fs.mkdirSync(path.join(own, 'node_modules'), { recursive: true })
  fs.cpSync(path.join(opt, 'nodejs', 'node_modules', 'aws-api-call-recorder'), path.join(own, 'node_modules', 'aws-api-call-recorder'), { recursive: true })
  for (const name of fs.readdirSync(path.join(ROOT, 'node_modules'))) {
    if (name !== '.bin') fs.symlinkSync(path.join(ROOT, 'node_modules', name), path.join(own, 'node_modules', name))
  }
  fs.copyFileSync(path.join(dir, 'task', 'wrapped.js'), path.join(own, 'wrapped.js'))
  for (const [taskRoot, execWrapper] of [[path.join(dir, 'task'), chained], [own, wrapper]]) {
    const file = path.join(dir, `records-${++functions}.jsonl`)
    const fn = await startLambda({
      taskRoot, handler: 'wrapped.handler', bootstrap: true, execWrapper,
      env: { ...FAKE_CREDENTIALS, MOTO_ENDPOINT: moto.endpoint, NODE_PATH: path.join(opt, 'nodejs', 'node_modules'),
        AWS_CONFIG_FILE: path.join(dir, 'none'), AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'), API_CALL_RECORDER_FILE: file,
        AWS_CSM_PORT: String(await freeUdpPort()) },
    })
    const outcomes = []
    try {
      for (let i = 0; i < 2; i++) outcomes.push(await fn.invoke({ i }))
    } finally {
      await fn.shutdown()
    }
    outcomes.forEach((outcome, i) => assert.deepEqual(outcome.result, { shape: 'wrapped', i }, fn.output()))
    const calls = readJsonl(file).filter((r) => r.Type === 'ApiCall')
    assert.deepEqual(calls.map((r) => r.awsRequestId), outcomes.map((o) => o.requestId), `${execWrapper}: ${fn.output()}`)
    assert.doesNotMatch(fn.output(), /aws-api-call-recorder\]/, 'no warning')
  }
})

const BROKEN = ['missing.handler', 'syntax.handler', 'noexport.handler', 'throws.handler', 'notfunction.handler', 'nodot']

for (const generation of GENERATIONS) {
test(`a handler that fails to load fails as it does without the layer, runtime client ${generation}.x`, { timeout: STEP_TIMEOUT_MS }, async () => {
  // The 4.x client refuses callback-style handlers: so it does under the layer.
  const broken = generation >= 4 ? [...BROKEN, 'callback.handler'] : BROKEN
  const initError = async (handler, layer) => {
    const { fn } = await layerFunction(handler, { layer, generation })
    try {
      await assert.rejects(fn.init(), /init error/)
      const [error] = fn.history.initErrors
      return { errorType: error.errorType, errorMessage: error.errorMessage }
    } finally {
      await fn.shutdown()
    }
  }
  for (const handler of broken) {
    const without = await initError(handler, false)
    assert.deepEqual(await initError(handler, true), without, handler)
  }
})
}
