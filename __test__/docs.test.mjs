// The README's option table against the generated types: every option the native recorder takes
// (binding.d.ts, generated from the Rust declaration) and every JavaScript-side option (index.d.ts)
// has one row, with the environment variable the declaration names.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const read = (file) => fs.readFileSync(path.join(root, file), 'utf8')

/** `{ name: env | null }` for the members of `interface NAME` in a .d.ts file, from their JSDoc. */
function interfaceOptions(source, name) {
  const body = new RegExp(`export interface ${name}\\b[^{]*\\{([\\s\\S]*?)\\n\\}`).exec(source)
  assert.ok(body, `interface ${name} not found`)
  const options = {}
  for (const [, doc, member] of body[1].matchAll(/\/\*\*([\s\S]*?)\*\/\s*\n\s*(\w+)\?:/g)) {
    const env = /Env:? `([A-Z_]+)`/.exec(doc.replace(/\s*\n\s*\*\s*/g, ' '))
    options[member] = env ? env[1] : null
  }
  return options
}

/** `{ option: env | null }` from the README's table under "Options and environment variables". */
function readmeTable() {
  const section = read('README.md').split('### Options and environment variables')[1].split('\n### ')[0]
  const rows = {}
  for (const [, option, env] of section.matchAll(/^\| `(\w+)` \| (?:`([A-Z_]+)`|—) \|/gm)) rows[option] = env ?? null
  return rows
}

test('the README option table lists exactly the declared options, with their environment variables', () => {
  const native = interfaceOptions(read('binding.d.ts'), 'RecorderOptions')
  const jsSide = interfaceOptions(read('index.d.ts'), 'RecorderOptions')
  assert.ok(Object.keys(native).length >= 12, `binding.d.ts declares ${Object.keys(native)}`)
  assert.deepEqual(Object.keys(jsSide).sort(), ['afterResponse', 'enabled', 'logger', 'resources', 'sdkV3', 'sdkV3Http'])
  const declared = { ...native, ...jsSide }
  const table = readmeTable()
  assert.deepEqual(Object.keys(table).sort(), Object.keys(declared).sort())
  for (const [option, env] of Object.entries(declared)) {
    if (env) assert.equal(table[option], env, `${option}: the declaration names ${env}`)
  }
})

test('index.d.ts declares no native option again', () => {
  const native = Object.keys(interfaceOptions(read('binding.d.ts'), 'RecorderOptions'))
  const jsSide = Object.keys(interfaceOptions(read('index.d.ts'), 'RecorderOptions'))
  assert.deepEqual(jsSide.filter((option) => native.includes(option)), [])
})
