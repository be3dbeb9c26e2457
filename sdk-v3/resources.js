'use strict'

// The resources an AWS call names, as ARNs per IAM action, built from the call's input with the
// generated table data/iam-actions.jsonl (see scripts/generate-iam-actions.py). Used where the input is
// seen, in process: the v3 plugin and the aws-sdk v2 hook. Only identifiers are taken from the input
// (the members the ARN templates name), each cut to MAX_IDENTIFIER_LENGTH; payloads never are.

const path = require('node:path')

/** Longest input value put into an ARN; a longer one is cut and ends in `*` (still a valid prefix). */
const MAX_IDENTIFIER_LENGTH = 256
/** ARNs kept per action; a call naming more records `*` for that action. */
const MAX_ARNS_PER_ACTION = 10
/** Actions kept per call. */
const MAX_ACTIONS = 16
/** Room for `Resources` in one event (the whole event must stay under 8 KiB); over it, ARNs become `*`. */
const MAX_RESOURCES_JSON_LENGTH = 3072
/** Values one template may expand to before it counts as unknown. */
const MAX_EXPANSION = 32
const ACCOUNT_ID = /^\d{12}$/
const ACCOUNT_IN_ARN = /^arn:[^:]*:[^:]*:[^:]*:(\d{12}):/
const ACCOUNT_IN_URL = /^https?:\/\/[^/]+\/(\d{12})\//

const fs = require('node:fs')

let table
let tableError

/**
 * The generated table: its header, and each service's line kept as text until it is looked up
 * (parsing all of it would cost a cold start tens of milliseconds; one service takes well under one).
 */
function loadTable() {
  if (table === undefined && tableError === undefined) {
    try {
      const text = fs.readFileSync(path.join(__dirname, '..', 'data', 'iam-actions.jsonl'), 'utf8')
      const lines = text.split('\n')
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

function normalize(name) {
  return String(name).toLowerCase().replace(/[^a-z0-9]/g, '')
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

/** The IAM prefix of a service, from the table. */
function servicePrefix(service) {
  return serviceEntry(service)?.prefix
}

function partitionOf(region) {
  if (typeof region !== 'string' || region === '') return 'aws'
  if (region.startsWith('cn-')) return 'aws-cn'
  if (region.startsWith('us-gov-')) return 'aws-us-gov'
  if (region.startsWith('us-isob-')) return 'aws-iso-b'
  if (region.startsWith('us-iso-')) return 'aws-iso'
  return 'aws'
}

/** The values at a member path like `TransactItems[].Put.TableName` (`[]` walks every element). */
function valuesAt(input, memberPath) {
  let values = [input]
  for (const rawPart of memberPath.split('.')) {
    const each = rawPart.endsWith('[]')
    const part = each ? rawPart.slice(0, -2) : rawPart
    const next = []
    for (const value of values) {
      if (value === null || typeof value !== 'object') continue
      const member = part === '' ? value : value[part]
      if (each) {
        if (Array.isArray(member)) next.push(...member)
      } else if (member !== undefined && member !== null) {
        next.push(member)
      }
      if (next.length > MAX_EXPANSION) return []
    }
    values = next
  }
  return values
}

function identifier(value) {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  if (typeof value !== 'string' || value === '') return undefined
  let text = typeof value.toWellFormed === 'function' ? value.toWellFormed() : value
  if (text.length > MAX_IDENTIFIER_LENGTH) text = `${text.slice(0, MAX_IDENTIFIER_LENGTH)}*`
  return text
}

/** Substitutes every `${...}`; returns every combination, or [] when a member is missing. */
function substitute(template, input, context) {
  let results = ['']
  let rest = template
  for (;;) {
    const start = rest.indexOf('${')
    const end = start < 0 ? -1 : rest.indexOf('}', start)
    if (end < 0) break
    const literal = rest.slice(0, start)
    const name = rest.slice(start + 2, end)
    rest = rest.slice(end + 1)
    let values
    if (name === 'Partition') values = [context.partition]
    else if (name === 'Region') values = [context.region]
    else if (name === 'Account') values = [context.account]
    else values = valuesAt(input, name).map(identifier).filter((value) => value !== undefined)
    if (values.length === 0) return []
    const next = []
    for (const prefix of results) {
      for (const value of values) next.push(prefix + literal + value)
    }
    if (next.length > MAX_EXPANSION) return []
    results = next
  }
  return results.map((result) => result + rest)
}

/** Evaluates one map.json function (`%%name%arg%...%%`) and the `${...}` around it. */
function evaluate(template, input, context) {
  const start = template.indexOf('%%')
  const end = template.lastIndexOf('%%')
  if (start < 0 || end === start) return substitute(template, input, context)
  const before = template.slice(0, start)
  const after = template.slice(end + 2)
  const [name, ...args] = template.slice(start + 2, end).split('%')
  // The function's values are input values: they are put between the substituted parts as they are.
  const around = (values) => {
    const heads = substitute(before, input, context)
    const tails = substitute(after, input, context)
    const results = []
    for (const head of heads) {
      for (const value of values) {
        for (const tail of tails) results.push(head + value + tail)
      }
    }
    return results.length > MAX_EXPANSION ? [] : results
  }
  switch (name) {
    case 'regex': {
      const [valueTemplate, pattern = ''] = args
      const source = pattern.startsWith('/') ? pattern.slice(1, pattern.lastIndexOf('/')) : pattern
      let regex
      try {
        regex = new RegExp(source)
      } catch {
        return []
      }
      const groups = substitute(valueTemplate, input, context).map((value) => regex.exec(value)?.[1]).filter(Boolean)
      return around(groups)
    }
    case 'iftruthy': {
      const [condition, then = '', otherwise = ''] = args
      const truthy = substitute(condition, input, context).some((value) => value !== '')
      const chosen = truthy ? then : otherwise
      return chosen === '' ? [] : around(substitute(chosen, input, context))
    }
    case 'iftemplatematch': {
      const [pattern, valueTemplate] = args
      let regex
      try {
        regex = new RegExp(`^${pattern}$`)
      } catch {
        return []
      }
      return around(substitute(valueTemplate ?? '', input, context).filter((value) => regex.test(value)))
    }
    case 'many':
      return around(args.flatMap((part) => substitute(part, input, context)))
    case 'urlencode':
      return around(substitute(args[0] ?? '', input, context).map(encodeURIComponent))
    default:
      return []
  }
}

/** Whether an input meets a map.json condition (`{lhs, op, rhs}`); without input, the usual case. */
function conditionHolds(condition, input) {
  if (!condition) return true
  const { lhs, op, rhs } = condition
  if (input === undefined) return op === 'NotExists' || op === 'NotEquals'
  const values = valuesAt(input, String(lhs))
  switch (op) {
    case 'Exists':
      return values.length > 0
    case 'NotExists':
      return values.length === 0
    case 'IContains':
      return values.some((value) => typeof value === 'string' && value.toLowerCase().includes(String(rhs).toLowerCase()))
    case 'NotEquals':
      return !values.some((value) => value === rhs)
    default:
      return true
  }
}

/** The account a call works in: given, else one found in an ARN or a queue URL of the input. */
function accountFrom(input, given) {
  if (typeof given === 'string' && ACCOUNT_ID.test(given)) return given
  if (input !== null && typeof input === 'object') {
    for (const value of Object.values(input)) {
      if (typeof value !== 'string') continue
      const match = ACCOUNT_IN_ARN.exec(value) ?? ACCOUNT_IN_URL.exec(value)
      if (match) return match[1]
    }
  }
  return '*'
}

/**
 * The resources a call names: `{ [action]: [arn, ...] }` for every IAM action the call needs with its
 * input, `["*"]` where the ARN cannot be built (the action takes none, or the input does not name it).
 * Undefined when the operation is unknown or needs no permission.
 * @param {{ region?: string, account?: string }} where the call's region; the account when known
 */
function resourcesFor(service, operation, input, where = {}) {
  const actions = operationActions(service, operation)
  if (actions === undefined || actions.length === 0) return undefined
  const region = typeof where.region === 'string' && where.region !== '' ? where.region : '*'
  const context = { partition: partitionOf(where.region), region, account: accountFrom(input, where.account) }
  const resources = {}
  let count = 0
  for (const { action, templates, condition } of actions) {
    if (!conditionHolds(condition, input)) continue
    if (count >= MAX_ACTIONS) break
    let arns = []
    for (const template of templates ?? []) arns.push(...evaluate(template, input ?? {}, context))
    arns = [...new Set(arns.filter((arn) => arn !== '' && arn !== '*').map((arn) => completeSecretArn(arn, input)))]
    if (arns.length === 0 || arns.length > MAX_ARNS_PER_ACTION) arns = ['*']
    const existing = resources[action]
    resources[action] = existing === undefined ? arns : [...new Set([...existing, ...arns])]
    count++
  }
  return count > 0 ? resources : undefined
}

const SECRET_ARN = /^arn:[^:]*:secretsmanager:[^:]*:[^:]*:secret:/

/**
 * A secret's ARN ends in "-" and six characters Secrets Manager adds to its name: a secret named in
 * the input by name gets `-??????` so the ARN matches it (a full ARN in the input already has them).
 */
function completeSecretArn(arn, input) {
  if (!SECRET_ARN.test(arn) || arn.endsWith('*')) return arn
  const named = input?.SecretId
  return typeof named === 'string' && !named.startsWith('arn:') ? `${arn}-??????` : arn
}

let lambdaAccount
let recording = true

/** Turns the recording of resources on or off for the whole process (the `resources` option). */
function setResourceRecording(on) {
  recording = Boolean(on)
}

/** Remembers the account of the running Lambda function, from its context's `invokedFunctionArn`. */
function noteLambdaContext(context) {
  try {
    const arn = context?.invokedFunctionArn
    const match = typeof arn === 'string' ? ACCOUNT_IN_ARN.exec(arn) : null
    if (match) lambdaAccount = match[1]
  } catch {
    // a context without it: ARNs keep "*" for the account
  }
}

/**
 * Adds `Resources` to a finished call's event from the call's input. Never throws: a call whose
 * resources cannot be worked out is recorded without them.
 */
function addResources(event, input) {
  if (!recording) return event
  try {
    const resources = resourcesFor(event.Service, event.Api, input, { region: event.Region, account: lambdaAccount })
    if (resources === undefined) return event
    if (JSON.stringify(resources).length > MAX_RESOURCES_JSON_LENGTH) {
      for (const action of Object.keys(resources)) resources[action] = ['*']
    }
    event.Resources = resources
  } catch {
    // the record stays action-level
  }
  return event
}

module.exports = {
  addResources,
  loadTable,
  noteLambdaContext,
  setResourceRecording,
  resourcesFor,
  operationActions,
  servicePrefix,
  conditionHolds,
  isDocumentedAction,
  MAX_IDENTIFIER_LENGTH,
}
