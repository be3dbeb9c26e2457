// One home per fact: the README's option table and error list against the declarations they
// describe (binding.d.ts, generated from the Rust declaration; index.d.ts and options.js for the
// JavaScript side), the native error codes and the shared limits.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const read = (file) => fs.readFileSync(path.join(root, file), 'utf8')
const limits = require('../data/limits.json')

/** Default text as written in either place: quotes, backticks and spacing do not count. */
const normalize = (text) => text.replace(/[`']/g, '').replace(/\s+/g, ' ').trim().toLowerCase()

/** `{ name: { env, default } }` for the members of `interface NAME` in a .d.ts file, from their JSDoc. */
function interfaceOptions(source, name) {
  const body = new RegExp(`export interface ${name}\\b[^{]*\\{([\\s\\S]*?)\\n\\}`).exec(source)
  assert.ok(body, `interface ${name} not found`)
  const options = {}
  for (const [, doc, member] of body[1].matchAll(/\/\*\*([\s\S]*?)\*\/\s*\n\s*(\w+)\?:/g)) {
    const text = doc.replace(/\s*\n\s*\*\s*/g, ' ')
    const env = /Env:? `([A-Z_]+)`/.exec(text)
    const fallback = /@default (.*?)\s*$/.exec(text)
    options[member] = { env: env ? env[1] : null, default: fallback ? fallback[1] : null }
  }
  return options
}

/** `{ option: { env, default } }` from the README's table under "Options and environment variables". */
function readmeTable() {
  const section = read('README.md').split('### Options and environment variables')[1].split('\n### ')[0]
  const rows = {}
  for (const [, option, env, fallback] of section.matchAll(/^\| `(\w+)` \| (?:`([A-Z_]+)`|—) \| (.*?) \|/gm)) {
    rows[option] = { env: env ?? null, default: fallback === '—' ? null : fallback }
  }
  return rows
}

const native = interfaceOptions(read('binding.d.ts'), 'RecorderOptions')
const jsSide = interfaceOptions(read('index.d.ts'), 'RecorderOptions')

test('the README option table lists exactly the declared options, with their variables and defaults', () => {
  assert.ok(Object.keys(native).length >= 12, `binding.d.ts declares ${Object.keys(native)}`)
  const declared = { ...native, ...jsSide }
  const table = readmeTable()
  assert.deepEqual(Object.keys(table).sort(), Object.keys(declared).sort())
  for (const [option, { env, default: fallback }] of Object.entries(declared)) {
    assert.equal(table[option].env, env, `${option}: the declaration names ${env}`)
    assert.equal(normalize(table[option].default ?? '—'), normalize(fallback ?? '—'), `${option}: default`)
  }
})

test('index.d.ts declares no native option again, and exactly the options of options.js', () => {
  const { OPTIONS } = require('../options.js')
  assert.deepEqual(Object.keys(jsSide).filter((option) => option in native), [])
  assert.deepEqual(Object.keys(jsSide).sort(), Object.keys(OPTIONS).sort())
  for (const [option, spec] of Object.entries(OPTIONS)) {
    assert.equal(jsSide[option].env, spec.env ?? null, `${option}: variable`)
    const text = spec.defaultText ?? String(spec.default)
    assert.equal(normalize(jsSide[option].default), normalize(text), `${option}: default`)
  }
})

test('the defaults that data/limits.json holds are the ones declared and documented', () => {
  assert.equal(normalize(native.host.default), limits.defaultCsmHost)
  assert.equal(Number(native.port.default), limits.defaultCsmPort)
  assert.equal(Number(native.drainMs.default), limits.defaultDrainMs)
  const margin = `${limits.deadlineMarginMs} ms before`
  assert.match(read('README.md'), new RegExp(`in Lambda also ${margin} the deadline`))
  assert.match(read('binding.d.ts'), new RegExp(`also ends ${margin} the`))
})

test('the error codes listed in the README and index.d.ts are exactly the ones thrown', () => {
  const { errorCodes } = require('../recorder.js')
  const codes = errorCodes().sort()
  assert.ok(codes.includes('ERR_RECORDER_EXTENSION') && codes.includes('ERR_RECORDER_NATIVE_LOAD'), codes.join())
  const listed = (text) => [...new Set(text.match(/ERR_RECORDER_[A-Z_]+/g))].sort()
  const readme = read('README.md').split('### Options and environment variables')[1].split('\n### ')[0]
  assert.deepEqual(listed(readme), codes)
  const recorderDoc = /\/\*\*((?:(?!\*\/)[\s\S])*?)\*\/\s*export declare class Recorder/.exec(read('index.d.ts'))
  assert.ok(recorderDoc, 'the Recorder class has its doc comment')
  assert.deepEqual(listed(recorderDoc[1]), codes)
})
