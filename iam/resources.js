'use strict'

// The resources an AWS call names, as ARNs per IAM action, built from the call's input with the IAM
// table (table.js) and its ARN templates (input.js). Used where the input is seen, in process: the v3
// plugin and the aws-sdk v2 hook. Only identifiers are taken from the input; payloads never are.

const { loadTable, operationActions, templateInput } = require('./table.js')
const { evaluate, conditionHolds } = require('./input.js')

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
 * @param {{ region?: string, account?: string }} where the call's region; the account when known
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
    for (const template of templates ?? []) arns.push(...evaluate(template, members ?? {}, context))
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
  resourcesFor,
  noteLambdaContext,
  setResourceRecording,
  // For the wrapper, which opens the table at init so that a missing one is reported there.
  loadTable,
}
