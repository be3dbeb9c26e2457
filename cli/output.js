'use strict'

// Writes records as they arrive: CSV (the file sink's columns, formatted natively), JSON Lines, or
// a table for people. To standard output or appended to a file.

const fs = require('node:fs')

const FORMATS = ['jsonl', 'csv', 'table']

function time(ms) {
  if (!Number.isFinite(ms)) return '-'
  const date = new Date(ms)
  const pad = (n, width = 2) => String(n).padStart(width, '0')
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
}

const TABLE_HEADER = `${'TIME'.padEnd(12)}  ${'EVENT'.padEnd(7)}  ${'SERVICE API'.padEnd(36)}  ${'STATUS'.padStart(6)}  ${'MS'.padStart(6)}  DETAIL\n`

function tableRow(record) {
  const call = record.Type === 'ApiCall'
  const event = call ? 'call' : record.Type === 'ApiCallAttempt' ? 'attempt' : String(record.Type)
  const status = call ? record.FinalHttpStatusCode : record.HttpStatusCode
  const latency = call ? record.Latency : record.AttemptLatency
  const exception = call
    ? record.FinalAwsException || record.FinalSdkException
    : record.AwsException || record.SdkException
  const message = call
    ? record.FinalAwsExceptionMessage || record.FinalSdkExceptionMessage
    : record.AwsExceptionMessage || record.SdkExceptionMessage
  const detail = []
  if (call && record.AttemptCount !== undefined) detail.push(`${record.AttemptCount} attempt${record.AttemptCount === 1 ? '' : 's'}`)
  if (call && Number(record.MaxRetriesExceeded) === 1) detail.push('retries exhausted')
  if (exception) detail.push(message ? `${exception}: ${message}` : exception)
  return `${time(record.Timestamp ?? record.recordedAt).padEnd(12)}  ${event.padEnd(7)}  ` +
    `${`${record.Service ?? '?'} ${record.Api ?? '?'}`.padEnd(36)}  ${String(status ?? '-').padStart(6)}  ` +
    `${String(latency ?? '-').padStart(6)}  ${detail.join('; ').replace(/[\r\n]+/g, ' ')}`.trimEnd() + '\n'
}

/**
 * A destination for records. `write` returns false once the destination is gone (EPIPE); after
 * that, records are dropped and `closed` is set.
 */
class RecordWriter {
  #fd = null
  #stream = null
  #headerPending
  #csvHeader

  /**
   * @param {{ format: string, file?: string, stream?: NodeJS.WritableStream, csvHeader: () => string }} options
   */
  constructor({ format, file, stream, csvHeader }) {
    this.format = format
    this.#csvHeader = csvHeader
    this.closed = false
    if (file) {
      this.#fd = fs.openSync(file, 'a')
      // Appending to a CSV file that already has rows: no second header.
      this.#headerPending = fs.fstatSync(this.#fd).size === 0
    } else {
      this.#stream = stream
      this.#headerPending = true
      // A reader that goes away (EPIPE) ends the output, not the process.
      stream.on('error', () => {
        this.closed = true
      })
    }
  }

  /** Writes what comes before the first record (the CSV header or the table header). */
  begin() {
    if (!this.#headerPending) return
    this.#headerPending = false
    if (this.format === 'csv') this.#emit(this.#csvHeader())
    else if (this.format === 'table') this.#emit(TABLE_HEADER)
  }

  /** Writes records; for CSV, `csvRows` are their rows as the native side wrote them. */
  write(records, csvRows) {
    if (this.closed || records.length === 0) return !this.closed
    this.begin()
    let text
    if (this.format === 'csv') text = csvRows.join('')
    else if (this.format === 'table') text = records.map(tableRow).join('')
    else text = records.map((record) => `${JSON.stringify(record)}\n`).join('')
    this.#emit(text)
    return !this.closed
  }

  #emit(text) {
    if (text === '') return
    if (this.#fd !== null) {
      fs.writeSync(this.#fd, text)
      return
    }
    try {
      this.#stream.write(text)
    } catch (error) {
      if (error.code !== 'EPIPE') throw error
      this.closed = true
    }
  }

  /** Ends the output; resolves when everything written has been handed to the OS. */
  end() {
    if (this.#fd !== null) {
      fs.closeSync(this.#fd)
      this.#fd = null
      return Promise.resolve()
    }
    if (this.closed || !this.#stream || this.#stream === process.stdout || this.#stream === process.stderr) {
      // Standard streams are not ended; wait for what is queued to drain.
      const stream = this.#stream
      return new Promise((resolve) => {
        if (this.closed || !stream || stream.writableLength === 0) return resolve()
        const done = () => {
          stream.off('drain', done).off('error', done).off('close', done)
          resolve()
        }
        stream.on('drain', done).on('error', done).on('close', done)
      })
    }
    return new Promise((resolve) => this.#stream.end(resolve))
  }
}

module.exports = { RecordWriter, FORMATS }
