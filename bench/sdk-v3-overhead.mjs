// Added latency per v3 SDK call with the recorder plugin (sdk-v3/) vs without, and with the HTTP-layer
// recording that bundled SDKs get (sdk-v3/http.js).
//
//   node bench/sdk-v3-overhead.mjs [calls per variant, default 300]
//
// 1. Real STS GetCallerIdentity calls to a moto server on loopback, the variants interleaved call by
//    call so drift in moto or the machine hits all of them alike.
// 2. The same client stack with moto's recorded response replayed by an in-memory request handler:
//    no network, so what is left is the SDK's own work plus the plugin's, and the difference shows.
// 3. The HTTP layer needs real HTTP: the bundled SDK against a Node HTTP server in this process that
//    replays moto's response, so moto's own variance does not hide the difference.
// Variants: no plugin; the plugin ingesting into a running Recorder (the ApiCallRecorder path); the
// plugin sending CSM datagrams (no recorder in the process). In 1 also the same SDK bundled with
// esbuild into one file, not recorded and recorded from Node's HTTP client (the layer is on only
// around that variant's calls, so it sees no other variant's requests).
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import { Readable } from 'node:stream'
import { startMoto, FAKE_CREDENTIALS } from '../__test__/helpers/moto.mjs'
import { freeUdpPort } from '../__test__/helpers/ports.mjs'

const require = createRequire(import.meta.url)
const CALLS = Number(process.argv[2] ?? 300)
const WARMUP = 30
const OFFLINE_FACTOR = 10

Object.assign(process.env, FAKE_CREDENTIALS, { AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' })
delete process.env.AWS_CSM_ENABLED

const { STSClient, GetCallerIdentityCommand } = require('@aws-sdk/client-sts')
const { HttpResponse } = require('@smithy/core/protocols')
const { Recorder, recorderPlugin, instrumentSdkV3 } = require('../index.js')
const { sdkV3Stats } = require('../sdk-v3/index.js')

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

function summarize(samples, baseline) {
  const rows = {}
  const base = [...samples[baseline]].sort((a, b) => a - b)
  for (const [name, values] of Object.entries(samples)) {
    const sorted = [...values].sort((a, b) => a - b)
    const mean = values.reduce((a, b) => a + b, 0) / values.length
    const baseMean = base.reduce((a, b) => a + b, 0) / base.length
    rows[name] = {
      calls: values.length,
      'median ms': +quantile(sorted, 0.5).toFixed(3),
      'mean ms': +mean.toFixed(3),
      'p90 ms': +quantile(sorted, 0.9).toFixed(3),
      'p99 ms': +quantile(sorted, 0.99).toFixed(3),
      'added median µs': name === baseline ? 0 : Math.round((quantile(sorted, 0.5) - quantile(base, 0.5)) * 1000),
      'added mean µs': name === baseline ? 0 : Math.round((mean - baseMean) * 1000),
    }
  }
  return rows
}

/** Runs `count` calls per variant, interleaved, after a warm-up; returns the durations in ms. */
async function measure(variants, count) {
  const samples = Object.fromEntries(Object.keys(variants).map((name) => [name, []]))
  const names = Object.keys(variants)
  for (let i = 0; i < WARMUP + count; i++) {
    // Rotate the order so no variant always runs right after another.
    for (let j = 0; j < names.length; j++) {
      const name = names[(i + j) % names.length]
      const variant = variants[name]
      variant.enter?.()
      const start = performance.now()
      await variant.call()
      const elapsed = performance.now() - start
      variant.leave?.()
      if (i >= WARMUP) samples[name].push(elapsed)
    }
  }
  return samples
}

/** Replays one recorded moto response for every request: the full SDK stack without the network. */
function replayHandler(recorded) {
  return {
    handle: async () => ({
      response: new HttpResponse({
        statusCode: recorded.statusCode,
        headers: { ...recorded.headers },
        body: Readable.from([recorded.body]),
      }),
    }),
    updateHttpClientConfig() {},
    httpHandlerConfigs: () => ({}),
  }
}

/** STS bundled with esbuild into one CommonJS file in a temp dir, as a bundled function has it. */
async function bundledSts(dir) {
  const outfile = path.join(dir, 'sts-bundle.cjs')
  await require('esbuild').build({
    stdin: { contents: "export { STSClient, GetCallerIdentityCommand } from '@aws-sdk/client-sts'", resolveDir: process.cwd(), loader: 'js' },
    outfile, bundle: true, platform: 'node', format: 'cjs', logLevel: 'error',
  })
  return require(outfile)
}

const bundleDir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-bench-'))
const bundled = await bundledSts(bundleDir)
const moto = await startMoto()
const recorder = new Recorder({ port: 0, sink: 'none', maxBufferedRecords: 10_000_000 })
recorder.start()
const udpPort = await freeUdpPort()
try {
  const config = { endpoint: moto.endpoint, region: 'us-west-2' }
  const variants = (extra = {}) => {
    const make = (plugin) => {
      const client = new STSClient({ ...config, ...extra })
      if (plugin) client.middlewareStack.use(plugin)
      return { call: () => client.send(new GetCallerIdentityCommand({})) }
    }
    return {
      'no plugin': make(null),
      'plugin → in-process Recorder': make(recorderPlugin({ recorder })),
      'plugin → CSM datagrams': make(recorderPlugin({ recorder: null, csmEnabled: true, csmPort: udpPort })),
    }
  }
  const bundledVariants = (endpoint = moto.endpoint) => {
    const make = () => {
      const client = new bundled.STSClient({ ...config, endpoint })
      return { call: () => client.send(new bundled.GetCallerIdentityCommand({})) }
    }
    let layer
    return {
      'bundled, not recorded': make(),
      'bundled, HTTP layer → in-process Recorder': {
        ...make(),
        enter: () => { layer = instrumentSdkV3({ recorder, http: true }) },
        leave: () => layer.stop(),
      },
    }
  }

  const online = await measure({ ...variants(), ...bundledVariants() }, CALLS)

  // Record one real response from moto to replay.
  let recorded
  const probe = new STSClient(config)
  probe.middlewareStack.add((next) => async (args) => {
    const result = await next(args)
    const chunks = []
    for await (const chunk of result.response.body) chunks.push(chunk)
    recorded = { statusCode: result.response.statusCode, headers: result.response.headers, body: Buffer.concat(chunks) }
    result.response.body = Readable.from([recorded.body])
    return result
  }, { step: 'finalizeRequest', priority: 'low', name: 'benchRecord' })
  await probe.send(new GetCallerIdentityCommand({}))

  const offline = await measure(variants({ requestHandler: replayHandler(recorded) }), CALLS * OFFLINE_FACTOR)

  const replayServer = http.createServer((request, response) => {
    request.resume()
    request.on('end', () => {
      // Without moto's `connection: close`, connections are kept alive as with AWS endpoints.
      const { connection, ...headers } = recorded.headers
      response.writeHead(recorded.statusCode, { ...headers, 'content-length': recorded.body.length })
      response.end(recorded.body)
    })
  })
  await new Promise((resolve) => replayServer.listen(0, '127.0.0.1', resolve))
  let local
  try {
    local = await measure(bundledVariants(`http://127.0.0.1:${replayServer.address().port}`), CALLS * OFFLINE_FACTOR)
  } finally {
    replayServer.close()
  }

  const stats = sdkV3Stats()
  console.log(`STS GetCallerIdentity, Node ${process.version}, ${CALLS} calls per variant to moto ` +
    `(${CALLS * OFFLINE_FACTOR} replayed), ${WARMUP} warm-up calls each, variants interleaved.`)
  console.log('\n1. Real calls to moto on loopback')
  const pick = (samples, names) => Object.fromEntries(names.map((name) => [name, samples[name]]))
  const bundledNames = Object.keys(bundledVariants())
  console.table(summarize(pick(online, Object.keys(online).filter((name) => !bundledNames.includes(name))), 'no plugin'))
  console.log('\n1b. Same calls from the bundled SDK (interleaved with the ones above)')
  console.table(summarize(pick(online, bundledNames), 'bundled, not recorded'))
  console.log('\n2. Same stack, moto response replayed in memory (no network)')
  console.table(summarize(offline, 'no plugin'))
  console.log('\n3. Bundled SDK, moto response replayed by a Node HTTP server in this process')
  console.table(summarize(local, 'bundled, not recorded'))
  console.log(`plugin events: ${stats.attempts + stats.calls} (${stats.sent} sent as datagrams); HTTP-layer events: ` +
    `${stats.httpAttempts + stats.httpCalls}; ${stats.delivered} ingested, ${stats.failures} failures; ` +
    `recorder parsed ${recorder.stats().parsed}`)
} finally {
  await recorder.stop()
  await moto.stop()
  fs.rmSync(bundleDir, { recursive: true, force: true })
}
