'use strict'

// The mapping's templates and conditions evaluated against a call's input: the values at member paths,
// the ARNs a template builds from them, and whether the input meets an action's condition. Only the
// members a template names are read, each value cut to MAX_IDENTIFIER_LENGTH.

/** Longest input value put into an ARN; a longer one is cut and ends in `*` (still a valid prefix). */
const MAX_IDENTIFIER_LENGTH = 256
/** Values one template may expand to before it counts as unknown. */
const MAX_EXPANSION = 32

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

/**
 * The ARNs one template builds from `input`: its `${...}` substituted (`${Partition}`, `${Region}` and
 * `${Account}` from `context`, the others from input members) and its map.json function
 * (`%%name%arg%...%%`, at most one) evaluated. [] when the input does not name the resource.
 */
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
      // A value that does not match gives its empty group: an IAM path of "/" adds nothing to the ARN.
      const groups = substitute(valueTemplate, input, context).map((value) => regex.exec(value)?.[1] ?? '')
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

module.exports = { evaluate, conditionHolds, MAX_IDENTIFIER_LENGTH }
