// Proves no secret reaches any output: records, files, stdout/stderr, log lines, warnings, stats,
// flush reports and error messages. The secrets are the fake credentials the tests run with.
import fs from 'node:fs'
import assert from 'node:assert/strict'
import { FAKE_CREDENTIALS } from './moto.mjs'

/** Values that must never appear anywhere, verbatim. */
export const SECRET_VALUES = [
  FAKE_CREDENTIALS.AWS_SESSION_TOKEN,
  FAKE_CREDENTIALS.AWS_SECRET_ACCESS_KEY,
]

/** Shapes of credentials in transit: a SigV4 Authorization header, a signature, a token header. */
const SECRET_PATTERNS = [
  ['an Authorization header', /AWS4-HMAC-SHA256\s+Credential=/],
  ['an Authorization header', /\bauthorization\s*[:=]\s*"?\s*AWS4/i],
  ['a request signature', /Signature=[0-9a-f]{64}/],
  ['a security token header', /x-amz-security-token/i],
]

/** Where the session token's own URL-encoded and JSON-escaped forms could hide. */
function variants(secret) {
  return [...new Set([secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)])]
}

function asText(value) {
  if (value === undefined || value === null) return ''
  if (typeof value === 'string') return value
  if (Buffer.isBuffer(value)) return value.toString('latin1')
  if (value instanceof Error) return `${value.name}: ${value.message} ${value.code ?? ''} ${value.stack ?? ''}`
  try {
    return JSON.stringify(value)
  } catch {
    return String(value)
  }
}

/**
 * What leaks in `value` (a string, Buffer, Error or anything JSON-serializable): a list of
 * descriptions, empty when clean. `textKeys`: also flag the word `SessionToken` (right for log
 * lines, warnings, stats and errors; records are checked by key instead, see `recordLeaks`).
 */
export function findLeaks(value, { textKeys = true } = {}) {
  const text = asText(value)
  const found = []
  for (const secret of SECRET_VALUES) {
    for (const form of variants(secret)) {
      if (text.includes(form)) found.push(`the secret ${JSON.stringify(secret.slice(0, 12))}…`)
    }
  }
  for (const [what, pattern] of SECRET_PATTERNS) {
    if (pattern.test(text)) found.push(what)
  }
  if (textKeys && text.includes('SessionToken')) found.push('the word SessionToken')
  return [...new Set(found)]
}

/** Fails if `value` leaks anything; `where` names it in the message. */
export function assertNoLeaks(value, where, options) {
  const found = findLeaks(value, options)
  assert.deepEqual(found, [], `${where} leaks ${found.join(', ')}`)
}

/** Records: no top-level SessionToken key, and no secret value anywhere in them. */
export function recordLeaks(records) {
  const found = []
  for (const [i, record] of records.entries()) {
    if (record && Object.hasOwn(record, 'SessionToken')) found.push(`record ${i} has a SessionToken field`)
  }
  found.push(...findLeaks(records, { textKeys: false }))
  return found
}

export function assertNoRecordLeaks(records, where) {
  const found = recordLeaks(records)
  assert.deepEqual(found, [], `${where}: ${found.join(', ')}`)
}

/** Checks every file that exists among `paths` (raw bytes). */
export function assertNoLeaksInFiles(paths, options) {
  for (const file of paths) {
    if (fs.existsSync(file)) assertNoLeaks(fs.readFileSync(file), file, options)
  }
}

/**
 * Collects everything a test produced and checks it in one place at the end:
 *   const leaks = leakScanner(); leaks.add('warnings', logger.warnings); ... leaks.assertClean()
 * Records go through `addRecords` (checked by key, so a nested unknown field named SessionToken
 * does not count); everything else through `add`.
 */
export function leakScanner() {
  const items = []
  return {
    add(where, value) { items.push({ where, value, options: undefined }) },
    addRecords(where, records) { items.push({ where, records }) },
    addFile(file) { if (fs.existsSync(file)) items.push({ where: file, value: fs.readFileSync(file), options: { textKeys: false } }) },
    findings() {
      const found = []
      for (const item of items) {
        const list = item.records ? recordLeaks(item.records) : findLeaks(item.value, item.options)
        for (const what of list) found.push(`${item.where}: ${what}`)
      }
      return found
    },
    assertClean() {
      const found = this.findings()
      assert.deepEqual(found, [], `secrets leaked:\n${found.join('\n')}`)
    },
  }
}
