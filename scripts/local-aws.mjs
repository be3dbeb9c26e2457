// A local stand-in for AWS: a moto server on loopback, free loopback ports, and fake credentials.
// The demo and the tests use it; it needs `moto_server` (pip install "moto[server]") on the PATH, or
// its path in MOTO_SERVER.
import { spawn } from 'node:child_process'
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

const READY_TIMEOUT_MS = 60_000

/** Fake credentials. The session token is distinctive so tests can prove it never leaks. */
export const FAKE_CREDENTIALS = {
  AWS_ACCESS_KEY_ID: 'AKIATESTFAKEKEY00001',
  AWS_SECRET_ACCESS_KEY: 'testfakesecretkeydonotuse',
  AWS_SESSION_TOKEN: 'FAKESESSIONTOKEN/test+token==LeakCanary0123456789',
  AWS_REGION: 'us-west-2',
  AWS_DEFAULT_REGION: 'us-west-2',
}

/** `env` adds to the server's environment (INITIAL_NO_AUTH_ACTION_COUNT turns on IAM enforcement). */
export async function startMoto({ env = {} } = {}) {
  const port = await freeTcpPort()
  const child = spawn(process.env.MOTO_SERVER ?? 'moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...FAKE_CREDENTIALS, ...env },
  })
  let stderr = ''
  child.stderr.on('data', (chunk) => { stderr = (stderr + chunk).slice(-4000) })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const endpoint = `http://127.0.0.1:${port}`
  const deadline = Date.now() + READY_TIMEOUT_MS
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited: ${stderr}`)
    try {
      const response = await fetch(`${endpoint}/moto-api/`)
      if (response.ok) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`moto_server did not start within ${READY_TIMEOUT_MS} ms: ${stderr}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return {
    endpoint,
    port,
    async stop() {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    },
  }
}
