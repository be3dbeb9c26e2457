// Free loopback ports, asked of the OS.
import dgram from 'node:dgram'
import net from 'node:net'

export function freeTcpPort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

export function freeUdpPort() {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4')
    socket.once('error', reject)
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address()
      socket.close(() => resolve(port))
    })
  })
}

/** Sends each payload as one datagram to 127.0.0.1:port. */
export async function sendDatagrams(port, payloads) {
  const socket = dgram.createSocket('udp4')
  try {
    for (const payload of payloads) {
      await new Promise((resolve, reject) => socket.send(payload, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())))
    }
  } finally {
    socket.close()
  }
}
