// How a Recorder finds the addon: the file built for this platform next to the package is loaded
// directly (the generated loader costs a cold start about 1 ms); napi-rs overrides, and a platform
// with no file beside the package, still go through the generated loader (binding.js).
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const ADDON = path.join(ROOT, `api-call-recorder.${process.platform}-${process.arch}${process.platform === 'linux' ? '-gnu' : ''}.node`)

// Preloaded: prints, at exit, whether binding.js was loaded and which addon files were opened
// (process.dlopen, which `require` of a .node file also goes through).
const WATCH = `
const Module = require('node:module')
const seen = { bindingJs: false, addons: [] }
const load = Module._load
Module._load = function (request, parent) {
  const file = Module._resolveFilename(request, parent)
  if (file.endsWith('binding.js')) seen.bindingJs = true
  return load.apply(this, arguments)
}
const dlopen = process.dlopen
process.dlopen = function (module, file) {
  seen.addons.push(file)
  return dlopen.apply(this, arguments)
}
process.on('exit', () => process.stdout.write('\\n' + JSON.stringify(seen) + '\\n'))
`
const START = `
const { Recorder } = require(${JSON.stringify(path.join(ROOT, 'index.js'))})
const recorder = new Recorder({ port: 0, sink: 'none' })
console.log(recorder.start())
recorder.stop()
`

let dir
let hook

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-addon-load-'))
  hook = path.join(dir, 'watch.cjs')
  fs.writeFileSync(hook, WATCH)
})
after(() => fs.rmSync(dir, { recursive: true, force: true }))

function start(env = {}, script = START) {
  const outcome = spawnSync(process.execPath, ['--require', hook, '-e', script], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, ...env },
  })
  assert.equal(outcome.status, 0, outcome.stderr)
  const lines = outcome.stdout.trim().split('\n')
  return { address: lines[0], seen: JSON.parse(lines.at(-1)) }
}

test('the addon next to the package is loaded without the generated loader', { skip: !fs.existsSync(ADDON) }, () => {
  const { address, seen } = start()
  assert.match(address, /^127\.0\.0\.1:\d+$/)
  assert.equal(seen.bindingJs, false)
  assert.deepEqual(seen.addons, [ADDON])
})

// The bundled entry and the files it is made from, in one process (a function that requires both,
// or the layer's copy and a subpath of the same package): each starts a recorder of its own.
const BOTH_COPIES = `
const bundled = require(${JSON.stringify(path.join(ROOT, 'index.bundle.js'))})
const sources = require(${JSON.stringify(path.join(ROOT, 'index.js'))})
const recorders = [new bundled.Recorder({ port: 0, sink: 'none' }), new sources.Recorder({ port: 0, sink: 'none' })]
console.log(recorders.map((recorder) => recorder.start()).join(' '))
for (const recorder of recorders) recorder.stop()
`

test('copies of the package in one process open the addon once and share it', { skip: !fs.existsSync(ADDON) }, () => {
  const { address, seen } = start({}, BOTH_COPIES)
  assert.match(address, /^127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+$/)
  assert.equal(seen.bindingJs, false)
  assert.deepEqual(seen.addons, [ADDON])
})

test('a napi-rs override of the addon goes through the generated loader, which honours it', { skip: !fs.existsSync(ADDON) }, () => {
  const copy = path.join(dir, 'override.node')
  fs.copyFileSync(ADDON, copy)
  const { address, seen } = start({ NAPI_RS_NATIVE_LIBRARY_PATH: copy })
  assert.match(address, /^127\.0\.0\.1:\d+$/)
  assert.equal(seen.bindingJs, true)
  assert.deepEqual(seen.addons, [copy])
})
