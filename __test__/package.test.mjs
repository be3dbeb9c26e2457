// What users install: the npm tarball and the Lambda layer load the prebuilt addon with no Rust
// toolchain, and the addon runs on the Lambda Node.js runtimes' glibc (Amazon Linux 2023: 2.34).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const addon = path.join(root, 'api-call-recorder.linux-x64-gnu.node')
const LAMBDA_GLIBC = [2, 34]
let dir

before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-pkg-')) })
after(() => fs.rmSync(dir, { recursive: true, force: true }))

/** An environment with no Rust toolchain on PATH. */
function withoutCargo() {
  const PATH = process.env.PATH.split(':').filter((p) => !p.includes('.cargo') && !fs.existsSync(path.join(p, 'cargo'))).join(':')
  return { ...process.env, PATH, CARGO: '/nonexistent/cargo', RUSTUP_HOME: '/nonexistent' }
}

/** A script that loads the package from `cwd` and records one call sent to it over UDP. */
const RECORD_ONE_CALL = `
const dgram = require('node:dgram')
const { Recorder } = require('aws-api-call-recorder')
const recorder = new Recorder({ port: 0, sink: 'none' })
const port = Number(recorder.start().split(':')[1])
const socket = dgram.createSocket('udp4')
socket.send('{"Type":"ApiCall","Service":"STS","Api":"GetCallerIdentity","FinalHttpStatusCode":200}', port, '127.0.0.1', async () => {
  socket.close()
  await recorder.flush({ drainMs: 20 })
  const [record] = recorder.records()
  console.log(JSON.stringify({ api: record.Api, where: require.resolve('aws-api-call-recorder') }))
  await recorder.stop()
})`

test('the addon needs no glibc symbol newer than 2.34', () => {
  const symbols = execFileSync('objdump', ['-T', addon], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  const versions = [...new Set(symbols.match(/GLIBC_\d+\.\d+(\.\d+)?/g))]
  assert.ok(versions.length > 0, 'objdump found glibc symbol versions')
  const newest = versions.map((v) => v.slice(6).split('.').map(Number)).sort((a, b) => b[0] - a[0] || b[1] - a[1])[0]
  assert.ok(newest[0] < LAMBDA_GLIBC[0] || (newest[0] === LAMBDA_GLIBC[0] && newest[1] <= LAMBDA_GLIBC[1]),
    `needs GLIBC_${newest.join('.')}, Lambda has ${LAMBDA_GLIBC.join('.')}`)
})

test('npm pack ships the prebuilt addon; the tarball installs and records with no Rust toolchain', () => {
  const [{ filename, files }] = JSON.parse(execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], {
    cwd: root, encoding: 'utf8',
  }))
  const paths = files.map((f) => f.path)
  for (const required of ['api-call-recorder.linux-x64-gnu.node', 'index.bundle.js', 'package-root.js', 'index.js', 'index.mjs', 'index.d.ts', 'binding.js', 'binding.d.ts', 'package.json']) {
    assert.ok(paths.includes(required), `tarball has ${required}`)
  }
  assert.deepEqual(paths.filter((p) => /(^src\/|^tests\/|^__test__\/|\.rs$|Cargo\.)/.test(p)), [], 'no Rust sources or tests')

  const app = path.join(dir, 'app')
  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, 'package.json'), '{"name":"app","private":true}')
  const env = withoutCargo()
  // The package's dependencies are packed from this checkout's node_modules and installed beside it,
  // so that an offline install needs no registry metadata the npm cache may not hold.
  const dependencies = Object.keys(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).dependencies ?? {})
  const dependencyTarballs = dependencies.map((name) => {
    const packed = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir, path.join(root, 'node_modules', name)], {
      cwd: dir, encoding: 'utf8',
    })
    return path.join(dir, JSON.parse(packed)[0].filename)
  })
  execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', path.join(dir, filename), ...dependencyTarballs], { cwd: app, env, stdio: 'pipe' })
  const out = JSON.parse(execFileSync(process.execPath, ['-e', RECORD_ONE_CALL], { cwd: app, env, encoding: 'utf8', timeout: 20_000 }))
  assert.equal(out.api, 'GetCallerIdentity')
  assert.ok(out.where.startsWith(path.join(app, 'node_modules')), out.where)

  // The installed command writes a report: its page assets are in the package, uPlot is a dependency.
  const recording = path.join(dir, 'one-call.jsonl')
  fs.writeFileSync(recording, `${JSON.stringify({ Type: 'ApiCall', Service: 'STS', Api: 'GetCallerIdentity', Timestamp: 1, Latency: 5, AttemptCount: 1, FinalHttpStatusCode: 200 })}\n`)
  const html = path.join(dir, 'one-call.html')
  execFileSync(path.join(app, 'node_modules', '.bin', 'api-call-recorder'), ['report', '-o', html, recording], { cwd: app, env, stdio: 'pipe' })
  const page = fs.readFileSync(html, 'utf8')
  assert.match(page, /uPlot/)
  assert.match(page, /"sv":"STS","op":"GetCallerIdentity"/)
})

const ENTRY_SHAPE = `
const main = require('aws-api-call-recorder')
const sdkV3 = require('aws-api-call-recorder/sdk-v3')
const source = require('./index.js')
console.log(JSON.stringify({
  entry: require.resolve('aws-api-call-recorder'),
  exports: Object.keys(main).sort(),
  sourceExports: Object.keys(source).sort(),
  handlerName: main(async () => 1, { enabled: false }).name === source(async () => 1, { enabled: false }).name,
  names: Object.keys(main).map((key) => [key, main[key].name]),
  sourceNames: Object.keys(source).map((key) => [key, source[key].name]),
  wrappedName: main(async () => 1, { enabled: true, port: 0, sink: 'none', logger: { warn() {} } }).name,
  sameSdkV3: sdkV3.recorderPlugin === main.recorderPlugin && sdkV3.sdkV3Stats === main.sdkV3Stats,
  layerHooks: typeof main[Symbol.for('aws-api-call-recorder.layer')].startRecording,
}))
`

test('the entry is index.js bundled: the same exports, one copy shared with the sdk-v3 entry', async () => {
  const out = JSON.parse(execFileSync(process.execPath, ['-e', ENTRY_SHAPE], { cwd: root, encoding: 'utf8', timeout: 20_000 }))
  assert.equal(out.entry, path.join(root, 'index.bundle.js'))
  assert.deepEqual(out.exports, out.sourceExports)
  assert.equal(out.handlerName, true)
  // The bundle keeps the functions' and classes' own names (stack traces, a wrapped handler's name).
  assert.deepEqual(out.names, out.sourceNames)
  assert.ok(out.names.some(([key, name]) => key === 'Recorder' && name === 'Recorder'), JSON.stringify(out.names))
  assert.equal(out.wrappedName, 'apiCallRecorderHandler')
  assert.equal(out.sameSdkV3, true)
  assert.equal(out.layerHooks, 'function')
  const esm = await import(path.join(root, 'sdk-v3', 'index.mjs'))
  const main = await import(path.join(root, 'index.mjs'))
  assert.equal(esm.recorderPlugin, main.recorderPlugin)
})

test('the bundled entry is the sources as they are now (npm test rebuilds it; run npm run bundle after an edit)', () => {
  const fresh = path.join(dir, 'index.bundle.js')
  execFileSync(process.execPath, [path.join(root, 'scripts', 'bundle.mjs'), fresh], { cwd: root, stdio: 'pipe', timeout: 60_000 })
  assert.ok(fs.readFileSync(path.join(root, 'index.bundle.js'), 'utf8') === fs.readFileSync(fresh, 'utf8'),
    'index.bundle.js is older than the JavaScript it is made from: npm run bundle')
})

test('npm run layer builds a runtime-only layer that loads and records', () => {
  const zip = path.join(dir, 'layer.zip')
  execFileSync(process.execPath, [path.join(root, 'scripts', 'layer.mjs'), zip], { cwd: root, stdio: 'pipe' })
  const listing = execFileSync('python3', ['-m', 'zipfile', '-l', zip], { encoding: 'utf8' })
  const entries = listing.split('\n').slice(1).map((line) => line.split(/\s+\d{4}-\d\d-\d\d /)[0].trim()).filter(Boolean)
  const prefix = 'nodejs/node_modules/aws-api-call-recorder/'
  // The package, and at the root the exec wrapper that AWS_LAMBDA_EXEC_WRAPPER names.
  assert.ok(entries.every((e) => e === 'aws-api-call-recorder' || prefix.startsWith(e) || e.startsWith(prefix)), entries.join('\n'))
  assert.ok(entries.includes('aws-api-call-recorder'))
  assert.ok(entries.includes(`${prefix}api-call-recorder.linux-x64-gnu.node`))
  assert.ok(entries.includes(`${prefix}index.bundle.js`))
  assert.deepEqual(entries.filter((e) => /\.(rs|ts|md|toml)$|__test__|\/scripts\//.test(e)), [], 'runtime files only')
  // What the wrapper reads at run time: the IAM model, the operation table of bundled SDKs and its
  // reader (loaded from its file when first needed), the IAM action table, their indexes and reader.
  for (const file of ['iam/resources.js', 'iam/table.js', 'iam/input.js', 'sdk-v3/operations.js', 'data/indexed-lines.js',
    'data/aws-operations.jsonl', 'data/aws-operations.index.js', 'data/iam-actions.jsonl', 'data/iam-actions.index.js']) {
    assert.ok(entries.includes(`${prefix}${file}`), file)
  }
  const opt = path.join(dir, 'opt')
  execFileSync('python3', ['-m', 'zipfile', '-e', zip, opt])
  // Lambda puts /opt/nodejs/node_modules on NODE_PATH for layers.
  const env = { ...withoutCargo(), NODE_PATH: path.join(opt, 'nodejs', 'node_modules') }
  const out = JSON.parse(execFileSync(process.execPath, ['-e', RECORD_ONE_CALL], { cwd: dir, env, encoding: 'utf8', timeout: 20_000 }))
  assert.equal(out.api, 'GetCallerIdentity')
  assert.ok(out.where.startsWith(opt), out.where)
})
