'use strict'

// The IAM actions of AWS operations, from the generated table data/iam-actions.jsonl (see
// scripts/generate-iam-actions.py): its header and each service's line kept as text until it is
// looked up (parsing all of it would cost a cold start tens of milliseconds; one service takes well
// under one).

const fs = require('node:fs')
const path = require('node:path')

const TABLE_FILE = path.join(__dirname, '..', 'data', 'iam-actions.jsonl')

let table
let tableError

/** Reads the table; throws why it cannot be read, every time it is asked. */
function loadTable() {
  if (table === undefined && tableError === undefined) {
    try {
      const lines = fs.readFileSync(TABLE_FILE, 'utf8').split('\n')
      const header = JSON.parse(lines[0])
      const lineOf = new Map()
      for (let i = 1; i < lines.length; i++) {
        const match = /^\{"service":"([^"]+)"/.exec(lines[i])
        if (match) lineOf.set(match[1], lines[i])
      }
      table = { header, lineOf, services: new Map() }
    } catch (error) {
      tableError = error
    }
  }
  if (tableError !== undefined) throw tableError
  return table
}

/** The lookup key of a service name: lower case letters and digits ("Secrets Manager" -> "secretsmanager"). */
function normalize(name) {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '')
}

function parsedService(data, key) {
  if (key === undefined) return undefined
  let entry = data.services.get(key)
  if (entry === undefined) {
    const line = data.lineOf.get(key)
    if (line === undefined) return undefined
    entry = JSON.parse(line)
    data.services.set(key, entry)
  }
  return entry
}

/** The table's entry of a service, by serviceId (CSM `Service`), SDK class name or endpoint prefix. */
function serviceEntry(service) {
  if (typeof service !== 'string' || service === '') return undefined
  const data = loadTable()
  const key = normalize(service)
  return parsedService(data, key) ?? parsedService(data, Object.hasOwn(data.header.aliases, key) ? data.header.aliases[key] : undefined)
}

/**
 * The IAM actions of one operation as `{ action, templates, condition }` objects: `templates` null
 * when the action takes no resource ARN, [] when its ARN cannot be built from the input. Undefined
 * when the operation is not in the table; [] when it needs no permission.
 */
function operationActions(service, operation) {
  const entry = serviceEntry(service)
  if (entry === undefined || typeof operation !== 'string') return undefined
  const value = Object.hasOwn(entry.operations, operation) ? entry.operations[operation] : undefined
  if (value === undefined) return undefined
  // The generator writes an action named `prefix:Operation` as "", and such an only action as 0 or 1.
  const sameName = `${entry.prefix}:${operation}`
  if (value === 0 || value === 1) return [{ action: sameName, templates: value === 0 ? null : [], condition: undefined }]
  return value.map(([action, templates, condition]) => ({ action: action === '' ? sameName : action, templates, condition }))
}

let undocumented

/** False for the few actions the SDK mapping names but the IAM definition does not list. */
function isDocumentedAction(action) {
  undocumented ??= new Set(loadTable().header.notInDefinition)
  return !undocumented.has(action)
}

module.exports = { loadTable, operationActions, isDocumentedAction }
