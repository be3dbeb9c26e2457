// Starts a real moto server on loopback for a test file, and stops it afterwards.
import { spawn } from 'node:child_process'
import path from 'node:path'
import { freeTcpPort, freeUdpPort } from './ports.mjs'

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

/**
 * Environment for aws-sdk v2 with Client-Side Monitoring on, sending to a free port: the fake
 * credentials, and no user config files (under `dir`, which need not exist). aws-sdk v2 reads it
 * once, when it is first required, so assign it to process.env before that.
 */
export async function sdkV2CsmEnv(dir, extra = {}) {
  return {
    ...FAKE_CREDENTIALS,
    AWS_CSM_ENABLED: 'true',
    AWS_CSM_PORT: String(await freeUdpPort()),
    AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1',
    AWS_CONFIG_FILE: path.join(dir, 'none'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'),
    ...extra,
  }
}
