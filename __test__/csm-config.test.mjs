// The CSM settings the v3 plugin sends with (sdk-v3/config.js): options, then AWS_CSM_* variables, then
// the shared config file's profile, read once per process for each file and profile.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, beforeEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { resolveCsmConfig } = require('../sdk-v3/config.js')
const { defaultCsmHost, defaultCsmPort } = require('../data/limits.json')
const { MAX_CLIENT_ID_LENGTH } = require('../sdk-v3/limits.js')

const VARIABLES = ['AWS_CONFIG_FILE', 'AWS_PROFILE', 'AWS_CSM_ENABLED', 'AWS_CSM_HOST', 'AWS_CSM_PORT', 'AWS_CSM_CLIENT_ID']
const saved = Object.fromEntries(VARIABLES.map((name) => [name, process.env[name]]))
let dir
let files = 0

/** A shared config file of its own (the file's values are kept per path), made the one in use. */
function useConfigFile(text) {
  const file = path.join(dir, `config-${files++}`)
  fs.writeFileSync(file, text)
  process.env.AWS_CONFIG_FILE = file
  return file
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acr-csm-config-'))
})

beforeEach(() => {
  for (const name of VARIABLES) delete process.env[name]
  process.env.AWS_CONFIG_FILE = path.join(dir, 'absent')
})

after(() => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name]
    else process.env[name] = value
  }
  fs.rmSync(dir, { recursive: true, force: true })
})

const PROFILES = [
  '# shared config',
  '[default]',
  'region = us-west-2',
  'csm_enabled = true',
  'csm_port = 31001',
  'csm_client_id = from-default',
  '',
  '[profile work]',
  '; another comment',
  'csm_enabled=yes',
  'csm_host = 127.0.0.2',
  'csm_client_id = wörk ✓',
].join('\r\n')

test('without settings: off, on the default address, without a client id', () => {
  assert.deepEqual(resolveCsmConfig(), { enabled: false, host: defaultCsmHost, port: defaultCsmPort, clientId: '' })
})

test("the shared config file's profile, in either section form, CRLF lines and unicode included", () => {
  useConfigFile(PROFILES)
  assert.deepEqual(resolveCsmConfig(), { enabled: true, host: defaultCsmHost, port: 31001, clientId: 'from-default' })
  process.env.AWS_PROFILE = 'work'
  assert.deepEqual(resolveCsmConfig(), { enabled: true, host: '127.0.0.2', port: defaultCsmPort, clientId: 'wörk ✓' })
  process.env.AWS_PROFILE = 'absent'
  assert.deepEqual(resolveCsmConfig(), { enabled: false, host: defaultCsmHost, port: defaultCsmPort, clientId: '' })
})

test('variables before the file, options before both; a variable that turns CSM off leaves the file aside', () => {
  useConfigFile(PROFILES)
  process.env.AWS_CSM_CLIENT_ID = 'from-env'
  process.env.AWS_CSM_PORT = '31002'
  assert.deepEqual(resolveCsmConfig(), { enabled: true, host: defaultCsmHost, port: 31002, clientId: 'from-env' })
  assert.deepEqual(resolveCsmConfig({ clientId: 'from-options', csmPort: 31003, csmEnabled: false }),
    { enabled: false, host: defaultCsmHost, port: 31003, clientId: 'from-options' })
  process.env.AWS_CSM_ENABLED = 'off'
  delete process.env.AWS_CSM_CLIENT_ID
  delete process.env.AWS_CSM_PORT
  assert.deepEqual(resolveCsmConfig(), { enabled: false, host: defaultCsmHost, port: defaultCsmPort, clientId: '' })
})

test('each file and profile is read once per process: a file changed after its first use is not read again', () => {
  const file = useConfigFile('[default]\ncsm_enabled = true\ncsm_client_id = first\n')
  assert.equal(resolveCsmConfig().clientId, 'first')
  fs.writeFileSync(file, '[default]\ncsm_enabled = true\ncsm_client_id = second\n')
  assert.equal(resolveCsmConfig().clientId, 'first')
  // Another file, or another profile of the same file, is read.
  useConfigFile('[default]\ncsm_enabled = true\ncsm_client_id = other file\n')
  assert.equal(resolveCsmConfig().clientId, 'other file')
  process.env.AWS_CONFIG_FILE = file
  process.env.AWS_PROFILE = 'default '
  assert.equal(resolveCsmConfig().clientId, '', 'a profile the file does not hold')
})

test('a client id longer than CSM allows is cut, an empty or unreadable file is no setting', () => {
  useConfigFile(`[default]\ncsm_client_id = ${'x'.repeat(1000)}\n`)
  const { clientId } = resolveCsmConfig()
  assert.ok(clientId.length > 0 && clientId.length <= MAX_CLIENT_ID_LENGTH && /^x+$/.test(clientId), `${clientId.length}`)
  useConfigFile('')
  assert.deepEqual(resolveCsmConfig(), { enabled: false, host: defaultCsmHost, port: defaultCsmPort, clientId: '' })
  process.env.AWS_CONFIG_FILE = dir
  assert.deepEqual(resolveCsmConfig(), { enabled: false, host: defaultCsmHost, port: defaultCsmPort, clientId: '' })
})
