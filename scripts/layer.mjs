// Builds a Lambda layer zip: nodejs/node_modules/aws-api-call-recorder/ with only what the function
// needs at run time (the JS modules, the generated loader and the linux-x64 native addon), and at
// its root the exec wrapper `aws-api-call-recorder` (mode 0755: Lambda keeps a layer's file modes).
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const output = path.resolve(process.argv[2] ?? path.join(root, 'dist', 'aws-api-call-recorder-layer.zip'))
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
const addon = 'api-call-recorder.linux-x64-gnu.node'
/** The exec wrapper's name at the layer's root: AWS_LAMBDA_EXEC_WRAPPER=/opt/aws-api-call-recorder. */
const EXEC_WRAPPER = 'aws-api-call-recorder'

if (!fs.existsSync(path.join(root, addon))) {
  console.error(`${addon} is missing: run "npm run build" first`)
  process.exit(1)
}

// The package's own file list, as npm would publish it, less what only development or the
// command line uses.
const packed = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' }))
const runtimeFiles = packed[0].files
  .map((f) => f.path)
  .filter((f) => !f.startsWith('scripts/') && !f.endsWith('.d.ts') && !f.endsWith('.md') && !/^cli(\.js$|\/)/.test(f))
  .filter((f) => f !== 'package.json')

fs.mkdirSync(path.dirname(output), { recursive: true })
const staging = fs.mkdtempSync(path.join(path.dirname(output), '.layer-'))
try {
  const target = path.join(staging, 'nodejs', 'node_modules', pkg.name)
  for (const file of runtimeFiles) {
    fs.mkdirSync(path.dirname(path.join(target, file)), { recursive: true })
    fs.copyFileSync(path.join(root, file), path.join(target, file))
  }
  const { scripts, devDependencies, napi, files, ...runtimePackage } = pkg
  fs.writeFileSync(path.join(target, 'package.json'), `${JSON.stringify(runtimePackage, null, 2)}\n`)
  const wrapper = path.join(staging, EXEC_WRAPPER)
  fs.copyFileSync(path.join(root, 'layer', 'exec-wrapper.sh'), wrapper)
  fs.chmodSync(wrapper, 0o755)
  fs.rmSync(output, { force: true })
  // Python's zipfile keeps each file's mode in the archive.
  execFileSync('python3', ['-m', 'zipfile', '-c', output, 'nodejs', EXEC_WRAPPER], { cwd: staging })
} finally {
  fs.rmSync(staging, { recursive: true, force: true })
}
const size = fs.statSync(output).size
console.log(`${path.relative(process.cwd(), output) || output}: ${(size / 1024 / 1024).toFixed(1)} MiB, ${runtimeFiles.length + 2} files`)
