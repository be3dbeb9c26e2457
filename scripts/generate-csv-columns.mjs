// Writes data/csv-columns.json: the CSV columns as the native writer (src/format/csv.rs) declares them,
// for the commands that read CSV recordings without loading the addon (`summary`, `policy`). Run it
// after changing the columns, with the addon built (`npm run build`), and commit the result:
//
//     node scripts/generate-csv-columns.mjs [OUTPUT]
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const output = path.resolve(process.argv[2] ?? path.join(root, 'data', 'csv-columns.json'))
const { csvColumns } = createRequire(import.meta.url)('../binding.js')

const columns = csvColumns().map(({ name, field, numeric }) => JSON.stringify({ name, field, numeric }))
const description = 'The CSV columns of the file sink and the command line, in order: header, record field, and ' +
  'whether the field holds numbers. Written from the native writer (src/format/csv.rs) by ' +
  'scripts/generate-csv-columns.mjs; do not edit by hand.'
fs.writeFileSync(output, `{\n"description": ${JSON.stringify(description)},\n"columns": [\n${columns.join(',\n')}\n]\n}\n`)
console.log(`${columns.length} columns -> ${output}`)
