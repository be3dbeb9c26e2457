'use strict'

// A least-privilege IAM policy from recorded calls. The IAM actions of each operation and the ARN
// templates of their resources come from data/iam-actions.jsonl, generated from maintained public data
// (scripts/generate-iam-actions.py). Records made in process (the v3 plugin, the aws-sdk v2 hook)
// carry the resources each action was used on (`Resources`); records from Client-Side Monitoring
// alone (botocore, the aws CLI, Go, Java, aws-sdk v2 in another process) name no resource, so their
// actions are granted on "*" and reported.

const { operationActions, isDocumentedAction } = require('../iam/table.js')
const { conditionHolds } = require('../iam/input.js')

const ACTION = /^[a-z0-9-]+:[A-Za-z0-9*?-]+$/
const ACCOUNT_ID = /^\d{12}$/
const MAX_CALLS_LISTED = 5
const MAX_ARNS_LISTED = 3
/** IAM's limit on one ARN in a policy. */
const MAX_ARN_LENGTH = 2048

/** Why an action is granted on "*". */
const REASONS = {
  actionLevel: 'recorded without resources: Client-Side Monitoring events carry no request parameters ' +
    '(botocore, the aws CLI, Go, Java, aws-sdk v2 outside the recorded process)',
  notNamed: 'no ARN could be built from the call\'s input (the mapping names no input member for this action, ' +
    'or the input named none, or more than a record keeps)',
  noResource: 'the action takes no resource ARN',
}

function pascalCase(text) {
  return text.split(/[^A-Za-z0-9]+/).filter(Boolean).map((part) => part[0].toUpperCase() + part.slice(1)).join('')
}

function arnParts(arn) {
  const parts = arn.split(':')
  return parts.length >= 6 && parts[0] === 'arn' ? parts : null
}

/** An S3 object ARN names its key's folder (`bucket/folder/*`); a key without a folder stays itself. */
function objectKeyPrefix(arn) {
  const match = /^(arn:[^:]*:s3:::[^/]+\/)(.*\/)[^/]*$/.exec(arn)
  return match ? `${match[1]}${match[2]}*` : arn
}

function fillAccount(arn, accountId) {
  const parts = arnParts(arn)
  if (parts === null || parts[4] !== '*' || parts[2] === 's3') return arn
  if (accountId === undefined) return arn
  parts[4] = accountId
  return parts.join(':')
}

function hasUnknownAccount(arn) {
  const parts = arnParts(arn)
  return parts !== null && parts[4] === '*' && parts[3] !== ''
}

/** The longest common prefix of ARNs, as one pattern ending in `*`. */
function commonPattern(arns) {
  let prefix = arns[0]
  for (const arn of arns) {
    let i = 0
    while (i < prefix.length && i < arn.length && prefix[i] === arn[i]) i++
    prefix = prefix.slice(0, i)
  }
  // Never wider than the service's own ARNs: `arn:partition:service:` at the least.
  return /^arn:[^:]*:[^:]+:/.test(prefix) ? `${prefix.replace(/\*+$/, '')}*` : '*'
}

/**
 * Builds the policy from records. Every ApiCall counts, failed calls included (a call denied or
 * answered 404 still needs its permission).
 * @param {Iterable<object>} records
 * @param {{ accountId?: string, maxResources?: number }} options
 * @returns {{ policy: object, calls: number, unmapped: object[], wildcards: object[], widened: object[],
 *   collapsed: object[], notes: string[], unknownAccount: number }}
 */
function buildPolicy(records, { accountId, maxResources } = {}) {
  if (accountId !== undefined && !ACCOUNT_ID.test(accountId)) throw new Error(`account id must be 12 digits, not "${accountId}"`)
  /** action -> Map(arn -> Map(reason|'' -> Map(call -> count))) */
  const grants = new Map()
  const unmapped = new Map()
  const notes = new Set()
  let calls = 0

  const grant = (action, arn, reason, call) => {
    const arns = grants.get(action) ?? new Map()
    grants.set(action, arns)
    const reasons = arns.get(arn) ?? new Map()
    arns.set(arn, reasons)
    const callers = reasons.get(reason) ?? new Map()
    reasons.set(reason, callers)
    callers.set(call, (callers.get(call) ?? 0) + 1)
  }

  for (const record of records) {
    if (record === null || typeof record !== 'object' || record.Type !== 'ApiCall') continue
    calls += 1
    const call = `${record.Service}.${record.Api}`
    const actions = operationActions(record.Service, record.Api)
    if (actions === undefined) {
      const key = `${record.Service}\u0000${record.Api}`
      const entry = unmapped.get(key) ?? { service: record.Service ?? null, api: record.Api ?? null, calls: 0 }
      entry.calls += 1
      unmapped.set(key, entry)
      continue
    }
    if (actions.length === 0) {
      notes.add(`${call} needs no permission`)
      continue
    }
    const templatesOf = (action) => actions.find((entry) => entry.action === action)?.templates
    // A record made in process names its actions' resources; one without (or with none usable) is
    // action-level.
    const named = []
    const resources = record.Resources
    if (resources !== null && typeof resources === 'object' && !Array.isArray(resources)) {
      for (const [action, arns] of Object.entries(resources)) {
        if (!ACTION.test(action) || !Array.isArray(arns)) continue
        for (const arn of arns) {
          // Only what the recorder writes: "*" or an ARN of sane length.
          if (typeof arn !== 'string' || (arn !== '*' && !(arn.startsWith('arn:') && arn.length <= MAX_ARN_LENGTH))) continue
          named.push([action, arn])
        }
      }
    }
    if (named.length > 0) {
      for (const [action, arn] of named) {
        if (arn === '*') grant(action, '*', templatesOf(action) === null ? 'noResource' : 'notNamed', call)
        else grant(action, objectKeyPrefix(fillAccount(arn, accountId)), '', call)
      }
      continue
    }
    for (const { action, templates, condition } of actions) {
      if (conditionHolds(condition, undefined)) {
        grant(action, '*', templates === null ? 'noResource' : 'actionLevel', call)
      } else {
        notes.add(`${call} also needs ${action} when its input has ${condition.lhs} ` +
          `${condition.op}${condition.rhs !== undefined ? ` ${JSON.stringify(condition.rhs)}` : ''}; ` +
          'the recording cannot show it, so it is not included')
      }
    }
  }

  for (const action of grants.keys()) {
    if (!isDocumentedAction(action)) {
      notes.add(`${action} comes from the SDK mapping but the IAM definition does not list it; check which action the call needs`)
    }
  }

  // Per action: the ARNs, "*" alone when any call needed it, collapsed past maxResources.
  const wildcards = new Map()
  /** Actions granted "*" although some calls named their resources: naming only those would deny the others. */
  const widened = []
  const collapsed = []
  const resourcesOf = new Map()
  for (const [action, arns] of grants) {
    if (arns.has('*')) {
      const named = [...arns.keys()].filter((arn) => arn !== '*').sort()
      if (named.length > 0) widened.push({ action, named })
      for (const [reason, callers] of arns.get('*')) {
        const key = `${action}\u0000${reason}`
        const entry = wildcards.get(key) ?? { action, reason, why: REASONS[reason], calls: new Map() }
        for (const [call, count] of callers) entry.calls.set(call, (entry.calls.get(call) ?? 0) + count)
        wildcards.set(key, entry)
      }
      resourcesOf.set(action, ['*'])
      continue
    }
    let list = [...arns.keys()].sort()
    if (maxResources !== undefined && list.length > maxResources) {
      const pattern = commonPattern(list)
      collapsed.push({ action, count: list.length, pattern })
      list = [pattern]
    }
    resourcesOf.set(action, list)
  }

  // One statement per service prefix and set of resources, actions sorted.
  const groups = new Map()
  for (const [action, list] of resourcesOf) {
    const prefix = action.split(':')[0]
    const key = `${prefix}\u0000${list.join('\u0000')}`
    const group = groups.get(key) ?? { prefix, resources: list, actions: new Set() }
    group.actions.add(action)
    groups.set(key, group)
  }
  const sorted = [...groups.values()].sort((a, b) =>
    a.prefix.localeCompare(b.prefix) || Number(a.resources[0] === '*') - Number(b.resources[0] === '*') ||
    a.resources.join().localeCompare(b.resources.join()))
  // Sid: the service, and where it has several statements, the first action too ("S3GetObject").
  const perPrefix = new Map()
  for (const { prefix } of sorted) perPrefix.set(prefix, (perPrefix.get(prefix) ?? 0) + 1)
  const used = new Map()
  const Statement = sorted.map(({ prefix, resources, actions }) => {
    const first = [...actions].sort()[0].split(':')[1]
    const base = pascalCase(prefix) + (perPrefix.get(prefix) > 1 ? pascalCase(first.replace(/[*?]/g, '')) : '')
    const n = (used.get(base) ?? 0) + 1
    used.set(base, n)
    return {
      Sid: n === 1 ? base : `${base}${n}`,
      Effect: 'Allow',
      Action: [...actions].sort(),
      Resource: resources.length === 1 ? resources[0] : resources,
    }
  })
  const unknownAccount = new Set(Statement.flatMap((s) => [].concat(s.Resource)).filter(hasUnknownAccount)).size
  return {
    policy: { Version: '2012-10-17', Statement },
    calls,
    unmapped: [...unmapped.values()],
    wildcards: [...wildcards.values()].map((entry) => ({
      ...entry,
      calls: [...entry.calls].map(([call, count]) => ({ call, count })).sort((a, b) => b.count - a.count || a.call.localeCompare(b.call)),
    })).sort((a, b) => a.action.localeCompare(b.action)),
    widened: widened.sort((a, b) => a.action.localeCompare(b.action)),
    collapsed,
    notes: [...notes].sort(),
    unknownAccount,
  }
}

/** The report printed on standard error: every "*", with the calls that caused it. */
function policyReport(result) {
  const lines = []
  for (const { service, api, calls } of result.unmapped) {
    lines.push(`not in the policy, no IAM action known: Service "${service}" Api "${api}" ` +
      `(${calls} call${calls === 1 ? '' : 's'}); add its action by hand`)
  }
  for (const { action, why, calls } of result.wildcards) {
    const listed = calls.slice(0, MAX_CALLS_LISTED).map(({ call, count }) => `${call} (${count} call${count === 1 ? '' : 's'})`)
    if (calls.length > MAX_CALLS_LISTED) listed.push(`${calls.length - MAX_CALLS_LISTED} more`)
    lines.push(`Resource "*" for ${action}: ${why}; from ${listed.join(', ')}`)
  }
  for (const { action, named } of result.widened) {
    const listed = named.slice(0, MAX_ARNS_LISTED)
    if (named.length > MAX_ARNS_LISTED) listed.push(`${named.length - MAX_ARNS_LISTED} more`)
    lines.push(`Resource "*" kept for ${action} although other calls named ${listed.join(', ')}: a statement naming ` +
      `only ${named.length === 1 ? 'that' : 'those'} would deny the calls it was granted "*" for`)
  }
  for (const { action, count, pattern } of result.collapsed) {
    lines.push(`${action}: ${count} resources collapsed to ${pattern} (--max-resources)`)
  }
  if (result.unknownAccount > 0) {
    lines.push(`${result.unknownAccount} ARN${result.unknownAccount === 1 ? ' has' : 's have'} "*" for the account: ` +
      'the recordings do not show it; give --account-id')
  }
  for (const note of result.notes) lines.push(`note: ${note}`)
  return lines
}

// ---------------------------------------------------------------------------------------------
// Output formats

const FORMATS = ['json', 'yaml', 'cdk']

/** Serverless `iamRoleStatements` / CloudFormation statements, as YAML (strings double-quoted). */
function toYaml(policy) {
  const q = (value) => JSON.stringify(value)
  const lines = [
    '# Serverless: provider.iam.role.statements (provider.iamRoleStatements before Serverless v3).',
    '# CloudFormation: the Statement list of an AWS::IAM::Role Policies entry\'s PolicyDocument.',
    'iamRoleStatements:',
  ]
  for (const statement of policy.Statement) {
    lines.push(`  - Sid: ${q(statement.Sid)}`, `    Effect: ${q(statement.Effect)}`, '    Action:')
    for (const action of statement.Action) lines.push(`      - ${q(action)}`)
    lines.push('    Resource:')
    for (const resource of [].concat(statement.Resource)) lines.push(`      - ${q(resource)}`)
  }
  return `${lines.join('\n')}\n`
}

/** AWS CDK (aws-cdk-lib) PolicyStatements, as TypeScript. */
function toCdk(policy) {
  const q = (value) => JSON.stringify(value)
  const list = (values) => `[${values.map(q).join(', ')}]`
  const lines = [
    "import * as iam from 'aws-cdk-lib/aws-iam'",
    '',
    '// Add each to a role: role.addToPolicy(statement), or fn.addToRolePolicy(statement) for a Function.',
    'export const statements = [',
  ]
  for (const statement of policy.Statement) {
    lines.push(
      '  new iam.PolicyStatement({',
      `    sid: ${q(statement.Sid)},`,
      '    effect: iam.Effect.ALLOW,',
      `    actions: ${list(statement.Action)},`,
      `    resources: ${list([].concat(statement.Resource))},`,
      '  }),',
    )
  }
  lines.push(']')
  return `${lines.join('\n')}\n`
}

function formatPolicy(policy, format) {
  if (format === 'yaml') return toYaml(policy)
  if (format === 'cdk') return toCdk(policy)
  return `${JSON.stringify(policy, null, 2)}\n`
}

module.exports = { buildPolicy, policyReport, formatPolicy, FORMATS }
