// One receiver under test, alone in its own Node process, driven by the parent over IPC.
//   addon: this project's native Recorder (sink 'none', a buffer large enough to never drop).
//   dgram: the design of aws-lambda-api-call-recorder's receiver, re-implemented: a Node dgram
//          socket with the default receive buffer, JSON.parse of every datagram on the JS thread,
//          each parsed object pushed onto an unbounded array.
import dgram from 'node:dgram'
import { createRequire } from 'node:module'
import { monitorEventLoopDelay } from 'node:perf_hooks'

const require = createRequire(import.meta.url)
const kind = process.argv[2]

/** The dgram + JSON.parse + array design, with the same moving parts as the original. */
class DgramRecorder {
  constructor() {
    this.socket = dgram.createSocket('udp4')
    this.queue = []
    this.socket.on('message', (message) => {
      // As in the original: no try, a non-JSON datagram would throw.
      this.queue.push(JSON.parse(message.toString()))
    })
    this.socket.on('error', () => this.socket.close())
  }

  start() {
    // Loopback instead of all interfaces; the socket buffer stays at the OS default.
    return new Promise((resolve) => this.socket.bind(0, '127.0.0.1', () => resolve(this.socket.address().port)))
  }

  received() { return this.queue.length + this.cleared }

  cleared = 0

  clear() {
    this.cleared += this.queue.length
    this.queue = []
    globalThis.gc?.()
  }
}

class AddonRecorder {
  constructor() {
    const { Recorder } = require('../../index.js')
    this.recorder = new Recorder({
      port: 0,
      sink: 'none',
      maxBufferedRecords: 5_000_000,
      maxBufferedBytes: 4_000_000_000,
      logger: { warn: (message) => process.stderr.write(`${message}\n`) },
    })
  }

  start() {
    const address = this.recorder.start()
    return Number(address.slice(address.lastIndexOf(':') + 1))
  }

  received() { return this.recorder.stats().received }

  // Empties the buffer between steps, as flushes do in use, so each step measures steady-state
  // ingest rather than the cost of growing the heap by every record of the sweep (the dgram design's
  // array is emptied the same way). With sink 'none' a flush keeps the buffer, so take the records.
  async clear() {
    const taken = this.recorder.takeRecords().length
    globalThis.gc?.()
    return taken
  }
}

const receiver = kind === 'addon' ? new AddonRecorder() : kind === 'dgram' ? new DgramRecorder() : null
if (!receiver) throw new Error(`unknown receiver kind: ${kind}`)
const loopDelay = monitorEventLoopDelay({ resolution: 1 })

const ms = (ns) => ns / 1e6

const commands = {
  start: async () => ({ port: await receiver.start() }),
  stat: () => {
    const cpu = process.cpuUsage()
    const extra = kind === 'addon' ? receiver.recorder.stats() : {}
    return {
      received: receiver.received(),
      parsed: extra.parsed,
      dropped: extra.dropped,
      cpuUs: cpu.user + cpu.system,
      maxRssKb: process.resourceUsage().maxRSS,
      rssKb: process.memoryUsage.rss() / 1024,
    }
  },
  clear: async () => ({ cleared: await receiver.clear() }),
  gc: () => {
    globalThis.gc?.()
    globalThis.gc?.()
    return { rssKb: process.memoryUsage.rss() / 1024, heapUsedKb: process.memoryUsage().heapUsed / 1024 }
  },
  eldStart: () => {
    loopDelay.disable()
    loopDelay.reset()
    loopDelay.enable()
    return {}
  },
  eldStop: () => {
    loopDelay.disable()
    return {
      samples: loopDelay.count,
      p50: ms(loopDelay.percentile(50)),
      p99: ms(loopDelay.percentile(99)),
      max: ms(loopDelay.max),
    }
  },
}

process.on('message', async ({ id, command }) => {
  if (command === 'quit') process.exit(0)
  try {
    process.send({ id, result: await commands[command]() })
  } catch (error) {
    process.send({ id, error: String(error?.stack ?? error) })
  }
})
process.on('disconnect', () => process.exit(0))
