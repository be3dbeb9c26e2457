// Reading and checking what the recorder wrote.
import fs from 'node:fs'
import assert from 'node:assert/strict'
import { FAKE_CREDENTIALS } from './moto.mjs'

export function readJsonl(file) {
  if (!fs.existsSync(file)) return []
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line))
}

/** The ApiCall record of `service.api`, asserting there is exactly one. */
export function onlyCall(records, service, api, where = () => true) {
  const calls = records.filter((r) => r.Type === 'ApiCall' && r.Service === service && r.Api === api && where(r))
  assert.equal(calls.length, 1, `one ApiCall ${service}.${api}, got ${calls.length}: ${JSON.stringify(calls)}`)
  return calls[0]
}

/** Fails if any secret from the fake credentials appears in `text`. */
export function assertNoSecrets(text, where) {
  for (const secret of [FAKE_CREDENTIALS.AWS_SESSION_TOKEN, FAKE_CREDENTIALS.AWS_SECRET_ACCESS_KEY, 'SessionToken']) {
    assert.ok(!text.includes(secret), `${where} contains ${secret}`)
  }
}
