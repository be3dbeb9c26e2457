'use strict'

// Names a v3 SDK call from its HTTP request: the service from the user agent's `api/<serviceId>`
// token (else the x-amz-target prefix, else the SigV4 signing name when only one service uses it, or
// the one of those services whose endpoint prefix the host name has),
// the operation from x-amz-target (JSON protocols), the `Action` form field (query protocols), the
// RPC v2 path, or the service model's HTTP bindings (REST protocols), from the table
// data/aws-operations.jsonl that scripts/generate-aws-operations.py writes. Where the request fits no
// binding, or fits two equally well, the operation is unknown: never a guess.

const { openIndexedLines } = require('../data/indexed-lines.js')

const TABLE_FILE = 'aws-operations.jsonl'
const TABLE_INDEX = require('../data/aws-operations.index.js')

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
  const lines = openIndexedLines(TABLE_FILE, TABLE_INDEX)
  const byToken = new Map()
  const byTargetPrefix = new Map()
  const bySigningName = new Map()
  for (const [serviceId, signingName, targetPrefix] of lines.header.services) {
    byToken.set(userAgentToken(serviceId), serviceId)
    if (targetPrefix) addTo(byTargetPrefix, targetPrefix, serviceId)
    addTo(bySigningName, signingName, serviceId)
  }
  table = { lines, byToken, byTargetPrefix, bySigningName, endpointPrefixes: lines.header.endpointPrefixes ?? {}, routes: new Map() }
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

/** Of services that sign alike, the one whose endpoint prefix the host name has (the longest such). */
function byEndpointPrefix(candidates, hostname, endpointPrefixes) {
  if (typeof hostname !== 'string') return undefined
  const host = `.${hostname.toLowerCase()}`
  let best
  for (const serviceId of candidates) {
    const prefix = endpointPrefixes[serviceId]
    if (prefix !== undefined && host.includes(`.${prefix}.`) && (best === undefined || prefix.length > endpointPrefixes[best].length)) best = serviceId
  }
  return best
}

/** The serviceId (as the SDK's client config has it) of a request, or undefined. */
function identifyService({ userAgent, target, signingName, hostname }) {
  const { byToken, byTargetPrefix, bySigningName, endpointPrefixes } = loadTable()
  const token = typeof userAgent === 'string' ? /(?:^|\s)api\/([^#\s/]+)#/.exec(userAgent) : null
  if (token) {
    const serviceId = byToken.get(token[1].toLowerCase())
    if (serviceId !== undefined) return serviceId
  }
  if (typeof target === 'string' && target.includes('.')) {
    const serviceId = only(byTargetPrefix.get(target.slice(0, target.lastIndexOf('.'))))
    if (serviceId !== undefined) return serviceId
  }
  if (typeof signingName !== 'string') return undefined
  const signers = bySigningName.get(signingName)
  return only(signers) ?? byEndpointPrefix(signers ?? [], hostname, endpointPrefixes)
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

/**
 * Whether the path segments fit the pattern; `labels`, when given, gets each label's raw text
 * (a greedy label's segments joined with `/`).
 */
function segmentsMatch(pattern, actual, p = 0, a = 0, labels = undefined) {
  if (p === pattern.length) return a === actual.length
  const segment = pattern[p]
  if (segment.greedy) {
    const remaining = pattern.length - p - 1
    for (let end = actual.length - remaining; end > a; end--) {
      const text = actual.slice(a, end).join('/')
      if (text !== '' && segmentsMatch(pattern, actual, p + 1, end, labels)) {
        if (labels) labels[segment.label] = text
        return true
      }
    }
    return false
  }
  if (a === actual.length) return false
  if (segment.literal !== undefined) {
    if (segment.literal !== actual[a]) return false
  } else if (actual[a] === '') {
    return false
  }
  if (!segmentsMatch(pattern, actual, p + 1, a + 1, labels)) return false
  if (labels && segment.label !== undefined) labels[segment.label] = actual[a]
  return true
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

/** The bucket a virtual-hosted S3 host name names: the labels before its `s3` label. */
function bucketOfHost(hostname) {
  const labels = hostname.split('.')
  const at = labels.findIndex((label, i) => i > 0 && /^s3(?:-|$)/.test(label))
  return at > 0 ? labels.slice(0, at).join('.') : undefined
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

function decode(text) {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

/** A JSON body's object, or undefined. */
function jsonObject(body) {
  if (typeof body !== 'string' || body === '') return undefined
  try {
    const value = JSON.parse(body)
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : undefined
  } catch {
    return undefined
  }
}

/**
 * A query-protocol form as the input it encodes: `Tags.member.1.Key=k` is `{ Tags: [{ Key: 'k' }] }`
 * (`member` and `entry` are the list's own words; a number is a 1-based position).
 */
function formInput(body) {
  const input = {}
  for (const [key, value] of new URLSearchParams(body)) {
    if (key === 'Action' || key === 'Version') continue
    const path = key.split('.').filter((part, i, parts) => !((part === 'member' || part === 'entry') && /^\d+$/.test(parts[i + 1] ?? '')))
    let node = input
    for (let i = 0; i < path.length; i++) {
      const part = /^\d+$/.test(path[i]) ? Number(path[i]) - 1 : path[i]
      if (part === -1 || part === '__proto__') break
      if (i === path.length - 1) {
        node[part] = value
        break
      }
      const nextIsIndex = /^\d+$/.test(path[i + 1])
      if (node[part] === null || typeof node[part] !== 'object') node[part] = nextIsIndex ? [] : {}
      node = node[part]
    }
  }
  return input
}

/** Where an operation's scalar input members travel, by location key (`u:`, `q:`, `h:`, `b:`). */
function memberLocations(entry, operation) {
  const own = entry.byOperation?.[operation]
  return own === undefined ? entry.members ?? {} : { ...entry.members, ...own }
}

/** The members a REST request's URI, query and headers carry (the route of `operation` it fits). */
function restInput(serviceId, operation, { method, requestPath, hostname, headers }) {
  const entry = loadTable().lines.entry(serviceId)
  const locations = memberLocations(entry, operation)
  const queryStart = requestPath.indexOf('?')
  const segments = splitPath(queryStart === -1 ? requestPath : requestPath.slice(0, queryStart))
  const input = {}
  const virtual = serviceId === 'S3' ? s3VirtualHosted(hostname) : false
  const candidates = virtual === true ? [true] : virtual === false ? [false] : [false, true]
  for (const withoutBucket of candidates) {
    const route = routesOf(serviceId, withoutBucket).find((r) => r.name === operation && r.method === method && segmentsMatch(r.segments, segments))
    if (route === undefined) continue
    const labels = {}
    segmentsMatch(route.segments, segments, 0, 0, labels)
    for (const [label, raw] of Object.entries(labels)) input[locations[`u:${label}`] ?? label] = decode(raw)
    if (withoutBucket) {
      const bucket = bucketOfHost(hostname)
      if (bucket !== undefined) input.Bucket = bucket
    }
    break
  }
  for (const [key, value] of new URLSearchParams(queryStart === -1 ? '' : requestPath.slice(queryStart + 1))) {
    const member = locations[`q:${key}`]
    if (member !== undefined && input[member] === undefined) input[member] = value
  }
  for (const [name, value] of Object.entries(headers)) {
    const member = locations[`h:${name}`]
    if (member !== undefined && typeof value === 'string') input[member] = value
  }
  return { input, locations }
}

/**
 * The input of one call, read back from its HTTP request as far as the service model allows: the
 * URI labels, query parameters and headers of a REST binding, and a JSON or form body. `request`
 * has method, requestPath, hostname, headers (lower-case names) and body (a whole JSON or form
 * body, or undefined). Payload members come along with the rest; callers take identifiers only.
 */
function requestInput(serviceId, operation, request) {
  const { headers, body } = request
  const contentType = typeof headers['content-type'] === 'string' ? headers['content-type'].toLowerCase() : ''
  const isForm = contentType.startsWith('application/x-www-form-urlencoded')
  const fromBody = typeof body !== 'string' ? undefined : isForm ? formInput(body) : contentType.includes('json') ? jsonObject(body) : undefined
  if (!loadTable().lines.has(serviceId)) return fromBody ?? {}
  const { input, locations } = restInput(serviceId, operation, request)
  for (const [key, value] of Object.entries(fromBody ?? {})) {
    const member = locations[`b:${key}`] ?? key
    if (input[member] === undefined) input[member] = value
  }
  return input
}

module.exports = { identifyService, identifyOperation, requestInput, userAgentToken }
