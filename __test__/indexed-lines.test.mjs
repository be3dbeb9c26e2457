// The format of the generated tables: written by scripts/indexed_lines.py, read by
// data/indexed-lines.js, one entry at a time at the offset the index module gives.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { openIndexedLines } = require('../data/indexed-lines.js')

let dir

/** Writes a table with the generators' writer; returns its index module's path. */
function writeTable(file, header, entries, lookupMaps = []) {
  const script = [
    'import json, sys',
    `sys.path.insert(0, ${JSON.stringify(path.join(ROOT, 'scripts'))})`,
    'from indexed_lines import write_indexed_lines',
    'header, entries, lookup = json.loads(sys.argv[2])',
    'write_indexed_lines(sys.argv[1], header, entries, lookup)',
  ].join('\n')
  execFileSync('python3', ['-c', script, file, JSON.stringify([header, entries, lookupMaps])], { stdio: 'pipe' })
  return file.replace(/\.jsonl$/, '.index.js')
}

/** A table opened as the package opens its own: with its index module. */
const open = (file, indexModule) => openIndexedLines(file, require(indexModule))

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-lines-'))
})

after(() => fs.rmSync(dir, { recursive: true, force: true }))

test('entries are read at their offsets, header and entries as written, a header longer than one read too', () => {
  const file = path.join(dir, 'table.jsonl')
  // Over 32 KiB of header: read in more than one piece.
  const header = { description: 'test table', filler: 'x'.repeat(40 * 1024), names: ['für', '✓'], aliases: { 'ü ✓': 'z' } }
  const entries = {
    a: { value: 1 },
    'Secrets Manager': { text: 'naïve ✓ \ud83d\ude00', list: [1, 2, 3] },
    z: { nested: { deep: true } },
    // A key that ends another one and one that begins another: each found as itself.
    'a z': { value: 2 },
    'Manager': { value: 3 },
  }
  const table = open(file, writeTable(file, header, entries, ['aliases']))
  // The lookup maps come with the index; the header line holds the rest.
  assert.equal(table.lookup('aliases', 'ü ✓'), 'z')
  for (const missing of ['ü', '✓', 'z', '', undefined]) assert.equal(table.lookup('aliases', missing), undefined, String(missing))
  assert.equal(table.lookup('names', 'für'), undefined, 'a header field that did not come with the index')
  assert.equal(JSON.parse(fs.readFileSync(file, 'utf8').split('\n')[0]).aliases, undefined)
  assert.deepEqual(table.header, header)
  assert.deepEqual(table.keys(), ['a', 'Secrets Manager', 'z', 'a z', 'Manager'])
  for (const [key, value] of Object.entries(entries)) assert.deepEqual(table.entry(key), { key, ...value })
  for (const missing of ['missing', '', 'Secrets', 'anager', 'a:0', 'a|', '|a', undefined]) {
    assert.equal(table.has(missing), false, String(missing))
    assert.equal(table.entry(missing), undefined, String(missing))
  }
  // Looked up once, kept: the same object the second time.
  assert.equal(table.entry('z'), table.entry('z'))
})

test('an index that does not match its lines is an error, not another entry', () => {
  const file = path.join(dir, 'shifted.jsonl')
  const lookup = require(writeTable(file, { description: 'shifted' }, { a: { value: 'first' }, b: { value: 'second' } }))
  // b's offset pointing at a's line.
  const table = openIndexedLines(file, { ...lookup, index: lookup.index.replace(/\|b:\d+/, '|b:0') })
  assert.deepEqual(table.entry('a'), { key: 'a', value: 'first' })
  assert.throws(() => table.entry('b'), /the line at the offset of "b" is not its entry/)
  // An index module of another table: its header line ends elsewhere.
  assert.throws(() => openIndexedLines(file, { ...lookup, bodyStart: lookup.bodyStart + 1 }).header, /its index module is not this table's/)
})

test('a missing table is an error when it is opened, a header line without its end when it is read', () => {
  const file = path.join(dir, 'truncated.jsonl')
  const lookup = require(writeTable(file, { description: 'truncated' }, { a: { value: 1 } }))
  assert.throws(() => openIndexedLines(path.join(dir, 'absent.jsonl'), lookup), /ENOENT/)
  assert.throws(() => openIndexedLines(file, {}), /has no index/)
  fs.writeFileSync(file, '{"description":"truncated"')
  assert.throws(() => openIndexedLines(file, lookup).header, /the header line has no end/)
})

test('a key or a map value holding a separator of the index is refused by the writer', () => {
  assert.throws(() => writeTable(path.join(dir, 'bar.jsonl'), {}, { 'a|b': {} }), /holds no '\|' or ':'/)
  assert.throws(() => writeTable(path.join(dir, 'colon.jsonl'), { aliases: { a: 'b:c' } }, { a: {} }, ['aliases']), /holds no '\|' or ':'/)
})
