// The format of the generated tables: written by scripts/indexed_lines.py, read by
// data/indexed-lines.js, one entry at a time at the offset the header gives.
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

/** Writes a table with the generators' writer. */
function writeTable(file, header, entries) {
  const script = [
    'import json, sys',
    `sys.path.insert(0, ${JSON.stringify(path.join(ROOT, 'scripts'))})`,
    'from indexed_lines import write_indexed_lines',
    'header, entries = json.loads(sys.argv[2])',
    'write_indexed_lines(sys.argv[1], header, entries)',
  ].join('\n')
  execFileSync('python3', ['-c', script, file, JSON.stringify([header, entries])])
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-lines-'))
})

after(() => fs.rmSync(dir, { recursive: true, force: true }))

test('entries are read at their offsets, header and entries as written, a header longer than one read too', () => {
  const file = path.join(dir, 'table.jsonl')
  // Over 32 KiB of header: read in more than one piece.
  const header = { description: 'test table', filler: 'x'.repeat(40 * 1024), names: ['für', '✓'] }
  const entries = {
    a: { value: 1 },
    'Secrets Manager': { text: 'naïve ✓ \ud83d\ude00', list: [1, 2, 3] },
    z: { nested: { deep: true } },
  }
  writeTable(file, header, entries)
  const table = openIndexedLines(file)
  assert.deepEqual(table.header, header)
  assert.deepEqual(table.keys(), ['a', 'Secrets Manager', 'z'])
  for (const [key, value] of Object.entries(entries)) assert.deepEqual(table.entry(key), { key, ...value })
  assert.equal(table.has('missing'), false)
  assert.equal(table.entry('missing'), undefined)
  // Looked up once, kept: the same object the second time.
  assert.equal(table.entry('z'), table.entry('z'))
})

test('an index that does not match its lines is an error, not another entry', () => {
  const file = path.join(dir, 'shifted.jsonl')
  writeTable(file, { description: 'shifted' }, { a: { value: 'first' }, b: { value: 'second' } })
  const text = fs.readFileSync(file, 'utf8')
  const newline = text.indexOf('\n')
  const header = JSON.parse(text.slice(0, newline))
  // b's offset pointing at a's line.
  header.index[1][1] = header.index[0][1]
  fs.writeFileSync(file, JSON.stringify(header) + text.slice(newline))
  const table = openIndexedLines(file)
  assert.deepEqual(table.entry('a'), { key: 'a', value: 'first' })
  assert.throws(() => table.entry('b'), /the line at the offset of "b" is not its entry/)
})

test('a file without a complete header line is an error', () => {
  const file = path.join(dir, 'truncated.jsonl')
  fs.writeFileSync(file, '{"index":[["a",0,10]]')
  assert.throws(() => openIndexedLines(file), /the header line has no end/)
})
