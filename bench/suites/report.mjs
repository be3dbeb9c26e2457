// 9. `api-call-recorder report` on large recordings: the demo's real calls (v3 and v2 SDKs against
// moto), repeated as separate invocations up to N records; time to write the page (the whole CLI
// process), time until it is interactive in headless Chromium, and its size.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { cli, launchChromium, openReport, recordDemo, synthesize, CHROMIUM } from '../../__test__/helpers/report.mjs'

const SIZES = [1_000, 10_000, 100_000]
const RUNS = 3
const median = (values) => values.slice().sort((a, b) => a - b)[Math.floor(values.length / 2)]

export async function reportBench() {
  const browser = await launchChromium()
  if (!browser) return { table: [], skipped: `no Chromium at ${CHROMIUM} (npm run setup installs it)` }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-report-bench-'))
  try {
    const demo = await recordDemo(path.join(dir, 'demo.jsonl'))
    const table = []
    for (const size of SIZES) {
      const recording = path.join(dir, `${size}.jsonl`)
      fs.writeFileSync(recording, synthesize(demo, size, { functions: 5 }))
      const html = path.join(dir, `${size}.html`)
      const writes = []
      const writeCpu = []
      const interactive = []
      for (let i = 0; i < RUNS; i += 1) {
        const written = await cli(['report', '-o', html, recording])
        writes.push(written.ms)
        writeCpu.push(written.cpuMs)
        const { context, interactiveMs } = await openReport(browser, html)
        interactive.push(interactiveMs)
        await context.close()
      }
      table.push({
        records: fs.readFileSync(recording, 'utf8').split('\n').filter(Boolean).length,
        'recording MiB': Number((fs.statSync(recording).size / 2 ** 20).toFixed(1)),
        'write ms (median)': Math.round(median(writes)),
        'write CPU ms': Math.round(median(writeCpu)),
        'interactive ms (median)': Math.round(median(interactive)),
        'page MiB': Number((fs.statSync(html).size / 2 ** 20).toFixed(1)),
        budget: size === 100_000 ? 'write ≤ 3000, interactive ≤ 2000' : '',
      })
    }
    return { table }
  } finally {
    await browser.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
