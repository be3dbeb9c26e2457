'use strict'

// `report`: one self-contained HTML page of a recording — a timeline per invocation, latency per API,
// errors and retries, the least-privilege policy and where the data came from. The page's script and
// style (report/) and the charting library (uPlot, from node_modules) are inlined; the data is
// embedded as JSON. The page makes no network request.

const fs = require('node:fs')
const path = require('node:path')

const { isErrorCall, isFailedAttempt } = require('./records.js')
const { summarize, percentile, describeError } = require('./summary.js')
const { buildPolicy, policyReport, formatPolicy } = require('./policy.js')

const PAGE_DIR = path.join(__dirname, '..', 'report')
/** Attempts belong to the call of the same invocation and operation whose time span holds them, give or take this. */
const ATTEMPT_SLACK_MS = 5
/** Errors and retries table: at most this many invocations linked per row. */
const MAX_LINKED_INVOCATIONS = 20
const THROTTLING = /throttl|toomanyrequests|slowdown|requestlimitexceeded|provisionedthroughputexceeded|ratelimit/i

function attemptError(attempt) {
  return attempt.AwsException || attempt.SdkException || ''
}

function isThrottle(attempt) {
  return Number(attempt.HttpStatusCode) === 429 || THROTTLING.test(attemptError(attempt))
}

/** `object` without its fields that are undefined, null, false or empty text. */
function withValues(object) {
  const kept = {}
  for (const key in object) {
    const value = object[key]
    if (value !== undefined && value !== null && value !== false && value !== '') kept[key] = value
  }
  return kept
}

/** Which invocation a record belongs to: its request id, else the init phase of its function, else its file (a `run`). */
function invocationKey(record, file) {
  if (typeof record.awsRequestId === 'string' && record.awsRequestId !== '') return record.awsRequestId
  if (record.phase === 'init') return `init ${record.functionName ?? ''}`.trim()
  return `run ${path.basename(file)}`
}

/**
 * The page's data from recordings read with readRecordingFiles.
 * @param {{ file: string, format: string, records: object[], skipped: number }[]} recordings
 */
function buildReport(recordings, { accountId, maxResources } = {}) {
  const records = []
  for (const { records: list } of recordings) for (const record of list) records.push(record)

  const invocations = new Map()
  const pendingAttempts = new Map()
  const types = {}
  const functions = new Map()
  const notUnderstood = []
  let untimed = 0
  let firstTime = Infinity
  let lastTime = -Infinity

  for (const { file, records: list } of recordings) {
    for (const record of list) {
      types[record.Type] = (types[record.Type] ?? 0) + 1
      if (record.functionName) {
        const name = `${record.functionName}${record.functionVersion ? `:${record.functionVersion}` : ''}`
        functions.set(name, (functions.get(name) ?? 0) + 1)
      }
      const key = invocationKey(record, file)
      if (record.Type === 'ApiCallAttempt') {
        const opKey = `${key}\u0000${record.Service}\u0000${record.Api}`
        const list = pendingAttempts.get(opKey) ?? []
        list.push(record)
        pendingAttempts.set(opKey, list)
        continue
      }
      if (record.Type !== 'ApiCall') continue
      if (!Number.isFinite(record.Timestamp) || !Number.isFinite(record.Latency)) {
        untimed += 1
        continue
      }
      const start = record.Timestamp
      const end = start + record.Latency
      firstTime = Math.min(firstTime, start)
      lastTime = Math.max(lastTime, end)
      // The call's attempts arrived before it; take those whose start lies within its span.
      const opKey = `${key}\u0000${record.Service}\u0000${record.Api}`
      const waiting = pendingAttempts.get(opKey) ?? []
      const mine = []
      const rest = []
      for (const attempt of waiting) {
        const at = attempt.Timestamp
        if (Number.isFinite(at) && at >= start - ATTEMPT_SLACK_MS && at <= end + ATTEMPT_SLACK_MS) mine.push(attempt)
        else rest.push(attempt)
      }
      if (rest.length > 0) pendingAttempts.set(opKey, rest)
      else pendingAttempts.delete(opKey)

      let invocation = invocations.get(key)
      if (!invocation) {
        invocation = {
          id: key,
          fn: record.functionName ?? null,
          cold: false,
          phases: new Set(),
          start,
          end,
          calls: [],
        }
        invocations.set(key, invocation)
      }
      if (record.coldStart === true) invocation.cold = true
      if (record.phase) invocation.phases.add(record.phase)
      invocation.start = Math.min(invocation.start, start)
      invocation.end = Math.max(invocation.end, end)
      mine.sort((a, b) => a.Timestamp - b.Timestamp)
      invocation.calls.push({
        record,
        attempts: mine,
      })
    }
  }
  let unmatchedAttempts = 0
  for (const list of pendingAttempts.values()) unmatchedAttempts += list.length

  // Per API: the latencies, for the histogram and p90 (the other figures come from the summary).
  const summary = summarize(records)
  const latencies = new Map()
  const problemRows = new Map()
  const invocationList = []
  for (const invocation of invocations.values()) {
    invocation.calls.sort((a, b) => a.record.Timestamp - b.record.Timestamp || a.record.Latency - b.record.Latency)
    let errors = 0
    let retries = 0
    const calls = invocation.calls.map(({ record, attempts }) => {
      const apiKey = `${record.Service}.${record.Api}`
      const list = latencies.get(apiKey) ?? []
      list.push(record.Latency)
      latencies.set(apiKey, list)
      const error = isErrorCall(record)
      const attemptCount = Math.max(1, Number(record.AttemptCount ?? 1))
      const throttled = attempts.some(isThrottle)
      if (error) errors += 1
      if (attemptCount > 1) retries += attemptCount - 1
      const problems = []
      if (error) problems.push(describeError(record))
      if (attemptCount > 1) problems.push(throttled ? 'retried after throttling' : 'retried')
      for (const problem of problems) {
        const rowKey = `${record.Service}\u0000${record.Api}\u0000${problem}`
        const row = problemRows.get(rowKey) ?? { service: String(record.Service), api: String(record.Api), problem, calls: 0, invocations: new Set() }
        row.calls += 1
        row.invocations.add(invocation.id)
        problemRows.set(rowKey, row)
      }
      const exception = record.FinalAwsException || record.FinalSdkException || ''
      // Fields without a value are left out: the page is smaller and opens faster.
      return withValues({
        sv: String(record.Service ?? '?'),
        op: String(record.Api ?? '?'),
        s: record.Timestamp - invocation.start,
        d: record.Latency,
        n: attemptCount,
        at: attempts.map((attempt) => withValues({
          s: attempt.Timestamp - invocation.start,
          d: Number.isFinite(attempt.AttemptLatency) ? attempt.AttemptLatency : 0,
          st: attempt.HttpStatusCode,
          ex: attemptError(attempt),
          bad: isFailedAttempt(attempt),
          th: isThrottle(attempt),
        })),
        st: record.FinalHttpStatusCode,
        ex: exception,
        msg: record.FinalAwsExceptionMessage || record.FinalSdkExceptionMessage,
        mx: Number(record.MaxRetriesExceeded) === 1,
        err: error,
        th: throttled,
        ph: record.phase,
        rg: record.Region,
      })
    })
    invocationList.push({
      id: invocation.id,
      fn: invocation.fn,
      cold: invocation.cold,
      phases: [...invocation.phases].sort(),
      t0: invocation.start,
      dur: invocation.end - invocation.start,
      errors,
      retries,
      calls,
    })
  }
  invocationList.sort((a, b) => a.t0 - b.t0)

  const apis = summary.byApi.map((entry) => {
    const sorted = (latencies.get(`${entry.service}.${entry.api}`) ?? []).slice().sort((a, b) => a - b)
    return { ...entry, p90: percentile(sorted, 90), latencies: sorted }
  })

  const policyResult = buildPolicy(records, { accountId, maxResources })
  const policy = policyResult.calls > 0 && policyResult.policy.Statement.length > 0
    ? {
        text: formatPolicy(policyResult.policy, 'json'),
        report: policyReport(policyResult),
      }
    : { text: null, report: policyReport(policyResult) }

  const skipped = recordings.reduce((sum, { skipped: count }) => sum + count, 0)
  if (skipped > 0) notUnderstood.push(`${skipped} line${skipped === 1 ? ' is' : 's are'} not a recorded event (skipped)`)
  const otherTypes = Object.entries(types).filter(([type]) => type !== 'ApiCall' && type !== 'ApiCallAttempt')
  for (const [type, count] of otherTypes) notUnderstood.push(`${count} record${count === 1 ? '' : 's'} of type "${type}"`)
  if (untimed > 0) notUnderstood.push(`${untimed} call${untimed === 1 ? '' : 's'} without a Timestamp or Latency, left off the timeline`)
  if (unmatchedAttempts > 0) notUnderstood.push(`${unmatchedAttempts} attempt${unmatchedAttempts === 1 ? '' : 's'} matched to no call`)
  for (const { service, api, calls } of policyResult.unmapped) {
    notUnderstood.push(`${calls} call${calls === 1 ? '' : 's'} of ${service}.${api}: no IAM action known`)
  }

  return {
    provenance: {
      files: recordings.map(({ file, format, records: list, skipped: count }) => ({ file, format, records: list.length, skipped: count })),
      from: Number.isFinite(firstTime) ? firstTime : null,
      to: Number.isFinite(lastTime) ? lastTime : null,
      functions: [...functions].map(([name, count]) => ({ name, records: count })),
      types,
      notUnderstood,
    },
    totals: {
      calls: summary.calls,
      errors: summary.errors,
      retries: summary.retries,
      attempts: summary.attempts,
      p50: summary.latencyMs.p50,
      p99: summary.latencyMs.p99,
    },
    invocations: invocationList,
    apis,
    problems: [...problemRows.values()]
      .sort((a, b) => b.calls - a.calls || a.service.localeCompare(b.service) || a.api.localeCompare(b.api))
      .map(({ invocations: ids, ...row }) => ({ ...row, invocationCount: ids.size, invocations: [...ids].slice(0, MAX_LINKED_INVOCATIONS) })),
    policy,
  }
}

const SCRIPT_UNSAFE = { '<': '\\u003c', '\u2028': '\\u2028', '\u2029': '\\u2029' }

/** JSON safe inside a <script> element (one pass over the text: it is large). */
function scriptJson(value) {
  return JSON.stringify(value).replace(/[<\u2028\u2029]/g, (c) => SCRIPT_UNSAFE[c])
}

/** Script text safe inside a <script> element. */
function inlineScript(text) {
  return text.replace(/<\/(script)/gi, '<\\/$1')
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c])
}

/** The page: report/page.html with the library, the page's own style and script, and the data put in. */
function renderReport(report, { title = 'AWS API calls' } = {}) {
  const read = (file) => fs.readFileSync(file, 'utf8')
  const uplotDir = path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js'))
  const parts = {
    TITLE: escapeHtml(title),
    STYLE: read(path.join(uplotDir, 'uPlot.min.css')) + read(path.join(PAGE_DIR, 'page.css')),
    LIBRARY: inlineScript(read(path.join(uplotDir, 'uPlot.iife.min.js'))),
    DATA: scriptJson(report),
    SCRIPT: inlineScript(read(path.join(PAGE_DIR, 'page.js'))),
  }
  // A function replacement, so "$" in the parts is taken literally.
  return read(path.join(PAGE_DIR, 'page.html')).replace(/\/\*@(TITLE|STYLE|LIBRARY|DATA|SCRIPT)@\*\//g, (_, name) => parts[name])
}

module.exports = { buildReport, renderReport }
