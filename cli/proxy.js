'use strict'

// The recording proxy of `run` and `listen --proxy`: started in the native recorder, which makes a
// CA for the run and writes it (and the bundle: the CA, then the system's roots) into a private
// directory that is removed when the proxy stops, or when this process exits. Programs reach it
// through HTTPS_PROXY/HTTP_PROXY and trust it through the CA bundle variables their SDK reads.

const fs = require('node:fs')

/** How often the proxy's warnings are taken and written. */
const WARN_EVERY_MS = 200

/** The `run` and `listen` options of the proxy, for parseArgs. */
const OPTIONS = {
  proxy: { type: 'boolean' },
  'no-proxy': { type: 'boolean' },
  upstream: { type: 'string' },
}

const HELP = {
  listen: `  --proxy          also record through the recording proxy (see 'run --help'); the variables a
                   program needs to use it are printed to standard error
  --upstream URL   with --proxy: as for run
`,
  run: `  --no-proxy       do not record through the proxy (run starts it by default: the command gets
                   HTTPS_PROXY/HTTP_PROXY and a CA made for the run, so every program's AWS calls
                   are recorded, whatever its SDK)
  --upstream URL   send every decrypted request to URL (http://127.0.0.1:5000 for moto) instead
                   of the AWS endpoint it names, unchanged: host names and signatures stay real
`,
}

/**
 * Starts the proxy when `values` (parsed options) ask for it: `run` unless --no-proxy, `listen`
 * with --proxy. Returns null when off; else the started proxy, whose `stop()` must be awaited.
 * `usage(message)` makes the error for a bad option, `warn(line)` writes a warning.
 */
function startProxy(recorder, values, { byDefault, warn, usage }) {
  const wanted = byDefault ? values['no-proxy'] !== true : values.proxy === true
  if (values.upstream !== undefined && !wanted) {
    throw usage(byDefault ? '--upstream needs the proxy; leave out --no-proxy' : '--upstream needs --proxy')
  }
  if (!wanted) return null
  let started
  try {
    started = recorder.startProxy({ upstream: values.upstream })
  } catch (error) {
    if (error.code === 'ERR_RECORDER_CONFIG') throw usage(error.message)
    const failure = new Error(`cannot start the recording proxy: ${error.message} (--no-proxy runs without it)`)
    failure.exitCode = 1
    throw failure
  }
  // Whatever ends this process, the CA directory goes with it.
  const removeDir = () => fs.rmSync(started.caDir, { recursive: true, force: true })
  process.once('exit', removeDir)
  const takeWarnings = () => {
    for (const line of recorder.takeProxyWarnings()) warn(line)
  }
  const timer = setInterval(takeWarnings, WARN_EVERY_MS)
  timer.unref()

  return {
    ...started,
    /** `base` (an environment) with the proxy's variables; hosts `base` already leaves unproxied stay so. */
    childEnv(base) {
      const env = { ...base, ...started.env }
      const own = started.env.NO_PROXY.split(',')
      const kept = [base.NO_PROXY, base.no_proxy].filter(Boolean).flatMap((list) => list.split(','))
      const noProxy = [...new Set([...own, ...kept.map((h) => h.trim()).filter(Boolean)])].join(',')
      env.NO_PROXY = noProxy
      env.no_proxy = noProxy
      return env
    },
    async stop() {
      clearInterval(timer)
      await recorder.stopProxy()
      takeWarnings()
      process.off('exit', removeDir)
      removeDir()
    },
  }
}

/** Shell lines that set the proxy's variables, for programs started elsewhere. */
function formatEnv(env) {
  const quote = (value) => `'${String(value).replace(/'/g, `'\\''`)}'`
  return Object.keys(env).sort().map((name) => `export ${name}=${quote(env[name])}\n`).join('')
}

/** The summary's proxy line: what the proxy saw and what it could not use. */
function formatProxyStats({ proxy }) {
  if (!proxy) return ''
  const parts = [
    `${proxy.requests} requests`,
    `${proxy.decrypted} tunnels decrypted`,
    `${proxy.tunnelled} passed through`,
    `${proxy.notUnderstood} not understood`,
  ]
  if (proxy.refused > 0) parts.push(`${proxy.refused} TLS handshakes refused`)
  if (proxy.upstreamFailed > 0) parts.push(`${proxy.upstreamFailed} upstream failures`)
  if (proxy.csmCopies > 0) parts.push(`${proxy.csmCopies} CSM events of proxied calls left out (each call is recorded once)`)
  if (proxy.unnamed > 0) parts.push(`${proxy.unnamed} recorded unnamed (too many waited to be named)`)
  return `proxy: ${parts.join(', ')}\n`
}

module.exports = { OPTIONS, HELP, startProxy, formatEnv, formatProxyStats }
