'use strict'

// The IAM actions of AWS operations, from the generated table data/iam-actions.jsonl (see
// scripts/generate-iam-actions.py): its index and aliases come with the code
// (data/iam-actions.index.js), each service's line is read when that service is first looked up, and
// the header line only by `policy`.

const { openIndexedLines } = require('../data/indexed-lines.js')

const TABLE_FILE = 'iam-actions.jsonl'
const TABLE_INDEX = require('../data/iam-actions.index.js')

let table
let tableError

/** Opens the table (no read, a check that its file is there); throws why it cannot, every time it is asked. */
function loadTable() {
  if (table === undefined && tableError === undefined) {
    try {
      table = openIndexedLines(TABLE_FILE, TABLE_INDEX)
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

/**
 * Each service's entry by its lookup key, once found: every call looks its service up, and a key or
 * alias is otherwise found by a search of the index. Only keys the table holds are kept, so the map
 * is bounded by the table.
 */
const entriesByKey = new Map()

/** The table's entry of a service, by serviceId (CSM `Service`), SDK class name or endpoint prefix. */
function serviceEntry(service) {
  if (typeof service !== 'string' || service === '') return undefined
  const key = normalize(service)
  const known = entriesByKey.get(key)
  if (known !== undefined) return known
  const lines = loadTable()
  const found = lines.has(key) ? key : lines.lookup('aliases', key)
  const entry = found === undefined ? undefined : lines.entry(found)
  if (entry !== undefined) entriesByKey.set(key, entry)
  return entry
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
  const actions = value === 0 || value === 1
    ? [{ action: sameName, templates: value === 0 ? null : [], condition: undefined }]
    : value.map(([action, templates, condition]) => ({ action: action === '' ? sameName : action, templates, condition }))
  return withInputActions(entry.key, operation, sameName, actions)
}

let inputRules
let inputMembers

/**
 * The input an operation's ARN templates read: `input` with the members it leaves out that have a
 * documented default, and members the templates call by another name (data/input-actions.json).
 */
function templateInput(service, operation, input) {
  const entry = serviceEntry(service)
  if (entry === undefined) return input
  inputMembers ??= require('../data/input-actions.json').inputs
  let completed = input
  for (const rule of inputMembers) {
    if (rule.service !== entry.key || (rule.operation !== undefined && rule.operation !== operation)) continue
    const present = completed !== null && typeof completed === 'object' && completed[rule.member] !== undefined
    if (present) continue
    const value = rule.from !== undefined ? completed?.[rule.from] : rule.default
    if (value !== undefined) completed = { ...(completed ?? {}), [rule.member]: value }
  }
  return completed
}

/**
 * Adds the actions that depend on the call's input (data/input-actions.json): each applies to the
 * operation's own resources when its input member is present, beside or instead of the operation's
 * own action.
 */
function withInputActions(key, operation, sameName, actions) {
  inputRules ??= require('../data/input-actions.json').rules
  const rules = inputRules.filter((rule) => rule.service === key && rule.operation === operation)
  if (rules.length === 0) return actions
  const own = actions.find((entry) => entry.action === sameName && entry.condition === undefined)
  if (own === undefined) return actions
  const result = [...actions]
  for (const rule of rules) {
    if (rule.instead) {
      result[result.indexOf(own)] = { ...own, condition: { lhs: rule.when, op: 'NotExists' } }
    }
    result.push({ action: rule.action, templates: own.templates, condition: { lhs: rule.when, op: 'Exists' } })
  }
  return result
}

let undocumented

/** False for the few actions the SDK mapping names but the IAM definition does not list. */
function isDocumentedAction(action) {
  undocumented ??= new Set(loadTable().header.notInDefinition)
  return !undocumented.has(action)
}

module.exports = { loadTable, operationActions, templateInput, isDocumentedAction }
