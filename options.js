'use strict'

// The JavaScript side's options, each with its environment variable and default, in one table: the
// wrapper resolves them from it, and a test holds index.d.ts and the README's table to it. The
// native options are declared in Rust (src/config.rs, generated into binding.d.ts).

const LOG_PREFIX = '[aws-api-call-recorder]'

/** The boolean grammar of every environment variable, as the native side reads it too (src/config.rs). */
const FLAG_GRAMMAR = 'expected true/false, 1/0, yes/no or on/off'
const TRUE_WORDS = new Set(['true', '1', 'yes', 'on'])
const FALSE_WORDS = new Set(['false', '0', 'no', 'off'])

/**
 * `{ env, default, defaultText? }` per option: `defaultText` says it where the default is not one
 * value. An option given (not undefined or null) wins over its variable, which wins over the default.
 */
const OPTIONS = {
  enabled: {
    env: 'API_CALL_RECORDER_IS_ACTIVATED',
    default: (env) => env.NODE_ENV === 'development',
    defaultText: 'on when `NODE_ENV=development`, else off',
  },
  sdkV3: { default: true },
  sdkV3Http: { default: true, defaultText: '`true` (with `sdkV3`)' },
  afterResponse: { env: 'API_CALL_RECORDER_AFTER_RESPONSE', default: true },
  resources: { env: 'API_CALL_RECORDER_RESOURCES', default: true },
  logger: { default: () => console, defaultText: '`console`' },
}

/** `true` or `false` for a word of the grammar, in any case and with spaces around it; else undefined. */
function parseFlag(raw) {
  const word = String(raw).trim().toLowerCase()
  if (TRUE_WORDS.has(word)) return true
  if (FALSE_WORDS.has(word)) return false
  return undefined
}

/** The one warning for a variable that holds no boolean. */
function unrecognisedFlagMessage(name, raw, fallback) {
  return `${name}=${JSON.stringify(raw)} is not a boolean (${FLAG_GRAMMAR}); using the default, ${fallback}`
}

function defaultOf(name, env) {
  const { default: value } = OPTIONS[name]
  return typeof value === 'function' ? value(env) : value
}

/**
 * The JavaScript-side options resolved: each option, else its variable, else its default. A
 * variable that holds no boolean falls back to the default and adds a message to `warnings`.
 */
function resolveOptions(options = {}, env = process.env) {
  const resolved = {}
  const warnings = []
  for (const [name, { env: variable }] of Object.entries(OPTIONS)) {
    const given = options[name]
    if (given !== undefined && given !== null) {
      resolved[name] = name === 'logger' ? given : Boolean(given)
      continue
    }
    const raw = variable === undefined ? undefined : env[variable]
    const fallback = defaultOf(name, env)
    if (raw === undefined || raw.trim() === '') {
      resolved[name] = fallback
      continue
    }
    const flag = parseFlag(raw)
    if (flag === undefined) warnings.push(unrecognisedFlagMessage(variable, raw, fallback))
    resolved[name] = flag ?? fallback
  }
  // Read by the SDKs, not by the wrapper, but with the same grammar: a typo is worth a word.
  const csm = env.AWS_CSM_ENABLED
  if (csm !== undefined && csm.trim() !== '' && parseFlag(csm) === undefined) {
    warnings.push(unrecognisedFlagMessage('AWS_CSM_ENABLED', csm, false))
  }
  // The HTTP layer records v3 calls; it is off with them.
  if (options.sdkV3Http === undefined || options.sdkV3Http === null) resolved.sdkV3Http = resolved.sdkV3
  return { resolved, warnings }
}

/** The options the native recorder takes: everything but the JavaScript side's, unset ones left out. */
function nativeOptions(options) {
  const result = {}
  for (const [key, value] of Object.entries(options)) {
    if (!(key in OPTIONS) && value !== undefined && value !== null) result[key] = value
  }
  return result
}

/** Writes one warning; a broken logger must not break the caller either. */
function warn(logger, message) {
  try {
    logger.warn(`${LOG_PREFIX} ${message}`)
  } catch {
    // Nothing else to tell it with.
  }
}

module.exports = { OPTIONS, FLAG_GRAMMAR, parseFlag, unrecognisedFlagMessage, resolveOptions, nativeOptions, warn }
