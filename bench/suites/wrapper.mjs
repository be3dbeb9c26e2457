// 3. Wrapper overhead per invocation: total time minus the handler's time, split into the drain,
// the flush to the sink and the JS bookkeeping around them.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { startMoto } from '../../__test__/helpers/moto.mjs'
import { freeUdpPort } from '../../__test__/helpers/ports.mjs'
import { BENCH_DIR, blastPool, run, onCleanup, median, round, met } from '../lib/common.mjs'

const DRAIN_MS = 25
const FLUSH_100_BUDGET_MS = 10

export async function wrapperBench() {
  const moto = await startMoto()
  const forget = onCleanup(() => moto.stop())
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-bench-pool-'))
  try {
    const poolFile = path.join(dir, 'pool.txt')
    fs.writeFileSync(poolFile, (await blastPool()).join('\n'))
    const table = []
    const flushTable = []
    for (const sink of ['file', 'firehose']) {
      const port = await freeUdpPort()
      const out = await run(process.execPath, [path.join(BENCH_DIR, 'lib', 'wrapper-child.mjs'), sink, moto.endpoint,
        String(port), poolFile], { timeoutMs: 180_000 })
      const result = JSON.parse(out.trim().split('\n').at(-1))
      // The drain as it really runs: until the barrier has passed (DRAIN_MS is only its bound).
      const drain = median(result.empty.drained) - median(result.empty.undrained)
      for (const calls of [1, 10, 100]) {
        const rows = result.rows.filter((r) => r.calls === calls)
        const overhead = median(rows.map((r) => r.totalMs - r.handlerMs))
        const finish = median(rows.map((r) => r.finishMs))
        const roundTrip = median(result.roundTrips.filter((r) => r.calls === calls).map((r) => r.ms))
        // drainMs as configured, one direct round trip to the same sink with the same records, 1 ms.
        const budget = DRAIN_MS + roundTrip + 1
        table.push({
          sink,
          'SDK calls': calls,
          records: median(rows.map((r) => r.records)),
          'handler ms': round(median(rows.map((r) => r.handlerMs)), 1),
          'overhead ms': round(overhead, 2),
          'drain ms': round(drain, 2),
          'flush ms': round(finish - drain, 2),
          'bookkeeping ms': round(median(rows.map((r) => r.totalMs - r.handlerMs - r.finishMs)), 2),
          'native durationMs': median(rows.map((r) => r.durationMs)),
          'direct round trip ms': round(roundTrip, 2),
          target: `<= drain + round trip + 1 = ${round(budget, 1)}`,
          'met?': met(overhead <= budget),
        })
      }
      const flush = median(result.flushes.map((f) => f.ms))
      flushTable.push({
        sink: sink === 'firehose' ? 'firehose (moto)' : 'file',
        measure: 'flush of 100 records, no drain (JS-timed)',
        'median ms': round(flush, 2),
        'min ms': round(Math.min(...result.flushes.map((f) => f.ms)), 2),
        'max ms': round(Math.max(...result.flushes.map((f) => f.ms)), 2),
        failed: result.flushes.reduce((sum, f) => sum + f.failed, 0),
        target: sink === 'firehose' ? `<= ${FLUSH_100_BUDGET_MS} ms` : '',
        'met?': sink === 'firehose' ? met(flush <= FLUSH_100_BUDGET_MS) : '',
      })
      if (result.warnings.length) console.log(`${sink} sink warnings: ${result.warnings.slice(0, 3).join(' | ')}`)
    }
    return { table, flushTable }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
    forget()
    await moto.stop()
  }
}
