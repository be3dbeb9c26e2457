// 9. The recording proxy: small requests direct, through this project's proxy (`listen --proxy
// --upstream`, as users run it) and through mitmproxy (mitmdump with an addon that does nothing),
// side by side; then a 1 GiB streamed upload with the proxy's resident memory sampled throughout.
// Everything goes to one HTTPS server on 127.0.0.1 holding a certificate for the AWS host names.
import { once } from 'node:events'
import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import { execFileSync } from 'node:child_process'
import { BENCH_DIR, REPO_DIR, spawnTracked, run, sleep, withTimeout, round, mib, met } from '../lib/common.mjs'

const SQS_HOST = 'sqs.us-east-1.amazonaws.com'
const UPLOAD_HOST = 'bench-upload.s3.amazonaws.com'
const WARMUP_REQUESTS = 300
/** One request at a time on one kept connection: the latency of each. */
const LATENCY = { requests: 4000, ms: 5000 }
/** Several kept connections at once: how many requests per second go through. */
const THROUGHPUT = { requests: 40_000, ms: 5000, connections: 8 }
const REQUEST_TIMEOUT_MS = 10_000
const UPLOAD_BYTES = 1 << 30
const UPLOAD_CHUNK_BYTES = 1 << 20
const UPLOAD_TIMEOUT_MS = { direct: 30_000, ours: 40_000, mitmproxy: 40_000 }
const RSS_SAMPLE_MS = 20
const TARGET_ADDED_P50_MS = 0.3
const TARGET_RATE_RATIO = 5
const TARGET_UPLOAD_RSS_MIB = 64
const START_TIMEOUT_MS = 20_000

/** A form-encoded SQS request, signed in shape (the server does not check the signature). */
const SMALL_BODY = 'Action=GetQueueUrl&QueueName=bench&Version=2012-11-05'
const smallHeaders = () => ({
  'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
  'content-length': Buffer.byteLength(SMALL_BODY),
  'x-amz-date': '20260101T000000Z',
  authorization: 'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/sqs/aws4_request, ' +
    'SignedHeaders=content-type;host;x-amz-date, Signature=' + '0'.repeat(64),
})

// ---------------------------------------------------------------------------------------------
// The parts: certificates, the upstream server, the two proxies

/** A CA and a leaf for 127.0.0.1 and the AWS host names, made with openssl in `dir`. */
async function makeUpstreamCertificates(dir) {
  const file = (name) => path.join(dir, name)
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  await run('openssl', ['req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '2',
    '-subj', '/CN=bench upstream CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'])
  await run('openssl', ['req', ...ec, '-keyout', file('leaf.key'), '-out', file('leaf.csr'), '-subj', '/CN=bench upstream'])
  fs.writeFileSync(file('leaf.ext'), `subjectAltName=DNS:${SQS_HOST},DNS:${UPLOAD_HOST},IP:127.0.0.1\n` +
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n')
  await run('openssl', ['x509', '-req', '-in', file('leaf.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'),
    '-CAcreateserial', '-days', '2', '-extfile', file('leaf.ext'), '-out', file('leaf.pem')])
  return { caPath: file('ca.pem'), certPath: file('leaf.pem'), keyPath: file('leaf.key') }
}

async function startUpstream({ certPath, keyPath }) {
  const child = spawnTracked(process.execPath, [path.join(BENCH_DIR, 'lib', 'proxy-upstream-child.mjs'), certPath, keyPath],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const [{ port }] = await withTimeout(once(child, 'message'), START_TIMEOUT_MS, 'the upstream server start')
  return { port, child }
}

/** Waits until `pattern` matches what the child wrote to `stream`; returns the match. */
async function waitForOutput(child, stream, pattern, what) {
  let text = ''
  child[stream].on('data', (chunk) => { text = (text + chunk).slice(-64_000) })
  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    const match = pattern.exec(text)
    if (match) return match
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${what} did not start: ${text.trim()}`)
    await sleep(20)
  }
}

async function stopChild(child, signal = 'SIGINT') {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill(signal)
  await withTimeout(exited, 10_000, 'a proxy exit').catch(() => child.kill('SIGKILL'))
}

/** `api-call-recorder listen --proxy --upstream`, trusting the upstream's CA; its records go to a file. */
async function startOurProxy(upstream, caPath, dir) {
  const output = path.join(dir, 'calls.jsonl')
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(AWS_|API_CALL_RECORDER_)/.test(key) && !/_proxy$/i.test(key)))
  // The proxy reads the roots it checks upstream certificates with from SSL_CERT_FILE.
  env.SSL_CERT_FILE = caPath
  const child = spawnTracked(process.execPath, [path.join(REPO_DIR, 'cli', 'index.js'), 'listen', '--port', '0', '--proxy',
    '--upstream', `https://127.0.0.1:${upstream.port}`, '--format', 'jsonl', '--output', output],
  { cwd: REPO_DIR, env, stdio: ['ignore', 'ignore', 'pipe'] })
  const [, proxyPort, caCertPath] = await waitForOutput(child, 'stderr',
    /export HTTPS_PROXY='http:\/\/127\.0\.0\.1:(\d+)'[\s\S]*export NODE_EXTRA_CA_CERTS='([^']+)'/, 'listen --proxy')
  return {
    child,
    proxyPort: Number(proxyPort),
    ca: fs.readFileSync(caCertPath),
    /** The calls it recorded (one ApiCall line per request). */
    async stop() {
      await stopChild(child)
      const text = fs.existsSync(output) ? fs.readFileSync(output, 'utf8') : ''
      return text.split('\n').filter((line) => line.includes('"Type":"ApiCall"')).length
    },
  }
}

/** MITMDUMP if set, else mitmdump on the PATH; null when there is none. */
function findMitmdump() {
  if (process.env.MITMDUMP) return process.env.MITMDUMP
  try {
    // pyenv and similar put a shell shim on the PATH; the real script's Python process is what is sampled.
    const found = execFileSync('sh', ['-c', 'command -v mitmdump'], { encoding: 'utf8' }).trim()
    try {
      return execFileSync('pyenv', ['which', 'mitmdump'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || found
    } catch {
      return found
    }
  } catch {
    return null
  }
}

/**
 * mitmdump on 127.0.0.1 with a fresh CA in its own directory, checking the upstream's certificate
 * with its CA, streaming bodies over 1 MiB instead of holding them whole (its default).
 */
async function startMitmproxy(mitmdump, caPath, dir) {
  const confdir = path.join(dir, 'mitmproxy')
  fs.mkdirSync(confdir)
  const child = spawnTracked(mitmdump, ['--listen-host', '127.0.0.1', '--listen-port', '0', '--set', `confdir=${confdir}`,
    '--set', `ssl_verify_upstream_trusted_ca=${caPath}`, '--set', 'stream_large_bodies=1m', '--set', 'flow_detail=0',
    '-s', path.join(BENCH_DIR, 'lib', 'mitm_noop_addon.py')], { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stderr.resume()
  const [, proxyPort] = await waitForOutput(child, 'stdout', /proxy listening at 127\.0\.0\.1:(\d+)/, 'mitmdump')
  child.stdout.resume()
  return { child, proxyPort: Number(proxyPort), ca: fs.readFileSync(path.join(confdir, 'mitmproxy-ca-cert.pem')) }
}

// ---------------------------------------------------------------------------------------------
// The client: Node's keep-alive HTTPS agent, its connections made directly or through a CONNECT

/**
 * `tunnelTo(options)` is null to connect straight to the upstream, else the authority to CONNECT to
 * at proxyPort. The TLS session inside is always for the AWS host name, checked against `ca`.
 */
class BenchAgent extends https.Agent {
  constructor({ upstreamPort, proxyPort, tunnelTo, ca, maxSockets }) {
    super({ keepAlive: true, maxSockets, ca })
    Object.assign(this, { upstreamPort, proxyPort, tunnelTo, ca })
  }

  createConnection(options, callback) {
    const servername = options.servername || options.host
    const authority = this.tunnelTo?.(options)
    if (!authority) {
      callback(null, tls.connect({ host: '127.0.0.1', port: this.upstreamPort, servername, ca: this.ca }))
      return
    }
    const connect = http.request({ host: '127.0.0.1', port: this.proxyPort, method: 'CONNECT', path: authority, headers: { host: authority }, agent: false })
    connect.once('connect', (response, socket) => {
      if (response.statusCode !== 200) return callback(new Error(`CONNECT ${authority}: ${response.statusCode}`))
      callback(null, tls.connect({ socket, servername, ca: this.ca }))
    })
    connect.once('error', callback)
    connect.end()
  }
}

function smallRequest(agent) {
  return new Promise((resolve, reject) => {
    const request = https.request({ agent, host: SQS_HOST, port: 443, method: 'POST', path: '/', headers: smallHeaders() })
    request.setTimeout(REQUEST_TIMEOUT_MS, () => request.destroy(new Error('a request timed out')))
    request.once('error', reject)
    request.once('response', (response) => {
      response.resume()
      response.once('error', reject)
      response.once('end', () => (response.statusCode === 200 ? resolve() : reject(new Error(`status ${response.statusCode}`))))
    })
    request.end(SMALL_BODY)
  })
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]
}

async function measureSmall(makeAgent) {
  const sequential = makeAgent(1)
  for (let i = 0; i < WARMUP_REQUESTS; i++) await smallRequest(sequential)
  const latenciesMs = []
  const latencyEnd = Date.now() + LATENCY.ms
  while (latenciesMs.length < LATENCY.requests && Date.now() < latencyEnd) {
    const started = process.hrtime.bigint()
    await smallRequest(sequential)
    latenciesMs.push(Number(process.hrtime.bigint() - started) / 1e6)
  }
  sequential.destroy()
  latenciesMs.sort((a, b) => a - b)

  const parallel = makeAgent(THROUGHPUT.connections)
  // The connections are made (TLS and CONNECT) before the clock starts.
  await Promise.all(Array.from({ length: THROUGHPUT.connections }, () => smallRequest(parallel)))
  let done = 0
  const started = process.hrtime.bigint()
  const end = Date.now() + THROUGHPUT.ms
  const worker = async () => {
    while (done < THROUGHPUT.requests && Date.now() < end) {
      await smallRequest(parallel)
      done++
    }
  }
  await Promise.all(Array.from({ length: THROUGHPUT.connections }, worker))
  const secs = Number(process.hrtime.bigint() - started) / 1e9
  parallel.destroy()
  return {
    requests: WARMUP_REQUESTS + latenciesMs.length + THROUGHPUT.connections + done,
    p50: percentile(latenciesMs, 0.5),
    p99: percentile(latenciesMs, 0.99),
    rate: done / secs,
  }
}

/** The process's resident set now, in KiB (VmRSS). */
function rssKb(pid) {
  try {
    return Number(/^VmRSS:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])
  } catch {
    return NaN
  }
}

/** PUTs UPLOAD_BYTES in 1 MiB writes, waiting for the socket to drain; samples `pid`'s RSS meanwhile. */
async function measureUpload(agent, pid, timeoutMs) {
  const before = pid ? rssKb(pid) : NaN
  let peak = before
  const sampler = pid ? setInterval(() => { peak = Math.max(peak, rssKb(pid)) }, RSS_SAMPLE_MS) : null
  const chunk = Buffer.alloc(UPLOAD_CHUNK_BYTES, 'a')
  const started = process.hrtime.bigint()
  const deadline = Date.now() + timeoutMs
  const request = https.request({ agent, host: UPLOAD_HOST, port: 443, method: 'PUT', path: '/object.bin', headers: {
    'content-length': UPLOAD_BYTES,
    'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
    'x-amz-date': '20260101T000000Z',
    authorization: 'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/s3/aws4_request, ' +
      'SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=' + '0'.repeat(64),
  } })
  const answered = new Promise((resolve, reject) => {
    request.once('error', reject)
    request.once('response', (response) => {
      let text = ''
      response.setEncoding('utf8')
      response.on('data', (part) => { text += part })
      response.once('end', () => resolve({ status: response.statusCode, text }))
    })
  })
  // A server that answers before the body is all sent ends the writing (its answer is then checked).
  let settled = false
  answered.then(() => { settled = true }, () => { settled = true })
  let sent = 0
  try {
    while (sent < UPLOAD_BYTES && !settled) {
      if (Date.now() > deadline) throw new Error(`not done after ${timeoutMs / 1000} s (${Math.round(sent / 2 ** 20)} MiB sent)`)
      sent += chunk.length
      if (!request.write(chunk)) await Promise.race([once(request, 'drain'), answered])
    }
    request.end()
    const { status, text } = await withTimeout(answered, Math.max(1000, deadline - Date.now()), 'the upload\'s answer')
    if (status !== 200 || Number(text) !== UPLOAD_BYTES) throw new Error(`upload answered ${status}: ${text.slice(0, 200)}`)
  } catch (error) {
    request.destroy()
    throw error
  } finally {
    if (sampler) clearInterval(sampler)
  }
  if (pid) peak = Math.max(peak, rssKb(pid))
  const secs = Number(process.hrtime.bigint() - started) / 1e9
  return { mibPerSec: UPLOAD_BYTES / 2 ** 20 / secs, secs, beforeKb: before, peakKb: peak }
}

// ---------------------------------------------------------------------------------------------

export async function proxyBench() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-proxy-'))
  const stopping = []
  try {
    const certificates = await makeUpstreamCertificates(dir)
    const upstream = await startUpstream(certificates)
    stopping.push(() => stopChild(upstream.child, 'SIGTERM'))
    const upstreamCa = fs.readFileSync(certificates.caPath)

    const ours = await startOurProxy(upstream, certificates.caPath, dir)
    let recorded = null
    stopping.push(async () => { recorded = await ours.stop() })
    const mitmdump = findMitmdump()
    let mitm = null
    let mitmMissing = null
    if (!mitmdump) mitmMissing = 'not run: mitmdump not found (install bench/requirements-mitmproxy.txt in a virtual environment and set MITMDUMP)'
    else {
      try {
        mitm = await startMitmproxy(mitmdump, certificates.caPath, dir)
        stopping.push(() => stopChild(mitm.child))
      } catch (error) {
        mitmMissing = `mitmdump did not start: ${String(error.message).slice(0, 300)}`
      }
    }

    const targets = [
      { name: 'direct', pid: null, agent: (maxSockets) => new BenchAgent({ upstreamPort: upstream.port, tunnelTo: null, ca: upstreamCa, maxSockets }) },
      {
        name: 'ours', label: 'this proxy (listen --proxy)', pid: ours.child.pid,
        agent: (maxSockets) => new BenchAgent({ proxyPort: ours.proxyPort, tunnelTo: (o) => `${o.host}:${o.port}`, ca: ours.ca, maxSockets }),
      },
      {
        name: 'mitmproxy', label: 'mitmproxy (mitmdump, no-op addon)', pid: mitm?.child.pid, missing: mitmMissing,
        // mitmproxy forwards to the address it is asked to CONNECT to: the upstream's, so that
        // nothing leaves loopback; SNI and Host still name the AWS host.
        agent: (maxSockets) => new BenchAgent({ proxyPort: mitm.proxyPort, tunnelTo: () => `127.0.0.1:${upstream.port}`, ca: mitm.ca, maxSockets }),
      },
    ]

    const small = {}
    const upload = {}
    for (const target of targets) {
      if (target.missing) continue
      try {
        small[target.name] = await withTimeout(measureSmall(target.agent), 60_000, `${target.name}: small requests`)
      } catch (error) {
        small[target.name] = { error: String(error.message).slice(0, 200) }
      }
    }
    for (const target of targets) {
      if (target.missing) continue
      const agent = target.agent(1)
      try {
        upload[target.name] = await measureUpload(agent, target.pid, UPLOAD_TIMEOUT_MS[target.name])
      } catch (error) {
        upload[target.name] = { error: String(error.message).slice(0, 200) }
      } finally {
        agent.destroy()
      }
    }
    for (const stop of stopping.splice(0).reverse()) await stop()

    const direct = small.direct
    const table = targets.map((target) => {
      const label = target.label ?? target.name
      if (target.missing) return { through: label, 'requests/s': target.missing }
      const m = small[target.name]
      if (m.error) return { through: label, 'requests/s': `failed: ${m.error}` }
      const added = target.name !== 'direct' && !direct.error
      return {
        through: label,
        requests: m.requests,
        'requests/s': Math.round(m.rate),
        'p50 ms': round(m.p50, 3),
        'p99 ms': round(m.p99, 3),
        'added p50 ms': added ? round(m.p50 - direct.p50, 3) : '',
        'added p99 ms': added ? round(m.p99 - direct.p99, 3) : '',
        recorded: target.name === 'ours' ? recorded : '',
      }
    })
    const uploadTable = targets.map((target) => {
      const label = target.label ?? target.name
      if (target.missing) return { through: label, 'MiB/s': target.missing }
      const u = upload[target.name]
      if (u.error) return { through: label, 'MiB/s': `failed: ${u.error}` }
      return {
        through: label,
        'MiB/s': Math.round(u.mibPerSec),
        's': round(u.secs, 1),
        'proxy RSS before MiB': target.pid ? mib(u.beforeKb) : '',
        'proxy peak RSS MiB': target.pid ? mib(u.peakKb) : '',
      }
    })

    const oursSmall = small.ours
    const mitmSmall = small.mitmproxy
    const oursOk = oursSmall && !oursSmall.error && direct && !direct.error
    const addedP50 = oursOk ? oursSmall.p50 - direct.p50 : null
    const ratio = oursOk && mitmSmall && !mitmSmall.error ? oursSmall.rate / mitmSmall.rate : null
    const oursUpload = upload.ours
    const targetsTable = [
      { measure: 'added p50 latency, this proxy', value: addedP50 === null ? 'failed' : `${round(addedP50, 3)} ms`, target: `<= ${TARGET_ADDED_P50_MS} ms`, 'met?': met(addedP50 === null ? false : addedP50 <= TARGET_ADDED_P50_MS) },
      {
        measure: 'requests/s, this proxy / mitmproxy',
        value: ratio === null ? (mitmMissing ?? 'failed') : `${round(ratio, 1)}x`,
        target: `>= ${TARGET_RATE_RATIO}x`,
        'met?': ratio === null ? (mitmMissing ? 'n/a' : met(false)) : met(ratio >= TARGET_RATE_RATIO),
      },
      {
        measure: 'peak RSS of the proxy during the 1 GiB upload',
        value: !oursUpload || oursUpload.error ? 'failed' : `${mib(oursUpload.peakKb)} MiB (${mib(oursUpload.beforeKb)} before)`,
        target: `<= ${TARGET_UPLOAD_RSS_MIB} MiB`,
        'met?': met(!oursUpload || oursUpload.error ? false : oursUpload.peakKb / 1024 <= TARGET_UPLOAD_RSS_MIB),
      },
    ]
    return { table, uploadTable, targetsTable, raw: { small, upload, recorded } }
  } finally {
    for (const stop of stopping.reverse()) await stop().catch(() => {})
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
