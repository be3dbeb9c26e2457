'use strict'

// Names a v3 SDK call from its HTTP request: the service from the user agent's `api/<serviceId>`
// token (else the x-amz-target prefix, else the SigV4 signing name when only one service uses it),
// the operation from x-amz-target (JSON protocols), the `Action` form field (query protocols), the
// RPC v2 path, or the service model's HTTP bindings (REST protocols), from the table
// data/aws-operations.jsonl that scripts/generate-aws-operations.py writes. Where the request fits no
// binding, or fits two equally well, the operation is unknown: never a guess.

const { openIndexedLines } = require('../data/indexed-lines.js')

const TABLE_FILE = 'aws-operations.jsonl'

/** The user agent token the SDK makes of a serviceId (its escaping, then lower case). */
function userAgentToken(serviceId) {
  return serviceId.replace(/[^!$%&'*+\-.^_`|~\w]/g, '-').toLowerCase()
}

let table

/**
 * The table's header (every service's signing name and target prefix) and the lookups built from it,
 * on first use; a service's REST bindings are read when a request of that service is first named.
 */
function loadTable() {
  if (table !== undefined) return table
  const lines = openIndexedLines(TABLE_FILE)
  const byToken = new Map()
  const byTargetPrefix = new Map()
  const bySigningName = new Map()
  for (const [serviceId, signingName, targetPrefix] of lines.header.services) {
    byToken.set(userAgentToken(serviceId), serviceId)
    if (targetPrefix) addTo(byTargetPrefix, targetPrefix, serviceId)
    addTo(bySigningName, signingName, serviceId)
  }
  table = { lines, byToken, byTargetPrefix, bySigningName, routes: new Map() }
  return table
}

function addTo(map, key, value) {
  const list = map.get(key)
  if (list) list.push(value)
  else map.set(key, [value])
}

function only(list) {
  return list !== undefined && list.length === 1 ? list[0] : undefined
}

/** The serviceId (as the SDK's client config has it) of a request, or undefined. */
function identifyService({ userAgent, target, signingName }) {
  const { byToken, byTargetPrefix, bySigningName } = loadTable()
  const token = typeof userAgent === 'string' ? /(?:^|\s)api\/([^#\s/]+)#/.exec(userAgent) : null
  if (token) {
    const serviceId = byToken.get(token[1].toLowerCase())
    if (serviceId !== undefined) return serviceId
  }
  if (typeof target === 'string' && target.includes('.')) {
    const serviceId = only(byTargetPrefix.get(target.slice(0, target.lastIndexOf('.'))))
    if (serviceId !== undefined) return serviceId
  }
  if (typeof signingName === 'string') return only(bySigningName.get(signingName))
  return undefined
}

/** One HTTP binding, compiled: `GET /{Bucket}/{Key+}?uploadId ListParts q:uploadId h:x-amz-foo`. */
function compileRoute(line) {
  const [method, uri, name, ...requirements] = line.split(' ')
  const queryStart = uri.indexOf('?')
  const uriPath = queryStart === -1 ? uri : uri.slice(0, queryStart)
  const query = []
  if (queryStart !== -1) {
    for (const pair of uri.slice(queryStart + 1).split('&')) {
      if (pair === '') continue
      const equals = pair.indexOf('=')
      query.push(equals === -1 ? [pair, null] : [pair.slice(0, equals), pair.slice(equals + 1)])
    }
  }
  const requiredQuery = []
  const requiredHeaders = []
  for (const requirement of requirements) {
    if (requirement.startsWith('q:')) requiredQuery.push(requirement.slice(2))
    else if (requirement.startsWith('h:')) requiredHeaders.push(requirement.slice(2))
  }
  const segments = splitPath(uriPath).map((segment) => {
    const label = /^\{([^}]+?)(\+)?\}$/.exec(segment)
    return label ? { label: label[1], greedy: label[2] === '+' } : { literal: segment }
  })
  const literals = segments.filter((s) => s.literal !== undefined && s.literal !== '').length
  return { method, name, segments, query, requiredQuery, requiredHeaders, literals }
}

function splitPath(uriPath) {
  // A trailing slash is not significant for the match: `PUT /bucket/` is `PUT /{Bucket}`.
  const trimmed = uriPath.length > 1 && uriPath.endsWith('/') ? uriPath.slice(0, -1) : uriPath
  return trimmed.split('/').slice(1)
}

function routesOf(serviceId, withoutBucket) {
  const { lines, routes } = loadTable()
  const key = withoutBucket ? `${serviceId}\u0000virtual-host` : serviceId
  let compiled = routes.get(key)
  if (compiled === undefined) {
    compiled = (lines.entry(serviceId)?.rest ?? []).map(compileRoute)
    if (withoutBucket) {
      // Virtual-hosted S3: the bucket is in the host name, not in the path.
      compiled = compiled
        .filter((route) => route.segments[0]?.label === 'Bucket')
        .map((route) => ({ ...route, segments: route.segments.length > 1 ? route.segments.slice(1) : [{ literal: '' }] }))
    }
    routes.set(key, compiled)
  }
  return compiled
}

function segmentsMatch(pattern, actual, p = 0, a = 0) {
  if (p === pattern.length) return a === actual.length
  const segment = pattern[p]
  if (segment.greedy) {
    const remaining = pattern.length - p - 1
    for (let end = actual.length - remaining; end > a; end--) {
      if (actual.slice(a, end).join('/') !== '' && segmentsMatch(pattern, actual, p + 1, end)) return true
    }
    return false
  }
  if (a === actual.length) return false
  if (segment.literal !== undefined) {
    if (segment.literal !== actual[a]) return false
  } else if (actual[a] === '') {
    return false
  }
  return segmentsMatch(pattern, actual, p + 1, a + 1)
}

/** How well a route fits the request: -1 for not at all, higher for more specific. */
function fit(route, method, segments, query, headerNames) {
  if (route.method !== method || !segmentsMatch(route.segments, segments)) return -1
  for (const [key, value] of route.query) {
    if (!query.has(key) || (value !== null && query.get(key) !== value)) return -1
  }
  for (const key of route.requiredQuery) if (!query.has(key)) return -1
  for (const name of route.requiredHeaders) if (!headerNames.has(name)) return -1
  return route.literals * 100 + route.query.length + route.requiredQuery.length + route.requiredHeaders.length
}

function bestRoute(routes, method, segments, query, headerNames) {
  let best = -1
  let names = new Set()
  for (const route of routes) {
    const score = fit(route, method, segments, query, headerNames)
    if (score > best) {
      best = score
      names = new Set([route.name])
    } else if (score === best && score >= 0) {
      names.add(route.name)
    }
  }
  return names.size === 1 ? [...names][0] : undefined
}

/** Whether an S3 request names its bucket in the host (true), the path (false), or can't tell (undefined). */
function s3VirtualHosted(hostname) {
  if (typeof hostname !== 'string' || hostname === '') return undefined
  if (/^[\d.]+$/.test(hostname) || hostname.includes(':') || hostname === 'localhost') return false
  const labels = hostname.split('.')
  if (/^s3(?:[.-]|$)/.test(labels[0])) return false
  if (labels.slice(1).some((label) => /^s3(?:-|$)/.test(label))) return true
  return undefined
}

/**
 * The operation of a REST request, from the service model's HTTP bindings, or undefined.
 * `requestPath` is the path with its query string, as sent.
 */
function restOperation(serviceId, { method, requestPath, hostname, headerNames }) {
  const queryStart = requestPath.indexOf('?')
  const pathOnly = queryStart === -1 ? requestPath : requestPath.slice(0, queryStart)
  const query = new URLSearchParams(queryStart === -1 ? '' : requestPath.slice(queryStart + 1))
  const routes = routesOf(serviceId, false)
  if (routes.length === 0) return undefined
  // The SDK names some operations itself (`?x-id=GetObject`) where the binding alone is ambiguous.
  const named = query.get('x-id')
  if (named !== null && routes.some((route) => route.name === named)) return named
  const segments = splitPath(pathOnly)
  if (serviceId !== 'S3') return bestRoute(routes, method, segments, query, headerNames)
  const virtual = s3VirtualHosted(hostname)
  const asPath = virtual === true ? undefined : bestRoute(routes, method, segments, query, headerNames)
  const asHost = virtual === false ? undefined : bestRoute(routesOf(serviceId, true), method, segments, query, headerNames)
  if (virtual === false) return asPath
  if (virtual === true) return asHost
  return asPath === asHost ? asPath : undefined
}

/**
 * The operation name of one request, or undefined when it cannot be known. `request` has:
 * method, requestPath, hostname, headers (lower-case names), formAction (the `Action` form field).
 */
function identifyOperation(serviceId, request) {
  if (serviceId === undefined) return undefined
  const { headers } = request
  const target = headers['x-amz-target']
  if (typeof target === 'string' && target.includes('.')) return target.slice(target.lastIndexOf('.') + 1) || undefined
  if (headers['smithy-protocol'] === 'rpc-v2-cbor') {
    const rpc = /\/service\/[^/]+\/operation\/([^/?]+)$/.exec(request.requestPath)
    return rpc ? decodeURIComponent(rpc[1]) : undefined
  }
  if (loadTable().lines.has(serviceId)) {
    return restOperation(serviceId, { ...request, headerNames: new Set(Object.keys(headers)) })
  }
  // A form body names the operation only for query-protocol services, which have no REST bindings.
  return typeof request.formAction === 'string' && request.formAction !== '' ? request.formAction : undefined
}

module.exports = { identifyService, identifyOperation, userAgentToken }
