// Free loopback ports, asked of the OS, and a way to send datagrams to one.
import dgram from 'node:dgram'

export { freeTcpPort, freeUdpPort } from '../../scripts/local-aws.mjs'

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
