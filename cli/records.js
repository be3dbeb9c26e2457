'use strict'

// Reading recordings back (JSON Lines, CSV, gzip) and deciding what counts as an error. Needs no native
// code: `summary` and `policy` run without loading the addon.

const fs = require('node:fs')
const zlib = require('node:zlib')

/**
 * The CSV columns as the native writer declares them (header, record field, numeric or not), from
 * data/csv-columns.json, which a test keeps equal to the addon's `csvColumns()`.
 */
const CSV_COLUMNS = new Map(require('../data/csv-columns.json').columns.map((column) => [column.name, column]))

/**
 * An ApiCall is an error when the call did not succeed in the end: its final HTTP status is 400 or
 * more, it reports a final service or SDK exception (a connection error has no status at all), or
 * its retries ran out. A call that failed first and then succeeded on a retry is not an error.
 */
function isErrorCall(record) {
  return record.Type === 'ApiCall' && (
    Number(record.FinalHttpStatusCode) >= 400 ||
    Boolean(record.FinalAwsException) ||
    Boolean(record.FinalSdkException) ||
    Number(record.MaxRetriesExceeded) === 1
  )
}

/** An ApiCallAttempt failed when its HTTP status is 400 or more or it reports an exception. */
function isFailedAttempt(record) {
  return record.Type === 'ApiCallAttempt' && (
    Number(record.HttpStatusCode) >= 400 ||
    Boolean(record.AwsException) ||
    Boolean(record.SdkException)
  )
}

/** What `--only-errors` keeps: failed calls and failed attempts (including attempts retried successfully). */
function isErrorRecord(record) {
  return isErrorCall(record) || isFailedAttempt(record)
}

/** Parses RFC 4180 CSV text into rows of strings. */
function parseCsv(text) {
  const rows = []
  let row = []
  let field = ''
  let quoted = false
  let i = 0
  while (i < text.length) {
    const c = text[i]
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"'
          i += 2
          continue
        }
        quoted = false
      } else {
        field += c
      }
      i += 1
      continue
    }
    if (c === '"') {
      quoted = true
    } else if (c === ',') {
      row.push(field)
      field = ''
    } else if (c === '\n' || c === '\r') {
      row.push(field)
      rows.push(row)
      row = []
      field = ''
      if (c === '\r' && text[i + 1] === '\n') i += 1
    } else {
      field += c
    }
    i += 1
  }
  if (field !== '' || row.length > 0) {
    row.push(field)
    rows.push(row)
  }
  return rows
}

function recordFromCsvRow(header, row) {
  const record = {}
  header.forEach((column, index) => {
    const value = row[index]
    if (value === undefined || value === '') return
    const { field = column, numeric = false } = CSV_COLUMNS.get(column) ?? {}
    if (numeric && /^-?\d+(\.\d+)?$/.test(value)) record[field] = Number(value)
    else if (field === 'coldStart') record[field] = value === 'true'
    else record[field] = value
  })
  return record
}

/** A parsed JSON value as a record: a record itself, or a captured CSM line with a `datagram`. */
function recordFromJson(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null
  if (typeof value.Type === 'string') return value
  if (typeof value.datagram === 'string') {
    try {
      return recordFromJson(JSON.parse(value.datagram))
    } catch {
      return null
    }
  }
  return null
}

/**
 * Parses one recording's content: JSON Lines (also a JSON array) or CSV with a header row, gzip
 * compressed or not (detected by the magic bytes, as in Firehose's S3 objects).
 * @returns {{ records: object[], skipped: number, format: string }}
 */
function parseRecording(buffer) {
  let gzip = false
  if (buffer.length >= 2 && buffer[0] === 0x1f && buffer[1] === 0x8b) {
    buffer = zlib.gunzipSync(buffer)
    gzip = true
  }
  const text = buffer.toString('utf8').replace(/^\uFEFF/, '')
  const first = text.trimStart()[0]
  const records = []
  let skipped = 0
  let format
  if (first === '[') {
    format = 'json'
    const values = JSON.parse(text)
    for (const value of Array.isArray(values) ? values : []) {
      const record = recordFromJson(value)
      if (record) records.push(record)
      else skipped += 1
    }
  } else if (first === '{') {
    format = 'jsonl'
    // Firehose concatenates records; ours end in a newline, so lines are records.
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue
      let record = null
      try {
        record = recordFromJson(JSON.parse(line))
      } catch {
        // counted below
      }
      if (record) records.push(record)
      else skipped += 1
    }
  } else if (first === undefined) {
    format = 'empty'
  } else {
    format = 'csv'
    const rows = parseCsv(text)
    const header = rows.shift() ?? []
    if (!header.includes('Type')) {
      throw new Error('neither JSON Lines nor CSV with a "Type" column')
    }
    for (const row of rows) {
      if (row.length === 1 && row[0] === '') continue
      if (row.length !== header.length) {
        skipped += 1
        continue
      }
      // A header row repeated by appending to a CSV file is not a record.
      if (row[header.indexOf('Type')] === 'Type') continue
      records.push(recordFromCsvRow(header, row))
    }
  }
  return { records, skipped, format: gzip ? `${format}+gzip` : format }
}

/**
 * Reads recordings one by one; `-` is standard input. Problems with a file are thrown with its name.
 * @returns {{ file: string, format: string, records: object[], skipped: number }[]}
 */
function readRecordingFiles(files, warn) {
  return files.map((file) => {
    let parsed
    try {
      const buffer = file === '-' ? fs.readFileSync(0) : fs.readFileSync(file)
      parsed = parseRecording(buffer)
    } catch (error) {
      const wrapped = new Error(`${file}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`)
      wrapped.code = 'ERR_RECORDING'
      throw wrapped
    }
    if (parsed.skipped > 0) warn(`${file}: skipped ${parsed.skipped} lines that are not recorded events`)
    return { file, ...parsed }
  })
}

/** Reads recordings into one list of records (see readRecordingFiles). */
function readRecordings(files, warn) {
  const records = []
  for (const parsed of readRecordingFiles(files, warn)) {
    for (const record of parsed.records) records.push(record)
  }
  return records
}

module.exports = {
  isErrorCall,
  isFailedAttempt,
  isErrorRecord,
  parseCsv,
  readRecordings,
  readRecordingFiles,
}
