'use strict'

// Calls by service and operation, errors, retries and latency percentiles over recorded events.

const { isErrorCall, isFailedAttempt } = require('./records.js')

/** Nearest-rank percentile of sorted numbers; null when there are none. */
function percentile(sorted, p) {
  if (sorted.length === 0) return null
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]
}

function describeError(record) {
  const status = record.FinalHttpStatusCode !== undefined ? String(record.FinalHttpStatusCode) : 'no response'
  const exception = record.FinalAwsException || record.FinalSdkException ||
    (Number(record.MaxRetriesExceeded) === 1 ? 'MaxRetriesExceeded' : '')
  return exception ? `${status} ${exception}` : status
}

/** Orders text by code point, as the native summary does (not by locale). */
function byCodePoint(a, b) {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * Collects records as they come and summarizes them. Calls are ApiCall events. The same summary as
 * the native one `listen` and `run` print (src/summary.rs), for recordings read back from files.
 */
class SummaryBuilder {
  #apis = new Map()
  #errors = new Map()
  #latencies = []
  #attempts = 0
  #failedAttempts = 0

  add(records) {
    for (const record of records) {
      if (record.Type === 'ApiCallAttempt') {
        this.#attempts += 1
        if (isFailedAttempt(record)) this.#failedAttempts += 1
        continue
      }
      if (record.Type !== 'ApiCall') continue
      const service = String(record.Service ?? '?')
      const api = String(record.Api ?? '?')
      const key = `${service}\u0000${api}`
      let entry = this.#apis.get(key)
      if (!entry) {
        entry = { service, api, calls: 0, errors: 0, retriedCalls: 0, retries: 0, latencies: [] }
        this.#apis.set(key, entry)
      }
      entry.calls += 1
      const retries = Math.max(0, Number(record.AttemptCount ?? 1) - 1)
      if (retries > 0) {
        entry.retriedCalls += 1
        entry.retries += retries
      }
      if (Number.isFinite(record.Latency)) {
        entry.latencies.push(record.Latency)
        this.#latencies.push(record.Latency)
      }
      if (isErrorCall(record)) {
        entry.errors += 1
        const errorKey = `${key}\u0000${describeError(record)}`
        const error = this.#errors.get(errorKey) ?? { service, api, error: describeError(record), count: 0 }
        error.count += 1
        this.#errors.set(errorKey, error)
      }
    }
  }

  /** The summary as plain data (what `summary --json` prints). */
  result() {
    const byApi = [...this.#apis.values()]
      .sort((a, b) => byCodePoint(a.service, b.service) || byCodePoint(a.api, b.api))
      .map(({ latencies, ...entry }) => {
        const sorted = [...latencies].sort((a, b) => a - b)
        return { ...entry, p50: percentile(sorted, 50), p99: percentile(sorted, 99) }
      })
    const sorted = [...this.#latencies].sort((a, b) => a - b)
    const total = (field) => byApi.reduce((sum, entry) => sum + entry[field], 0)
    return {
      calls: total('calls'),
      errors: total('errors'),
      retriedCalls: total('retriedCalls'),
      retries: total('retries'),
      attempts: this.#attempts,
      failedAttempts: this.#failedAttempts,
      latencyMs: { p50: percentile(sorted, 50), p99: percentile(sorted, 99) },
      byApi,
      errorKinds: [...this.#errors.values()].sort((a, b) => b.count - a.count || byCodePoint(a.service, b.service)),
    }
  }
}

function summarize(records) {
  const builder = new SummaryBuilder()
  builder.add(records)
  return builder.result()
}

function plural(count, word, words = `${word}s`) {
  return `${count} ${count === 1 ? word : words}`
}

function table(rows, rightAligned) {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => String(row[column]).length)))
  return rows.map((row) => row.map((cell, column) => {
    const text = String(cell)
    const last = column === row.length - 1
    if (rightAligned.has(column)) return text.padStart(widths[column])
    return last ? text : text.padEnd(widths[column])
  }).join('  ').trimEnd()).join('\n')
}

const ms = (value) => (value === null ? '-' : String(value))

/** The summary as text for people. */
function formatSummary(summary) {
  const services = new Set(summary.byApi.map((entry) => entry.service)).size
  const lines = []
  lines.push(`${plural(summary.calls, 'call')} to ${plural(services, 'service')}, ` +
    `${plural(summary.errors, 'error')}, ${plural(summary.retries, 'retry', 'retries')} ` +
    `(${plural(summary.retriedCalls, 'call')} retried), ${plural(summary.attempts, 'attempt')}; ` +
    `latency p50 ${ms(summary.latencyMs.p50)} ms, p99 ${ms(summary.latencyMs.p99)} ms`)
  if (summary.byApi.length > 0) {
    lines.push('')
    const rows = [['SERVICE', 'API', 'CALLS', 'ERRORS', 'RETRIES', 'P50 MS', 'P99 MS']]
    for (const entry of summary.byApi) {
      rows.push([entry.service, entry.api, entry.calls, entry.errors, entry.retries, ms(entry.p50), ms(entry.p99)])
    }
    lines.push(table(rows, new Set([2, 3, 4, 5, 6])))
  }
  if (summary.errorKinds.length > 0) {
    lines.push('')
    lines.push('Errors:')
    const rows = [['SERVICE', 'API', 'STATUS / EXCEPTION', 'CALLS']]
    for (const error of summary.errorKinds) rows.push([error.service, error.api, error.error, error.count])
    lines.push(table(rows, new Set([3])))
  }
  return `${lines.join('\n')}\n`
}

module.exports = { summarize, formatSummary, percentile, describeError }
