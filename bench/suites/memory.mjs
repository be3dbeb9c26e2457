// 5. Memory per buffered record: RSS growth while records are held (sink 'none', never flushed)
// divided by the records held, against the average size of the datagrams sent.
import { blast, blastPool, startReceiver, settle, round, met } from '../lib/common.mjs'

const RUNS = [
  { kind: 'addon', label: 'addon', count: 500_000, rate: 100_000 },
  // The dgram design cannot take 100k msg/s; what it did receive is what it holds.
  { kind: 'dgram', label: 'dgram design (parsed objects in an array)', count: 100_000, rate: 20_000 },
]
const RATIO_BUDGET = 1.5

export async function memoryBench() {
  const pool = await blastPool()
  const averageBytes = pool.reduce((sum, d) => sum + Buffer.byteLength(d), 0) / pool.length
  const table = []
  for (const { kind, label, count, rate } of RUNS) {
    const receiver = await startReceiver(kind)
    try {
      const before = await receiver.call('gc')
      const stat0 = await receiver.stat()
      const sent = await blast(receiver.port, { count, rate })
      const stat1 = await settle(receiver, stat0, sent.sent)
      const after = await receiver.call('gc')
      const held = stat1.received - stat0.received
      const perRecord = (after.rssKb - before.rssKb) * 1024 / held
      const ratio = perRecord / averageBytes
      const checked = kind === 'addon'
      table.push({
        receiver: label,
        'records held': held,
        'RSS before MiB': round(before.rssKb / 1024, 1),
        'RSS after MiB': round(after.rssKb / 1024, 1),
        'bytes / record': Math.round(perRecord),
        'avg datagram bytes': Math.round(averageBytes),
        'x datagram': round(ratio, 2),
        target: checked ? `<= ${RATIO_BUDGET}x datagram` : '',
        'met?': checked ? met(ratio <= RATIO_BUDGET) : '',
      })
    } finally {
      await receiver.stop()
    }
  }
  return { table }
}
