// The load generator csm-load (this folder's Rust binary), built on first use into target/csm-load.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const targetDir = path.join(here, '..', '..', 'target', 'csm-load')

export const LOAD_GENERATOR = path.join(targetDir, 'release', 'csm-load')

/** Builds csm-load (cheap when it is up to date) and returns its path. Throws if cargo fails. */
export function buildLoadGenerator() {
  execFileSync('cargo', ['build', '--release', '--quiet', '--manifest-path', path.join(here, 'Cargo.toml'),
    '--target-dir', targetDir], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 })
  if (!fs.existsSync(LOAD_GENERATOR)) throw new Error(`cargo built no ${LOAD_GENERATOR}`)
  return LOAD_GENERATOR
}
