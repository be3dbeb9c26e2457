'use strict'

// The resources an AWS call names, as ARNs per IAM action, built from the call's input with the IAM
// table (table.js) and its ARN templates (input.js). Used where the input is seen, in process: the v3
// plugin and the aws-sdk v2 hook. Only identifiers are taken from the input; payloads never are.

const { loadTable, operationActions, templateInput } = require('./table.js')
const { evaluate, conditionHolds, MAX_IDENTIFIER_LENGTH } = require('./input.js')

/** ARNs kept per action; a call naming more records `*` for that action. */
const MAX_ARNS_PER_ACTION = 10
/** Actions kept per call. */
const MAX_ACTIONS = 16
/** Room for `Resources` in one event (the whole event must stay under 8 KiB); over it, ARNs become `*`. */
const MAX_RESOURCES_JSON_LENGTH = 3072
const ACCOUNT_ID = /^\d{12}$/
const ACCOUNT_IN_ARN = /^arn:[^:]*:[^:]*:[^:]*:(\d{12}):/
const ACCOUNT_IN_URL = /^https?:\/\/[^/]+\/(\d{12})\//
const SECRET_ARN = /^arn:[^:]*:secretsmanager:[^:]*:[^:]*:secret:/

function partitionOf(region) {
  if (typeof region !== 'string' || region === '') return 'aws'
  if (region.startsWith('cn-')) return 'aws-cn'
  if (region.startsWith('us-gov-')) return 'aws-us-gov'
  if (region.startsWith('us-isob-')) return 'aws-iso-b'
  if (region.startsWith('us-iso-')) return 'aws-iso'
  return 'aws'
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

const ROLE_ARN = /^arn:[^:]+:iam::\d{12}:role\/\S+$/
/** Input values looked at for the roles a call passes; past it, the rest is not searched. */
const MAX_INPUT_VALUES = 256

/**
 * Whether every template of an action is the same ARN whatever the input (`role/*`): the mapping
 * knows the action may be needed but not from which member.
 */
function inputFree(templates) {
  return Array.isArray(templates) && templates.length > 0 &&
    templates.every((template) => !template.includes('%%') && !/\$\{(?!Partition\}|Region\}|Account\})/.test(template))
}

/**
 * The role ARNs among an input's values (lists and maps included): the roles a call passes; and
 * whether every value was looked at.
 */
function rolesIn(input) {
  const roles = new Set()
  const pending = [input]
  let queued = 1
  while (pending.length > 0) {
    const value = pending.pop()
    let children = []
    if (typeof value === 'string') {
      if (value.length <= MAX_IDENTIFIER_LENGTH && ROLE_ARN.test(value)) roles.add(value)
    } else if (Array.isArray(value)) {
      children = value
    } else if (value !== null && typeof value === 'object' && [Object.prototype, null].includes(Object.getPrototypeOf(value))) {
      children = Object.values(value)
    }
    queued += children.length
    if (queued > MAX_INPUT_VALUES) return { roles: [...roles], complete: false }
    for (const child of children) pending.push(child)
  }
  return { roles: [...roles], complete: true }
}

/**
 * The ARNs `iam:PassRole` is needed on where the mapping gives only a wildcard for it (SNS topics,
 * which may name delivery-status roles among their attributes): the roles the input passes; none
 * when the whole input was seen and passes none, since AWS checks the action only for a role
 * passed; undefined (the mapping's wildcard) when the input could not all be looked at, or only
 * part of it was known (`partial`: a body too large to read).
 */
function passedRoles(input, partial) {
  const { roles, complete } = rolesIn(input)
  if (roles.length > 0) return roles
  const seen = complete && !partial && input !== null && typeof input === 'object' && Object.keys(input).length > 0
  return seen ? [] : undefined
}

/** The six characters Secrets Manager adds to a secret's name in its ARN, with their dash. */
const SECRET_SUFFIX = /-[A-Za-z0-9]{6}$/

/**
 * A secret's ARN ends in "-" and six random characters Secrets Manager adds to its name. The policy
 * names the secret with `-??????` instead, whatever form the input named it in, so that it still
 * matches the secret when it is created again (with other characters): a name gets `-??????`, a
 * full ARN has its six characters replaced.
 */
function completeSecretArn(arn, input) {
  if (!SECRET_ARN.test(arn) || arn.endsWith('*')) return arn
  const named = input?.SecretId ?? input?.Name
  if (typeof named !== 'string') return arn
  if (!named.startsWith('arn:')) return `${arn}-??????`
  return SECRET_SUFFIX.test(arn) ? arn.replace(SECRET_SUFFIX, '-??????') : `${arn}-??????`
}

/**
 * The resources a call names: `{ [action]: [arn, ...] }` for every IAM action the call needs with its
 * input, `["*"]` where the ARN cannot be built (the action takes none, or the input does not name it).
 * Undefined when the operation is unknown or needs no permission.
 * @param {{ region?: string, account?: string, partialInput?: boolean }} where the call's region; the
 *   account when known; whether `input` holds only part of what the call sent
 */
function resourcesFor(service, operation, input, where = {}) {
  const actions = operationActions(service, operation)
  if (actions === undefined || actions.length === 0) return undefined
  const region = typeof where.region === 'string' && where.region !== '' ? where.region : '*'
  const context = { partition: partitionOf(where.region), region, account: accountFrom(input, where.account) }
  const resources = {}
  let count = 0
  const members = templateInput(service, operation, input)
  for (const { action, templates, condition } of actions) {
    if (!conditionHolds(condition, input)) continue
    if (count >= MAX_ACTIONS) break
    let arns = []
    const passed = action === 'iam:PassRole' && inputFree(templates) ? passedRoles(members, where.partialInput) : undefined
    if (passed?.length === 0) continue
    if (passed !== undefined) arns = passed
    else for (const template of templates ?? []) arns.push(...evaluate(template, members ?? {}, context))
    arns = [...new Set(arns.filter((arn) => arn !== '' && arn !== '*').map((arn) => completeSecretArn(arn, members)))]
    if (arns.length === 0 || arns.length > MAX_ARNS_PER_ACTION) arns = ['*']
    const existing = resources[action]
    resources[action] = existing === undefined ? arns : [...new Set([...existing, ...arns])]
    count++
  }
  return count > 0 ? resources : undefined
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
function addResources(event, input, { partialInput = false } = {}) {
  if (!recording) return event
  try {
    const resources = resourcesFor(event.Service, event.Api, input, { region: event.Region, account: lambdaAccount, partialInput })
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
  resourcesFor,
  noteLambdaContext,
  setResourceRecording,
  // For the wrapper, which opens the table at init so that a missing one is reported there.
  loadTable,
}
