// `npm run bench`: measures this recorder side by side with the alternatives, on loopback, in one
// run, and prints one table per benchmark. `node bench/run.mjs ingest memory` runs only those.
import fs from 'node:fs'
import path from 'node:path'
import {
  BENCH_DIR, REPO_DIR, ensureBinaries, machine, run, stopAllChildren, killAllChildrenSync, withTimeout,
} from './lib/common.mjs'
import { ingestBench } from './suites/ingest.mjs'
import { eventLoopBench } from './suites/event-loop.mjs'
import { wrapperBench } from './suites/wrapper.mjs'
import { coldStartBench } from './suites/cold-start.mjs'
import { memoryBench } from './suites/memory.mjs'
import { lambdaBench } from './suites/lambda.mjs'
import { proxyBench } from './suites/proxy.mjs'
import { reportBench } from './suites/report.mjs'
import { managedInstancesBench } from './suites/managed-instances.mjs'

/** The whole run is abandoned (children stopped) after this long. */
const RUN_TIMEOUT_MS = 8 * 60_000
const V3_BENCH = path.join(BENCH_DIR, 'sdk-v3-overhead.mjs')
const V3_CALLS = 300
const FLUSH_BENCH = path.join(BENCH_DIR, 'flush.mjs')

const SUITES = {
  ingest: {
    title: '1. Ingest: highest paced rate with < 0.1 % loss, CPU per 100k messages, peak RSS',
    async run() {
      const { detail, summary } = await ingestBench()
      console.log('\nper step:')
      console.table(detail)
      console.log('summary:')
      console.table(summary)
      console.log('reference, not run here: awscsmreceiver (Go) loses datagrams above ~25k msg/s and silently ' +
        'drops any datagram over 1,024 bytes (earlier measurement on a shared 2-core machine).')
      return summary
    },
  },
  'event-loop': {
    title: '2. Event-loop delay in the receiving Node process (monitorEventLoopDelay, 1 ms sampling)',
    async run() {
      const { table } = await eventLoopBench()
      console.table(table)
      return table
    },
  },
  wrapper: {
    title: '3. Wrapper overhead per invocation: real aws-sdk v2 STS calls to moto, per sink',
    async run() {
      const { table, flushTable } = await wrapperBench()
      console.table(table)
      console.table(flushTable)
      return { table, flushTable }
    },
  },
  'cold-start': {
    title: '4. Cold start: fresh Node processes (7 per row; 11 per mode for the first invocation), medians',
    async run() {
      const { table, firstTable } = await coldStartBench()
      console.table(table)
      console.log('first invocation against warm ones (handler time and CPU time of the process, medians):')
      console.table(firstTable)
      return { table, firstTable }
    },
  },
  memory: {
    title: '5. Memory per buffered record (RSS growth / records buffered)',
    async run() {
      const { table } = await memoryBench()
      console.table(table)
      return table
    },
  },
  'sdk-v3': {
    title: '6. aws-sdk v3 overhead: plugin, and the HTTP layer for bundled SDKs (bench/sdk-v3-overhead.mjs)',
    async run() {
      if (!fs.existsSync(V3_BENCH)) {
        console.log('skipped: bench/sdk-v3-overhead.mjs is not there')
        return null
      }
      const out = await run(process.execPath, [V3_BENCH, String(V3_CALLS)], { timeoutMs: 150_000, group: true })
      process.stdout.write(out)
      return out
    },
  },
  flush: {
    title: '7. Firehose flush throughput: 100, 1,000 and 10,000 records to moto (bench/flush.mjs)',
    async run() {
      const out = await run(process.execPath, [FLUSH_BENCH, '5'], { timeoutMs: 120_000, group: true })
      process.stdout.write(out)
      return out
    },
  },
  lambda: {
    title: '8. Under Lambda\'s life cycle (runtime interface client, frozen between invocations): response ' +
      'latency and environment-held time, 1 v3 + 1 aws-sdk v2 call to moto, 150 invocations each, in turn',
    async run() {
      const { table } = await lambdaBench()
      console.table(table)
      return table
    },
  },
  proxy: {
    title: '9. Recording proxy: small SQS requests direct, through this proxy and through mitmproxy, to an HTTPS ' +
      'server on 127.0.0.1; then a 1 GiB streamed upload',
    async run() {
      const { table, uploadTable, targetsTable, raw } = await proxyBench()
      console.log('small requests (latency: one at a time on one kept connection; requests/s: 8 kept connections):')
      console.table(table)
      console.log('1 GiB PUT, streamed in 1 MiB writes (RSS of the proxy\'s process sampled every 20 ms):')
      console.table(uploadTable)
      console.table(targetsTable)
      return raw
    },
  },
  report: {
    // Reads files and drives a browser: no load generator or floor to build.
    needsBinaries: false,
    title: '10. report: the page of 1,000 to 100,000 records (the demo\'s real calls, repeated), written and opened in headless Chromium, median of 3',
    async run() {
      const { table, skipped } = await reportBench()
      if (skipped) console.log(`skipped: ${skipped}`)
      else console.table(table)
      return table
    },
  },
  'managed-instances': {
    title: '11. Lambda Managed Instances (runtime interface client 4.x, Node.js 24, 2 workers, never frozen): ' +
      'calls/s, CPU per call and response latency, unwrapped against wrapped',
    async run() {
      const { table } = await managedInstancesBench()
      console.table(table)
      return table
    },
  },
}

async function main() {
  const wanted = process.argv.slice(2)
  const unknown = wanted.filter((name) => !SUITES[name])
  if (unknown.length) throw new Error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${Object.keys(SUITES).join(', ')}`)
  const selected = wanted.length ? wanted : Object.keys(SUITES)

  console.log('aws-api-call-recorder benchmarks, all traffic on 127.0.0.1\n')
  console.table(machine())
  if (selected.some((name) => SUITES[name].needsBinaries !== false)) await ensureBinaries()

  const results = { machine: machine(), startedAt: new Date().toISOString() }
  const failures = []
  for (const name of selected) {
    const suite = SUITES[name]
    console.log(`\n${suite.title}`)
    const started = Date.now()
    try {
      results[name] = await suite.run()
    } catch (error) {
      failures.push(name)
      console.log(`FAILED: ${error?.stack ?? error}`)
    } finally {
      await stopAllChildren()
    }
    console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s)`)
  }

  const dir = path.join(REPO_DIR, 'bench', 'results')
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'last-run.json'), JSON.stringify(results, null, 2))
  if (failures.length) {
    console.log(`\nbenchmarks that failed: ${failures.join(', ')}`)
    process.exitCode = 1
  }
}

let stopping = false
async function shutdown(signal) {
  if (stopping) return
  stopping = true
  console.error(`\n${signal}: stopping child processes`)
  await stopAllChildren(1000)
  process.exit(130)
}
process.on('SIGINT', () => shutdown('SIGINT'))
process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('exit', killAllChildrenSync)

try {
  await withTimeout(main(), RUN_TIMEOUT_MS, 'the benchmark run')
} catch (error) {
  console.error(error?.stack ?? error)
  process.exitCode = 1
} finally {
  await stopAllChildren()
}
