// A bug in the native code must become a JS error, never an abort of the user's process. No input
// makes a method panic, so the addon is built once more with the `panic-probe` feature, which adds
// `panicProbe()`: a method that panics while holding the record buffer's lock. The panic must reach
// JS as an Error, and the recorder must keep receiving, counting and handing out records after it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const probeAddon = path.join(root, 'target', 'panic-probe', 'api-call-recorder.node')

/** Builds the addon with `panic-probe` (a debug build, sharing `cargo test`'s dependencies). */
function buildProbeAddon() {
  const output = execFileSync('cargo', ['build', '--features', 'panic-probe', '--lib', '--message-format=json'], {
    cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000,
  })
  const library = output.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line))
    .filter((m) => m.reason === 'compiler-artifact' && m.target?.name === 'aws_api_call_recorder')
    .flatMap((m) => m.filenames).find((f) => f.endsWith('.so') || f.endsWith('.dylib'))
  assert.ok(library, 'cargo reported no cdylib for the panic-probe build')
  fs.mkdirSync(path.dirname(probeAddon), { recursive: true })
  fs.copyFileSync(library, probeAddon)
}

// Runs in a child process, so an abort would show as the child's signal, not end the test run.
const scenario = `
const dgram = require('node:dgram')
const { NativeRecorder } = require(${JSON.stringify(probeAddon)})
const recorder = new NativeRecorder({ port: 0, sink: 'none', host: '127.0.0.1' })
const port = Number(recorder.start().split(':').pop())
const caught = []
const probe = () => {
  try { recorder.panicProbe(); caught.push(null) } catch (error) {
    caught.push({ isError: error instanceof Error, message: error.message })
  }
}
const untilReceived = async (n) => {
  for (let i = 0; i < 200 && recorder.stats().received < n; i++) await new Promise((r) => setTimeout(r, 10))
}
;(async () => {
  probe()
  recorder.ingest(JSON.stringify({ Type: 'ApiCall', Service: 'S3', Api: 'GetObject', Latency: 7 }))
  const socket = dgram.createSocket('udp4')
  const datagram = JSON.stringify({ Type: 'ApiCall', Service: 'STS', Api: 'GetCallerIdentity', Latency: 3 })
  await new Promise((resolve, reject) => socket.send(datagram, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())))
  socket.close()
  await untilReceived(2)
  probe()
  const stats = recorder.stats()
  const records = JSON.parse(recorder.takeRecordsJson())
  await recorder.stop()
  process.stdout.write(JSON.stringify({ caught, stats, records }))
})()
`

test('a panic in a synchronous method is a JS error, and the recorder keeps working', { timeout: 660_000 }, async () => {
  buildProbeAddon()
  const { stdout, stderr } = await promisify(execFile)(process.execPath, ['-e', scenario], {
    cwd: root, timeout: 30_000, env: { ...process.env, RUST_BACKTRACE: '0' },
  }).catch((error) => assert.fail(`the process did not end normally (signal ${error.signal}, code ${error.code}): ${error.stderr}`))
  const { caught, stats, records } = JSON.parse(stdout)
  // Both calls threw an Error carrying the panic's message; the second ran on the poisoned lock.
  assert.deepEqual(caught, [
    { isError: true, message: "panic probe: raised while the record buffer's lock was held" },
    { isError: true, message: "panic probe: raised while the record buffer's lock was held" },
  ])
  // Rust's panic hook still reports where it happened.
  assert.match(stderr, /panicked at src[\\/]buffer\.rs/)
  assert.equal(stats.received, 2)
  assert.equal(stats.parsed, 2)
  assert.equal(stats.calls, 2)
  assert.deepEqual(records.map((r) => [r.Service, r.Api, r.Latency]), [['S3', 'GetObject', 7], ['STS', 'GetCallerIdentity', 3]])
})

test('release builds have no panic probe', async () => {
  const { NativeRecorder } = await import('../binding.js').then((m) => m.default ?? m)
  assert.equal(typeof NativeRecorder.prototype.panicProbe, 'undefined')
  const types = fs.readFileSync(path.join(root, 'binding.d.ts'), 'utf8')
  assert.doesNotMatch(types, /panicProbe/)
})
