// Recordings and a browser for the report's tests and benchmark.
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const CLI = path.join(ROOT, 'cli', 'index.js')
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
const run = promisify(execFile)

/** Records the demo's real calls (v3 and v2 SDKs against moto) into `file`, JSON Lines. */
export async function recordDemo(file) {
  await run(process.execPath, [path.join(ROOT, 'examples', 'demo.mjs'), file], { cwd: ROOT, timeout: 120_000 })
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line))
}

/**
 * At least `count` records made of real ones: the invocation of `records` repeated, each copy with its
 * own request id, later in time, and one function of `functions` (so 10 services × 50 invocations
 * and 100,000 records are the same real calls, spread out).
 */
export function synthesize(records, count, { functions = 1 } = {}) {
  const start = Math.min(...records.map((r) => r.Timestamp))
  const span = Math.max(...records.map((r) => r.Timestamp + (r.Latency ?? r.AttemptLatency ?? 0))) - start
  const lines = []
  for (let copy = 0; lines.length < count; copy += 1) {
    const shift = copy * (span + 50)
    for (const record of records) {
      lines.push(JSON.stringify({
        ...record,
        Timestamp: record.Timestamp + shift,
        awsRequestId: `req-${String(copy).padStart(6, '0')}`,
        functionName: `fn-${copy % functions}`,
        coldStart: copy < functions,
      }))
    }
  }
  return `${lines.join('\n')}\n`
}

/**
 * Runs `api-call-recorder ARGS` in a child process; resolves with stdout, stderr, the wall time in ms
 * and the child's CPU time in ms (user + system, all threads: what the work costs, apart from what
 * other programs on a shared machine take from it).
 */
export async function cli(args) {
  const started = performance.now()
  const script = `const { main } = require(${JSON.stringify(CLI)})
main(${JSON.stringify(args)}).then((code) => {
  process.exitCode = code
  const { user, system } = process.cpuUsage()
  process.stderr.write('\\ncpu-ms ' + (user + system) / 1000 + '\\n')
})`
  const { stdout, stderr } = await run(process.execPath, ['-e', script], { cwd: ROOT, maxBuffer: 64 << 20 })
  const ms = performance.now() - started
  const cpuMs = Number(/\ncpu-ms ([\d.]+)\n$/.exec(stderr)?.[1])
  return { stdout, stderr: stderr.replace(/\ncpu-ms [\d.]+\n$/, ''), ms, cpuMs }
}

/** Headless Chromium (Debian's package) through playwright-core; null when it is not installed. */
export async function launchChromium() {
  if (!fs.existsSync(CHROMIUM)) return null
  const { chromium } = await import('playwright-core')
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
}

/**
 * Opens `file` in a fresh page and waits until the page says it is ready. Returns the page, the
 * console errors and non-file requests seen, and the time from navigation to ready.
 */
export async function openReport(browser, file, { width = 1280, height = 900, hash = '', permissions = [] } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, permissions })
  const page = await context.newPage()
  const problems = { consoleErrors: [], requests: [] }
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.consoleErrors.push(message.text())
  })
  page.on('pageerror', (error) => problems.consoleErrors.push(error.message))
  page.on('request', (request) => {
    if (request.url() !== `file://${file}${hash}` && request.url() !== `file://${file}`) problems.requests.push(request.url())
  })
  const started = performance.now()
  await page.goto(`file://${file}${hash}`)
  await page.waitForSelector('html[data-ready="true"]', { timeout: 30_000 })
  const interactiveMs = performance.now() - started
  return { page, context, problems, interactiveMs }
}
