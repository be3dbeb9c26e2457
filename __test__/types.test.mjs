// The published types (index.d.ts, binding.d.ts, sdk-v3/index.d.ts) compile under strict TypeScript,
// accept what the README documents and refuse what the recorder would refuse. They are checked as a
// user's project sees them: the package installed under its name in node_modules.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const tsc = path.join(path.dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc')

test('the type declarations compile strictly and describe the API as documented', { timeout: 120_000 }, async () => {
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'recorder-types-'))
  try {
    fs.mkdirSync(path.join(project, 'node_modules'))
    fs.symlinkSync(root, path.join(project, 'node_modules', 'aws-api-call-recorder'), 'dir')
    // An ES module and a CommonJS module, as `type`-less projects name them.
    const sources = ['usage.mts', 'usage.cts']
    for (const source of sources) fs.copyFileSync(path.join(root, '__test__', 'fixtures', 'types', source), path.join(project, source))
    const args = [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext',
      '--target', 'es2022', '--types', '', ...sources]
    const { stdout, stderr } = await promisify(execFile)(process.execPath, args, { cwd: project, timeout: 110_000 })
      .catch((error) => assert.fail(`tsc reported errors:\n${error.stdout}${error.stderr}`))
    assert.equal(`${stdout}${stderr}`.trim(), '')
  } finally {
    fs.rmSync(project, { recursive: true, force: true })
  }
})
