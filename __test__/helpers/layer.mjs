// The layer as `npm run layer` builds it, extracted with its file modes (as Lambda extracts layers
// under /opt), for the tests and benchmarks that run functions through its exec wrapper.
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const REPO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

/** Builds and extracts the layer into `dir`; returns its /opt stand-in and the exec wrapper's path. */
export function extractedLayer(dir) {
  const zip = path.join(dir, 'layer.zip')
  execFileSync(process.execPath, [path.join(REPO_DIR, 'scripts', 'layer.mjs'), zip], { cwd: REPO_DIR, stdio: 'ignore' })
  const opt = path.join(dir, 'opt')
  execFileSync('python3', ['-c', `
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        target = z.extract(info, sys.argv[2])
        mode = (info.external_attr >> 16) & 0o777
        if mode and not info.is_dir():
            os.chmod(target, mode)
`, zip, opt])
  return { opt, wrapper: path.join(opt, 'aws-api-call-recorder'), nodePath: path.join(opt, 'nodejs', 'node_modules') }
}
