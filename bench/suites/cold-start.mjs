// 4. Cold start: what `require('aws-api-call-recorder')` and the first recorder cost a fresh process.
import path from 'node:path'
import { BENCH_DIR, run, median, round, met } from '../lib/common.mjs'

const RUNS = 7
const TIME_BUDGET_MS = 30
const RSS_BUDGET_MIB = 20

export async function coldStartBench() {
  const samples = []
  for (let i = 0; i < RUNS; i++) {
    const out = await run(process.execPath, [path.join(BENCH_DIR, 'lib', 'cold-start-child.cjs')], { timeoutMs: 30_000 })
    samples.push(JSON.parse(out.trim()))
  }
  const row = (measure, ms, rssMiB, checked) => ({
    measure,
    'median ms': round(median(samples.map(ms)), 2),
    'RSS added MiB': round(median(samples.map(rssMiB)), 1),
    target: checked ? `<= ${TIME_BUDGET_MS} ms and <= ${RSS_BUDGET_MIB} MiB` : '',
    'met?': checked
      ? met(median(samples.map(ms)) <= TIME_BUDGET_MS && median(samples.map(rssMiB)) <= RSS_BUDGET_MIB)
      : '',
  })
  const table = [
    row("require('aws-api-call-recorder')", (s) => s.requireMs, (s) => s.requireRss, true),
    row('+ ApiCallRecorder(handler, { enabled: true }): loads the addon, starts the runtime, binds',
      (s) => s.wrapMs, (s) => s.wrapRss, false),
    row('require + ApiCallRecorder together (what module load costs)',
      (s) => s.requireMs + s.wrapMs, (s) => s.requireRss + s.wrapRss, true),
  ]
  return { table, samples }
}
