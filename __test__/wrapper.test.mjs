// ApiCallRecorder's contract: the handler's outcome passes through untouched, whatever the recorder does.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import ApiCallRecorder, { Recorder, ApiCallRecorder as Named } from '../index.mjs'
import { freeUdpPort, sendDatagrams } from './helpers/ports.mjs'
import { lambdaContext, memoryLogger } from './helpers/lambda.mjs'
import { readJsonl } from './helpers/records.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const corpusDir = path.join(here, '..', 'tests', 'fixtures', 'csm-corpus')
const corpus = fs.readFileSync(path.join(corpusDir, 'aws-sdk-js-v2.jsonl'), 'utf8')
  .split('\n').filter(Boolean).map((line) => JSON.parse(line).datagram)
const aCall = corpus.find((d) => d.includes('"Type":"ApiCall"'))
let dir

before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-wrap-')) })
after(() => fs.rmSync(dir, { recursive: true, force: true }))

async function recording(handler, extra = {}) {
  const port = await freeUdpPort()
  const file = path.join(dir, `${port}.jsonl`)
  const logger = memoryLogger()
  const wrapped = ApiCallRecorder(handler, { enabled: true, port, file, logger, ...extra })
  return { wrapped, port, file, logger }
}

test('exports: default function, named ApiCallRecorder and Recorder, CommonJS and ESM alike', async () => {
  const { createRequire } = await import('node:module')
  // The package's CommonJS entry (package.json `main`).
  const cjs = createRequire(import.meta.url)('../index.bundle.js')
  assert.equal(typeof ApiCallRecorder, 'function')
  assert.equal(Named, ApiCallRecorder)
  assert.equal(cjs, ApiCallRecorder)
  assert.equal(cjs.Recorder, Recorder)
})

test('an async result is returned as the same object, and calls made during it are recorded', async () => {
  const result = { ok: true }
  const { wrapped, port, file, logger } = await recording(async () => {
    await sendDatagrams(port, corpus.slice(0, 4))
    return result
  })
  const context = lambdaContext()
  assert.equal(await wrapped({}, context), result)
  const records = readJsonl(file)
  assert.equal(records.length, 4)
  assert.ok(records.every((r) => r.awsRequestId === context.awsRequestId && r.phase === 'invoke'))
  assert.deepEqual(logger.warnings, [])
})

test('consecutive invocations: each record carries its own invocation\'s awsRequestId and coldStart', async () => {
  const { wrapped, port, file, logger } = await recording(async (event) => {
    await sendDatagrams(port, corpus.slice(0, event.calls))
    return event.calls
  })
  const contexts = [lambdaContext(), lambdaContext(), lambdaContext()]
  const calls = [2, 4, 1]
  for (const [i, context] of contexts.entries()) assert.equal(await wrapped({ calls: calls[i] }, context), calls[i])
  const records = readJsonl(file)
  assert.deepEqual(records.map((r) => r.awsRequestId), contexts.flatMap((c, i) => Array(calls[i]).fill(c.awsRequestId)))
  assert.deepEqual(records.map((r) => r.coldStart), calls.flatMap((n, i) => Array(n).fill(i === 0)))
  assert.ok(records.every((r) => r.phase === 'invoke' && r.functionName === 'recorder-test'))
  assert.deepEqual(logger.warnings, [])
})

test('a thrown error is rethrown as the same value, even a falsy one, after flushing', async () => {
  const error = new Error('boom')
  const { wrapped, port, file } = await recording(async () => {
    await sendDatagrams(port, [aCall])
    throw error
  })
  await assert.rejects(wrapped({}, lambdaContext()), (e) => e === error)
  assert.equal(readJsonl(file).length, 1)
  for (const falsy of [undefined, null, 0, '']) {
    const { wrapped: throwsFalsy } = await recording(async () => { throw falsy })
    let caught = 'nothing thrown'
    try { await throwsFalsy({}, lambdaContext()) } catch (e) { caught = e }
    assert.equal(caught, falsy)
  }
})

test('callback-style handlers: result and error through the callback, sync throws too', async () => {
  const { wrapped: ok } = await recording((event, context, callback) => { setTimeout(() => callback(null, 'done'), 5) })
  assert.equal(await ok({}, lambdaContext()), 'done')
  const failure = new Error('callback failure')
  const { wrapped: fails } = await recording((event, context, callback) => callback(failure))
  await assert.rejects(fails({}, lambdaContext()), (e) => e === failure)
  const { wrapped: throws } = await recording((event, context, callback) => { throw failure })
  await assert.rejects(throws({}, lambdaContext()), (e) => e === failure)
  const { wrapped: both } = await recording(async (event, context, callback) => { callback(null, 'first'); return 'second' })
  assert.equal(await both({}, lambdaContext()), 'first')
})

test('a wrapped callback-style handler is an async (event, context) handler, as nodejs24.x requires', async () => {
  // nodejs24.x refuses handlers that take a callback; the wrapper takes two arguments and returns a
  // promise, whatever the inner handler's style.
  const { wrapped } = await recording((event, context, callback) => callback(null, `${event.n} on ${process.version}`))
  assert.equal(wrapped.constructor.name, 'AsyncFunction')
  assert.equal(wrapped.length, 2)
  const outcome = wrapped({ n: 7 }, lambdaContext())
  assert.ok(outcome instanceof Promise)
  assert.equal(await outcome, `7 on ${process.version}`)
})

test('a handler that calls no SDK returns its result and writes nothing', async () => {
  const { wrapped, file, logger } = await recording(async (event) => event.value)
  assert.equal(await wrapped({ value: 42 }), 42)
  assert.equal(fs.existsSync(file), false)
  assert.deepEqual(logger.warnings, [])
})

test('datagrams still on their way when the handler returns are caught, without waiting out drainMs', async () => {
  const { wrapped, port, file } = await recording(async () => {
    // Sent from this process's event loop and not awaited, as aws-sdk v2 sends its CSM events.
    const socket = dgram.createSocket('udp4')
    socket.send(aCall, port, '127.0.0.1')
    socket.send(aCall, port, '127.0.0.1', () => socket.close())
    return 'early'
  }, { drainMs: 5000 })
  const context = lambdaContext()
  const started = performance.now()
  assert.equal(await wrapped({}, context), 'early')
  // The drain ends at the barrier, not after the 5 s upper bound.
  assert.ok(performance.now() - started < 2500, `returned after ${performance.now() - started} ms`)
  assert.deepEqual(readJsonl(file).map((r) => r.awsRequestId), [context.awsRequestId, context.awsRequestId])
})

test('two wrappers on one port share the receiver; both record, neither warns', async () => {
  const port = await freeUdpPort()
  const file = path.join(dir, 'shared.jsonl')
  const logger = memoryLogger()
  const a = ApiCallRecorder(async () => { await sendDatagrams(port, [aCall]); return 'a' }, { enabled: true, port, file, logger })
  const b = ApiCallRecorder(async () => { await sendDatagrams(port, [aCall]); return 'b' }, { enabled: true, port, file, logger })
  const [ca, cb] = [lambdaContext(), lambdaContext()]
  assert.deepEqual(await Promise.all([a({}, ca), b({}, cb)]), ['a', 'b'])
  const ids = readJsonl(file).map((r) => r.awsRequestId)
  assert.equal(ids.length, 2)
  assert.deepEqual(logger.warnings, [])
})

test('a second wrapper on the same port with other options is told which options won', async () => {
  const port = await freeUdpPort()
  const first = path.join(dir, 'first-wins.jsonl')
  const second = path.join(dir, 'ignored.csv')
  const logger = memoryLogger()
  const a = ApiCallRecorder(async () => 'a', { enabled: true, port, file: first, logger })
  const b = ApiCallRecorder(async () => { await sendDatagrams(port, [aCall]); return 'b' }, { enabled: true, port, file: second, drainMs: 10, logger })
  assert.equal(logger.warnings.length, 1)
  assert.match(logger.warnings[0], new RegExp(`already records on 127\\.0\\.0\\.1:${port}; this one shares it, and the first one's options win`))
  assert.ok(logger.warnings[0].includes(first) && logger.warnings[0].includes(second), logger.warnings[0])
  assert.equal(await b({}, lambdaContext()), 'b')
  assert.equal(await a({}, lambdaContext()), 'a')
  // The first wrapper's sink got the call; the second's file was never written.
  assert.equal(readJsonl(first).length, 1)
  assert.equal(fs.existsSync(second), false)
  assert.equal(logger.warnings.length, 1)
})

test('a port taken by another process gives one warning and the handler runs unchanged', async () => {
  const taken = dgram.createSocket('udp4')
  await new Promise((resolve) => taken.bind(0, '127.0.0.1', resolve))
  try {
    const logger = memoryLogger()
    const handler = async () => 'still works'
    const wrapped = ApiCallRecorder(handler, { enabled: true, port: taken.address().port, logger })
    assert.equal(wrapped, handler, 'falls back to the handler itself')
    assert.equal(await wrapped({}, lambdaContext()), 'still works')
    assert.equal(logger.warnings.length, 1)
    assert.match(logger.warnings[0], /ERR_RECORDER_PORT_IN_USE/)
    assert.match(logger.warnings[0], new RegExp(`127\\.0\\.0\\.1:${taken.address().port}`))
  } finally {
    taken.close()
  }
})

test('when not activated the handler itself is returned and no socket is opened', async () => {
  const saved = { NODE_ENV: process.env.NODE_ENV, FLAG: process.env.API_CALL_RECORDER_IS_ACTIVATED }
  try {
    delete process.env.NODE_ENV
    delete process.env.API_CALL_RECORDER_IS_ACTIVATED
    const port = await freeUdpPort()
    const handler = async () => 'plain'
    assert.equal(ApiCallRecorder(handler, { port }), handler)
    process.env.NODE_ENV = 'development'
    process.env.API_CALL_RECORDER_IS_ACTIVATED = 'false'
    assert.equal(ApiCallRecorder(handler, { port }), handler, 'the explicit flag wins over NODE_ENV')
    const probe = dgram.createSocket('udp4')
    await new Promise((resolve, reject) => { probe.once('error', reject); probe.bind(port, '127.0.0.1', resolve) })
    probe.close()
    process.env.API_CALL_RECORDER_IS_ACTIVATED = 'true'
    assert.notEqual(ApiCallRecorder(handler, { port, sink: 'none' }), handler)
  } finally {
    for (const [key, name] of [['NODE_ENV', 'NODE_ENV'], ['FLAG', 'API_CALL_RECORDER_IS_ACTIVATED']]) {
      if (saved[key] === undefined) delete process.env[name]
      else process.env[name] = saved[key]
    }
  }
})

test('a sink that cannot write warns with the reason; the result is unchanged', async () => {
  const blocker = path.join(dir, 'a-file')
  fs.writeFileSync(blocker, '')
  const { wrapped, port, logger } = await recording(async () => {
    await sendDatagrams(port, [aCall, aCall])
    return 'fine'
  }, { file: path.join(blocker, 'cannot', 'be', 'a-dir.jsonl') })
  assert.equal(await wrapped({}, lambdaContext()), 'fine')
  assert.equal(logger.warnings.length, 1)
  assert.match(logger.warnings[0], /2 of 2 recorded calls were not delivered/)
  assert.match(logger.warnings[0], /a-file/)
})

test('malformed traffic is counted and reported once; valid calls around it are recorded', async () => {
  let invocations = 0
  const { wrapped, port, file, logger } = await recording(async () => {
    if (invocations++ === 0) {
      await sendDatagrams(port, [aCall, 'not json', Buffer.from([0xff, 0xfe]), '[]', Buffer.alloc(9000, 0x20), aCall])
    }
    return 'ok'
  })
  assert.equal(await wrapped({}, lambdaContext()), 'ok')
  assert.equal(readJsonl(file).length, 2)
  assert.equal(logger.warnings.length, 1)
  assert.match(logger.warnings[0], /4 datagrams were not CSM events.*3 malformed, 1 over 8 KiB/)
  assert.equal(await wrapped({}, lambdaContext()), 'ok')
  assert.equal(logger.warnings.length, 1, 'reported once, not again when nothing new went wrong')
})

test('an option with an unusable value warns and falls back to the plain handler', async () => {
  const logger = memoryLogger()
  const handler = async () => 'x'
  assert.equal(ApiCallRecorder(handler, { enabled: true, sink: 'kafka', logger }), handler)
  assert.match(logger.warnings[0], /ERR_RECORDER_CONFIG/)
  assert.throws(() => ApiCallRecorder('not a function'), TypeError)
})

test('a local script using the wrapper exits by itself', async () => {
  const port = await freeUdpPort()
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(here, 'fixtures', 'script-exits.cjs'), String(port)], {
    timeout: 10_000,
  })
  assert.equal(stdout.trim(), '{"doubled":42}')
})

test('Recorder: start, stats, records, flush and stop, then the port is free again', async () => {
  const recorder = new Recorder({ port: 0, sink: 'none' })
  assert.equal(recorder.address, null)
  const address = recorder.start()
  assert.equal(recorder.address, address)
  const port = Number(address.split(':')[1])
  await sendDatagrams(port, [aCall, 'bad'])
  await recorder.flush({ drainMs: 20 })
  assert.equal(recorder.records().length, 1)
  assert.equal(recorder.records().length, 1, 'records() does not consume')
  assert.equal(recorder.takeRecords().length, 1)
  assert.equal(recorder.records().length, 0)
  const stats = recorder.stats()
  assert.deepEqual([stats.received, stats.parsed, stats.malformed], [2, 1, 1])
  await recorder.stop()
  assert.equal(recorder.address, null)
  const again = new Recorder({ port, sink: 'none' })
  assert.equal(again.start(), address)
  await again.stop()
})

test('numeric options out of range or not whole are refused with ERR_RECORDER_CONFIG, never rounded or wrapped', () => {
  const u32 = [-1, 0.5, 2 ** 32, NaN, Infinity, '10']
  const refused = {
    port: [70000, 65536, -1, 1.5, NaN, -Infinity, '31000'],
    maxBufferedRecords: u32,
    maxBufferedBytes: u32,
    drainMs: u32,
    flushTimeoutMs: u32,
  }
  for (const [option, values] of Object.entries(refused)) {
    for (const value of values) {
      assert.throws(() => new Recorder({ sink: 'none', [option]: value }), (e) => {
        assert.equal(e.code, 'ERR_RECORDER_CONFIG', `${option}: ${value}`)
        assert.ok(e.message.includes(`RecorderOptions.${option}`), e.message)
        assert.match(e.message, /expected a whole number from 0 to (65535|4294967295)/)
        return true
      })
    }
  }
  // The ends of each range are taken as they are.
  const recorder = new Recorder({
    port: 0, sink: 'none', maxBufferedRecords: 2 ** 32 - 1, maxBufferedBytes: 0, drainMs: 0, flushTimeoutMs: 2 ** 32 - 1,
  })
  assert.match(recorder.start(), /:\d+$/)
  assert.equal(recorder.drainMs, 0)
  return recorder.stop()
})

test('flush timings must be whole milliseconds: a negative one is refused, not read as 49 days', async () => {
  const recorder = new Recorder({ port: 0, sink: 'none' })
  recorder.start()
  for (const options of [{ drainMs: -1 }, { timeoutMs: -1 }, { drainMs: 2.5 }, { timeoutMs: 2 ** 32 }]) {
    await assert.rejects(recorder.flush(options), /expected a whole number from 0 to 4294967295/, JSON.stringify(options))
  }
  await assert.rejects(recorder.finishInvocation(-1), /expected a whole number/)
  const report = await recorder.flush({ drainMs: 0, timeoutMs: 100 })
  assert.equal(report.failed, 0)
  await recorder.stop()
})

test('a message cut inside an emoji (a lone surrogate escape, as aws-sdk v2 sends it) is kept', async () => {
  const recorder = new Recorder({ port: 0, sink: 'none' })
  const port = Number(recorder.start().split(':')[1])
  const message = `${'x'.repeat(511)}\ud83d`
  await sendDatagrams(port, [JSON.stringify({ Type: 'ApiCall', Service: 'STS', Api: 'GetCallerIdentity', FinalAwsExceptionMessage: message })])
  await recorder.flush({ drainMs: 20 })
  const [record] = recorder.takeRecords()
  assert.equal(record.FinalAwsExceptionMessage, `${'x'.repeat(511)}\ufffd`)
  assert.equal(recorder.stats().malformed, 0)
  await recorder.stop()
})
