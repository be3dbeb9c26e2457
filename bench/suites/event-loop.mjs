// 2. Event-loop delay in the same Node process that receives: idle, then while 5k / 20k / 50k msg/s
// arrive, for the addon and for the dgram + JSON.parse design.
import { blast, startReceiver, settle, sleep, round, met } from '../lib/common.mjs'

export const RATES = [5_000, 20_000, 50_000]
const SECS = 3
/** Allowed rise of the addon's p99 over idle at 20k msg/s, in ms. */
const P99_BUDGET_MS = 0.1

async function measure(receiver, rate) {
  await receiver.call('eldStart')
  if (rate) {
    const before = await receiver.stat()
    const sent = await blast(receiver.port, { count: rate * SECS, rate })
    const delay = await receiver.call('eldStop')
    const after = await settle(receiver, before, sent.sent)
    await receiver.call('clear')
    return { delay, sent: sent.sent, received: after.received - before.received }
  }
  await sleep(SECS * 1000)
  return { delay: await receiver.call('eldStop'), sent: 0, received: 0 }
}

export async function eventLoopBench() {
  const rows = []
  const idle = {}
  for (const kind of ['addon', 'dgram']) {
    const receiver = await startReceiver(kind)
    try {
      for (const rate of [0, ...RATES]) {
        const { delay, sent, received } = await measure(receiver, rate)
        if (!rate) idle[kind] = delay
        const rise = delay.p99 - idle[kind].p99
        const checked = kind === 'addon' && rate === 20_000
        rows.push({
          receiver: kind === 'addon' ? 'addon' : 'dgram design',
          'msg/s': rate || 'idle',
          'lost %': sent ? round((1 - received / sent) * 100, 2) : '',
          'p50 ms': round(delay.p50, 3),
          'p99 ms': round(delay.p99, 3),
          'max ms': round(delay.max, 3),
          'p99 - idle ms': rate ? round(rise, 3) : '',
          target: checked ? `p99 - idle <= ${P99_BUDGET_MS} ms` : '',
          'met?': checked ? met(rise <= P99_BUDGET_MS) : '',
        })
      }
    } finally {
      await receiver.stop()
    }
  }
  return { table: rows }
}
