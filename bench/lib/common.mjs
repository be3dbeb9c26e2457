// Shared pieces of the benchmark run: the machine description, child processes that are always
// stopped, the load generator and the receivers under test.
import { spawn, fork, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import { LOAD_GENERATOR, buildLoadGenerator } from '../load/index.mjs'

export const BENCH_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
export const REPO_DIR = path.dirname(BENCH_DIR)
const FLOOR_TARGET = path.join(REPO_DIR, 'target', 'bench-floor')
export const FLOOR_BIN = path.join(FLOOR_TARGET, 'release', 'csm-floor')

// ---------------------------------------------------------------------------------------------
// Child processes: every one is tracked and stopped at the end, whatever happens.

const children = new Set()

function track(child, group = false) {
  child.killTree = (signal) => {
    try {
      if (group) process.kill(-child.pid, signal)
      else child.kill(signal)
    } catch {
      // already gone
    }
  }
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

/** Starts a long-running child process that stopAllChildren stops. */
export function spawnTracked(command, args, options = {}) {
  return track(spawn(command, args, options))
}

const cleanups = new Set()

/** Registers an async stop function (such as moto's) that runs with stopAllChildren. */
export function onCleanup(fn) {
  cleanups.add(fn)
  return () => cleanups.delete(fn)
}

/** Stops every child still running: SIGTERM, then SIGKILL after a grace period. */
export async function stopAllChildren(graceMs = 2000) {
  const pending = [...cleanups]
  cleanups.clear()
  await Promise.all(pending.map((fn) => withTimeout(Promise.resolve().then(fn), 10_000, 'cleanup').catch(() => {})))
  const running = [...children].filter((c) => c.exitCode === null && c.signalCode === null)
  await Promise.all(running.map((child) => new Promise((resolve) => {
    const timer = setTimeout(() => { child.killTree('SIGKILL'); resolve() }, graceMs)
    child.once('exit', () => { clearTimeout(timer); resolve() })
    child.killTree('SIGTERM')
  })))
}

/** Last resort on exit: no await possible, so kill outright. */
export function killAllChildrenSync() {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.killTree('SIGKILL')
  }
}

export function withTimeout(promise, ms, what) {
  let timer
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms) }),
  ]).finally(() => clearTimeout(timer))
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Runs a command to completion; resolves with its stdout, rejects on a non-zero exit or timeout.
 * With `group`, the command gets its own process group, and a timeout stops its children too.
 */
export function run(command, args, { timeoutMs = 60_000, cwd = REPO_DIR, env = process.env, group = false } = {}) {
  return new Promise((resolve, reject) => {
    const child = track(spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: group }), group)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += d })
    child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-8000) })
    const timer = setTimeout(() => child.killTree('SIGKILL'), timeoutMs)
    child.once('error', (e) => { clearTimeout(timer); reject(e) })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve(stdout)
      else reject(new Error(`${path.basename(command)} ${args.join(' ')} failed (${signal ?? code}): ${stderr.trim()}`))
    })
  })
}

// ---------------------------------------------------------------------------------------------
// Builds

export async function ensureBinaries() {
  buildLoadGenerator()
  // Cheap when up to date, so the floor is always rebuilt from its source.
  await run('cargo', ['build', '--release', '--manifest-path', path.join(BENCH_DIR, 'floor', 'Cargo.toml')], {
    timeoutMs: 300_000, env: { ...process.env, CARGO_TARGET_DIR: FLOOR_TARGET },
  })
}

// ---------------------------------------------------------------------------------------------
// Load generator

/**
 * Sends `count` datagrams to 127.0.0.1:port at `rate` msg/s. Resolves with what csm-load reports:
 * `{ sent, errors, secs, rate }`.
 */
export async function blast(port, { count, rate, maxSecs }) {
  const secs = maxSecs ?? Math.min(30, count / rate * 1.5 + 1)
  const out = await run(LOAD_GENERATOR, ['--port', String(port), '--count', String(count), '--rate', String(rate),
    '--max-secs', String(secs)], { timeoutMs: (secs + 10) * 1000 })
  const fields = Object.fromEntries(out.trim().split(/\s+/).map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]))
  return fields
}

/** The datagrams csm-load cycles through, so sizes can be reported exactly. */
export async function blastPool() {
  const out = await run(LOAD_GENERATOR, ['--dump', '4096'])
  return out.split('\n').filter(Boolean)
}

// ---------------------------------------------------------------------------------------------
// Receivers under test. Each runs in its own process; `stat()` returns
// `{ received, cpuUs, maxRssKb, rssKb }` where cpuUs is user + system time of the whole process.

class NodeReceiver {
  constructor(kind, extraArgs = []) {
    this.kind = kind
    this.child = track(fork(path.join(BENCH_DIR, 'lib', 'receiver-child.mjs'), [kind, ...extraArgs], {
      cwd: REPO_DIR,
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }))
    this.pending = new Map()
    this.nextId = 1
    this.child.on('message', (message) => {
      const waiter = this.pending.get(message.id)
      if (waiter) {
        this.pending.delete(message.id)
        if (message.error) waiter.reject(new Error(`${kind} receiver: ${message.error}`))
        else waiter.resolve(message.result)
      }
    })
    this.child.once('exit', (code, signal) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`${kind} receiver exited (${signal ?? code})`))
      this.pending.clear()
    })
  }

  call(command, args = {}, timeoutMs = 30_000) {
    const id = this.nextId++
    const reply = new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }))
    this.child.send({ id, command, ...args })
    return withTimeout(reply, timeoutMs, `${this.kind} receiver ${command}`)
  }

  async start() {
    this.port = (await this.call('start')).port
    return this.port
  }

  stat() { return this.call('stat') }

  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = new Promise((resolve) => this.child.once('exit', resolve))
    this.child.send({ id: 0, command: 'quit' })
    await withTimeout(exited, 5000, `${this.kind} receiver exit`).catch(() => this.child.kill('SIGKILL'))
  }
}

class FloorReceiver {
  constructor(batch = 64) {
    this.kind = 'floor'
    this.child = track(spawn(FLOOR_BIN, [String(batch)], { stdio: ['pipe', 'pipe', 'inherit'] }))
    this.lines = readline.createInterface({ input: this.child.stdout })
    this.waiters = []
    this.lines.on('line', (line) => this.waiters.shift()?.(line))
  }

  nextLine(timeoutMs = 10_000) {
    return withTimeout(new Promise((resolve) => this.waiters.push(resolve)), timeoutMs, 'csm-floor reply')
  }

  async start() {
    const line = await this.nextLine()
    this.port = Number(/port=(\d+)/.exec(line)[1])
    return this.port
  }

  async stat() {
    const reply = this.nextLine()
    this.child.stdin.write('stat\n')
    const f = Object.fromEntries((await reply).split(' ').map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]))
    return { received: f.received, cpuUs: f.cpu_us, maxRssKb: f.max_rss_kb }
  }

  async call(command) {
    if (command === 'clear') return {}
    throw new Error(`csm-floor does not support ${command}`)
  }

  async stop() {
    if (this.child.exitCode !== null) return
    const exited = new Promise((resolve) => this.child.once('exit', resolve))
    this.child.stdin.end('quit\n')
    await withTimeout(exited, 5000, 'csm-floor exit').catch(() => this.child.kill('SIGKILL'))
  }
}

/** Clock ticks per second of /proc/PID/stat's times (USER_HZ, 100 on Linux). */
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100

/**
 * `api-call-recorder listen --format F --output FILE`, the command line as users run it. What it
 * received is what it wrote: the lines of FILE, counted here (in this process, so the counting is
 * not charged to the receiver). CPU and RSS are read from /proc. `clear` empties FILE between steps
 * (the listener appends, so its next write lands at the new end).
 */
class CliReceiver {
  constructor(format) {
    this.kind = `cli-${format}`
    this.format = format
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-cli-'))
    this.file = path.join(this.dir, `calls.${format}`)
    this.child = track(spawn(process.execPath, [path.join(REPO_DIR, 'cli', 'index.js'), 'listen', '--port', '0',
      '--format', format, '--output', this.file], { cwd: REPO_DIR, stdio: ['ignore', 'ignore', 'pipe'] }))
    this.stderr = ''
    this.child.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-8000) })
    this.offset = 0
    this.lines = 0
  }

  async start() {
    const deadline = Date.now() + 15_000
    while (!/listening on udp [\d.]+:(\d+)/.test(this.stderr)) {
      if (Date.now() > deadline || this.child.exitCode !== null) throw new Error(`listen did not start: ${this.stderr}`)
      await sleep(20)
    }
    this.port = Number(/listening on udp [\d.]+:(\d+)/.exec(this.stderr)[1])
    // The CSV header is written when the file is opened; it is not a record.
    if (this.format === 'csv') {
      while (this.#countNewLines() === 0) await sleep(5)
      this.lines -= 1
    }
    return this.port
  }

  /** Adds the lines written since the last count; returns how many there were. */
  #countNewLines() {
    const fd = fs.openSync(this.file, 'r')
    try {
      const chunk = Buffer.allocUnsafe(1 << 20)
      let added = 0
      for (;;) {
        const read = fs.readSync(fd, chunk, 0, chunk.length, this.offset)
        if (read === 0) break
        this.offset += read
        for (let i = chunk.indexOf(10, 0); i !== -1 && i < read; i = chunk.indexOf(10, i + 1)) added++
      }
      this.lines += added
      return added
    } finally {
      fs.closeSync(fd)
    }
  }

  async stat() {
    this.#countNewLines()
    const fields = fs.readFileSync(`/proc/${this.child.pid}/stat`, 'utf8').split(') ')[1].split(' ')
    // utime and stime are fields 14 and 15 of stat(5); here 2 fields (pid, comm) are cut off.
    const ticks = Number(fields[11]) + Number(fields[12])
    const status = fs.readFileSync(`/proc/${this.child.pid}/status`, 'utf8')
    const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1])
    return { received: this.lines, cpuUs: ticks / CLOCK_TICKS * 1e6, rssKb: kb('VmRSS'), maxRssKb: kb('VmHWM') }
  }

  async call(command) {
    if (command !== 'clear') throw new Error(`listen does not support ${command}`)
    // A listener that fell behind is still writing the step's records: let it finish, so that they
    // are not counted in the next step.
    const deadline = Date.now() + 10_000
    while (this.#countNewLines() > 0 && Date.now() < deadline) await sleep(300)
    fs.truncateSync(this.file, 0)
    this.offset = 0
    return {}
  }

  async stop() {
    if (this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve))
      this.child.kill('SIGINT')
      await withTimeout(exited, 10_000, 'listen exit').catch(() => this.child.kill('SIGKILL'))
    }
    fs.rmSync(this.dir, { recursive: true, force: true })
  }
}

/**
 * `addon` (this project, in Node), `dgram` (the dgram + JSON.parse design), `floor` (recvmmsg, 64
 * per call), `floor1` (one datagram per call), or `cli-csv` / `cli-jsonl` (the command line's
 * `listen`, writing a file).
 */
export async function startReceiver(kind, extraArgs) {
  const receiver = kind === 'floor' ? new FloorReceiver(64)
    : kind === 'floor1' ? new FloorReceiver(1)
      : kind.startsWith('cli-') ? new CliReceiver(kind.slice(4))
        : new NodeReceiver(kind, extraArgs)
  await withTimeout(receiver.start(), 20_000, `${kind} receiver start`)
  return receiver
}

/**
 * Waits until `receiver` has counted `expected` more datagrams than `before`, or its count has not
 * moved for `quietMs`, or `maxMs` passed. Returns the last stat.
 */
export async function settle(receiver, before, expected, { quietMs = 300, maxMs = 5000 } = {}) {
  const deadline = Date.now() + maxMs
  let last = await receiver.stat()
  let lastChange = Date.now()
  while (last.received - before.received < expected && Date.now() < deadline && Date.now() - lastChange < quietMs) {
    await sleep(50)
    const now = await receiver.stat()
    if (now.received !== last.received) lastChange = Date.now()
    last = now
  }
  return last
}

/** The kernel's UDP counters (/proc/net/snmp), e.g. RcvbufErrors: datagrams dropped on a full socket buffer. */
export function udpCounters() {
  const lines = fs.readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((line) => line.startsWith('Udp:'))
  const keys = lines[0].split(/\s+/)
  const values = lines[1].split(/\s+/)
  return Object.fromEntries(keys.map((key, i) => [key, Number(values[i])]))
}

// ---------------------------------------------------------------------------------------------
// Numbers

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

export const round = (value, digits = 2) => (Number.isFinite(value) ? Number(value.toFixed(digits)) : value)

export const mib = (kb) => round(kb / 1024, 1)

export const met = (ok) => (ok === null || ok === undefined ? 'n/a' : ok ? 'yes' : 'NO')

export function machine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8')
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown'
  const read = (file) => { try { return fs.readFileSync(file, 'utf8').trim() } catch { return '?' } }
  let rustc = '?'
  try { rustc = execFileSync('rustc', ['--version'], { encoding: 'utf8' }).trim() } catch { /* not installed */ }
  return {
    cpu: model,
    cores: os.cpus().length,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    rustc,
    'load avg (1/5/15 min)': os.loadavg().map((l) => l.toFixed(2)).join(' / '),
    'net.core.rmem_default / rmem_max': `${read('/proc/sys/net/core/rmem_default')} / ${read('/proc/sys/net/core/rmem_max')} bytes`,
  }
}
