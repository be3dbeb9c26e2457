'use strict'
// One cold start, in a fresh process: require the package by its name, then wrap a handler (which
// loads the native addon, starts its runtime and binds a port). Prints one JSON line.
const { performance } = require('node:perf_hooks')

const rssMiB = () => process.memoryUsage.rss() / 1024 / 1024
const rss0 = rssMiB()
const t0 = performance.now()
const { ApiCallRecorder } = require('aws-api-call-recorder')
const t1 = performance.now()
const rss1 = rssMiB()
const handler = ApiCallRecorder(async () => 'ok', { enabled: true, port: 0, sink: 'none', logger: { warn() {} } })
const t2 = performance.now()
const rss2 = rssMiB()
if (handler.name !== 'apiCallRecorderHandler') throw new Error('the recorder did not start')
process.stdout.write(`${JSON.stringify({ requireMs: t1 - t0, requireRss: rss1 - rss0, wrapMs: t2 - t1, wrapRss: rss2 - rss1 })}\n`)
process.exit(0)
