'use strict'

// The CSM settings, resolved like aws-sdk v2: options, then AWS_CSM_* env, then the shared config file.

const fs = require('node:fs')
const path = require('node:path')
const { MAX_CLIENT_ID_LENGTH, trim } = require('./limits.js')
const { parseFlag } = require('../options.js')
const { defaultCsmHost: DEFAULT_CSM_HOST, defaultCsmPort: DEFAULT_CSM_PORT } = require('../data/limits.json')

/** The `csm_*` values of each shared config file and profile read so far: read once per process. */
const sharedConfigs = new Map()

function readSharedConfig() {
  // node:os only here: not loaded at every cold start, and the SDK that sends the events has loaded it.
  const file = process.env.AWS_CONFIG_FILE || path.join(require('node:os').homedir(), '.aws', 'config')
  const profile = process.env.AWS_PROFILE || 'default'
  const key = `${file}\n${profile}`
  let values = sharedConfigs.get(key)
  if (values === undefined) {
    values = parseSharedConfig(file, profile)
    sharedConfigs.set(key, values)
  }
  return values
}

function parseSharedConfig(file, profile) {
  let text
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch {
    return {}
  }
  const values = {}
  let inProfile = false
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const section = /^\[\s*(?:profile\s+)?([^\]]+?)\s*\]$/.exec(line)
    if (section) {
      inProfile = section[1] === profile
      continue
    }
    if (!inProfile) continue
    const pair = /^([^=]+?)\s*=\s*(.*)$/.exec(line)
    if (pair && pair[1].startsWith('csm_')) values[pair[1]] = pair[2]
  }
  return values
}

/** `{ enabled, host, port, clientId }` from options, then AWS_CSM_* env, then the shared config file. */
function resolveCsmConfig(options = {}) {
  let enabled = process.env.AWS_CSM_ENABLED || undefined
  let host = process.env.AWS_CSM_HOST || undefined
  let port = process.env.AWS_CSM_PORT || undefined
  let clientId = process.env.AWS_CSM_CLIENT_ID || undefined
  const explicitlyOff = enabled !== undefined && parseFlag(enabled) === false
  if (!(enabled && host && port && clientId) && !explicitlyOff) {
    const file = readSharedConfig()
    enabled = enabled || file.csm_enabled
    host = host || file.csm_host
    port = port || file.csm_port
    clientId = clientId || file.csm_client_id
  }
  const resolved = {
    // The grammar of every boolean variable; anything else is off, the default.
    enabled: enabled !== undefined && parseFlag(enabled) === true,
    host: host || DEFAULT_CSM_HOST,
    port: Number.parseInt(port, 10) || DEFAULT_CSM_PORT,
    clientId: clientId || '',
  }
  if (options.csmEnabled !== undefined && options.csmEnabled !== null) resolved.enabled = Boolean(options.csmEnabled)
  if (options.csmHost) resolved.host = String(options.csmHost)
  if (options.csmPort) resolved.port = Number(options.csmPort)
  if (options.clientId !== undefined && options.clientId !== null) resolved.clientId = String(options.clientId)
  resolved.clientId = trim(resolved.clientId, MAX_CLIENT_ID_LENGTH)
  return resolved
}

module.exports = { resolveCsmConfig }
