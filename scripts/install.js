'use strict'
// npm install hook: use the prebuilt native addon when one loads on this machine; otherwise (a
// source checkout) build it with cargo through the napi CLI. A source checkout also gets the bundled
// entry (index.bundle.js) that the published package carries.

const { spawnSync } = require('node:child_process')
const path = require('node:path')

const root = path.join(__dirname, '..')

function prebuiltLoads() {
  const probe = spawnSync(process.execPath, ['-e', "require('./binding.js')"], { cwd: root, stdio: 'ignore' })
  return probe.status === 0
}

const fs = require('node:fs')

function bundleEntry() {
  if (fs.existsSync(path.join(root, 'index.bundle.js')) || !fs.existsSync(path.join(root, 'scripts', 'bundle.mjs'))) return 0
  return spawnSync(process.execPath, [path.join(root, 'scripts', 'bundle.mjs')], { cwd: root, stdio: 'inherit' }).status ?? 1
}

if (bundleEntry() !== 0) process.exit(1)
if (process.env.API_CALL_RECORDER_SKIP_BUILD === '1' || prebuiltLoads()) process.exit(0)

const napiCli = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
if (!fs.existsSync(napiCli)) {
  console.error(
    '[aws-api-call-recorder] no prebuilt native addon for ' +
      `${process.platform}-${process.arch}, and @napi-rs/cli is not installed to build one. ` +
      'Install from a source checkout with a Rust toolchain, or use a supported platform.',
  )
  process.exit(1)
}
const build = spawnSync(
  process.execPath,
  [napiCli, 'build', '--platform', '--release', '--js', 'binding.js', '--dts', 'binding.d.ts'],
  { cwd: root, stdio: 'inherit' },
)
process.exit(build.status ?? 1)
