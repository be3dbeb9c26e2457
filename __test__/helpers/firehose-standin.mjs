// A stand-in for Amazon Data Firehose on loopback, for what moto cannot do: refuse, throttle, fail
// some entries, answer late, or hold a request forever. It speaks the JSON 1.1 protocol of
// PutRecordBatch and checks every record it is sent: a base64 JSON object ending in a newline.
//
// How it answers depends on the delivery stream name (`<kind>` or `<label>.<kind>`, calls counted per
// name), so one endpoint serves every scenario:
//   ok                   accepts everything
//   throttle-<n>         the first n calls get HTTP 400 ThrottlingException, then ok
//   throttle             every call gets HTTP 400 ThrottlingException
//   unavailable          every call gets HTTP 503 ServiceUnavailableException
//   partial-<n>          the first n calls fail every second entry (FailedPutCount), then ok
//   poison               entries whose data contains "Poison" always fail; the rest are accepted
//   slow-<ms>            answers ok after <ms> milliseconds
//   hold                 never answers (the request stays open until the client goes away)
//   bad-signature        HTTP 400 InvalidSignatureException whose message echoes the canonical
//                        request, headers included, as AWS services do
import http from 'node:http'

const TARGET = 'Firehose_20150804.PutRecordBatch'

export async function startFirehoseStandIn() {
  const calls = new Map() // stream -> number of calls
  const state = {
    /** Every request: { stream, records, complete, status, headers } */
    requests: [],
    /** Records acknowledged as delivered, per stream (decoded text). */
    accepted: new Map(),
    /** Records that were not a single JSON object followed by a newline. */
    garbled: [],
    /** Requests whose body ended before its Content-Length. */
    incomplete: 0,
    held: new Set(),
    waiters: [],
  }

  function notify() {
    for (const waiter of state.waiters.splice(0)) waiter()
  }

  function reply(res, status, body) {
    if (res.destroyed) return
    const text = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': `standin-${state.requests.length}` })
    res.end(text)
  }

  function serviceError(res, status, type, message) {
    reply(res, status, { __type: type, message })
  }

  /** The canonical request of SigV4: the headers named in SignedHeaders, with their values. */
  function canonicalRequest(req) {
    const signed = (/SignedHeaders=([^,\s]+)/.exec(req.headers.authorization ?? '')?.[1] ?? '').split(';').filter(Boolean)
    return ['POST', '/', '', ...signed.map((name) => `${name}:${req.headers[name]}`), '', signed.join(';')].join('\n')
  }

  function handle(req, res, body) {
    const entry = { stream: undefined, records: [], complete: true, status: 0, headers: req.headers }
    state.requests.push(entry)
    if (req.method !== 'POST' || req.headers['x-amz-target'] !== TARGET) {
      entry.status = 400
      return serviceError(res, 400, 'UnknownOperationException', `unexpected ${req.method} ${req.headers['x-amz-target']}`)
    }
    let parsed
    try {
      parsed = JSON.parse(body.toString('utf8'))
    } catch {
      entry.status = 400
      return serviceError(res, 400, 'SerializationException', 'body is not JSON')
    }
    const stream = (entry.stream = parsed.DeliveryStreamName)
    const records = (parsed.Records ?? []).map((r) => Buffer.from(r.Data, 'base64').toString('utf8'))
    entry.records = records
    for (const text of records) {
      let ok = text.endsWith('\n') && text.indexOf('\n') === text.length - 1
      try {
        const value = JSON.parse(text)
        ok &&= value !== null && typeof value === 'object' && !Array.isArray(value)
      } catch {
        ok = false
      }
      if (!ok) state.garbled.push(text)
    }
    const call = (calls.get(stream) ?? 0) + 1
    calls.set(stream, call)
    const accept = (failed) => {
      const list = state.accepted.get(stream) ?? []
      const responses = records.map((text, i) => {
        if (failed(text, i)) return { ErrorCode: 'ServiceUnavailableException', ErrorMessage: 'Slow down.' }
        list.push(text)
        return { RecordId: `${stream}-${call}-${i}` }
      })
      state.accepted.set(stream, list)
      const failedCount = responses.filter((r) => r.ErrorCode).length
      entry.status = 200
      reply(res, 200, { FailedPutCount: failedCount, Encrypted: false, RequestResponses: responses })
    }
    // "name.kind-arg": the part before the dot only keeps call counts apart.
    const [kind, arg] = String(stream).slice(String(stream).indexOf('.') + 1).split(/-(?=\d+$)/)
    switch (kind) {
      case 'ok':
        return accept(() => false)
      case 'throttle':
        if (arg === undefined || call <= Number(arg)) {
          entry.status = 400
          return serviceError(res, 400, 'ThrottlingException', 'Rate exceeded for stream throttle.')
        }
        return accept(() => false)
      case 'unavailable':
        entry.status = 503
        return serviceError(res, 503, 'ServiceUnavailableException', 'Slow down.')
      case 'partial':
        return accept((text, i) => call <= Number(arg) && i % 2 === 1)
      case 'poison':
        return accept((text) => text.includes('Poison'))
      case 'slow':
        setTimeout(() => accept(() => false), Number(arg)).unref()
        return undefined
      case 'hold':
        state.held.add(res)
        return undefined
      case 'bad-signature':
        entry.status = 400
        return serviceError(res, 400, 'InvalidSignatureException',
          'The request signature we calculated does not match the signature you provided. Check your AWS Secret ' +
          'Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String ' +
          `for this request should have been\n'${canonicalRequest(req)}'\n`)
      default:
        entry.status = 400
        return serviceError(res, 400, 'ResourceNotFoundException', `Firehose ${stream} under account 123456789012 not found.`)
    }
  }

  const server = http.createServer((req, res) => {
    const chunks = []
    let length = 0
    const expected = Number(req.headers['content-length'])
    req.on('data', (chunk) => { chunks.push(chunk); length += chunk.length })
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks))
      notify()
    })
    req.on('close', () => {
      if (!req.complete) {
        state.incomplete++
        state.requests.push({ stream: undefined, records: [], complete: false, received: length, expected, headers: req.headers })
        notify()
      }
      state.held.delete(res)
    })
  })
  server.keepAliveTimeout = 1000
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    state,
    /** Records acknowledged for `stream`. */
    accepted: (stream) => state.accepted.get(stream) ?? [],
    /** Resolves when `predicate(state)` holds, checked after every request; rejects after `ms`. */
    until(predicate, ms = 10_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('stand-in: condition not reached in time')), ms)
        const check = () => {
          if (predicate(state)) {
            clearTimeout(timer)
            resolve()
          } else {
            state.waiters.push(check)
          }
        }
        check()
      })
    },
    async stop() {
      for (const res of state.held) res.destroy()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}
