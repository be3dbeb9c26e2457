// The policy's rules on hand-made recordings, without moto: what a statement grants when the calls
// of one action disagree about what they know of its resources.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { buildPolicy, policyReport } = require('../cli/policy.js')

const REPORT = 'arn:aws:s3:::acme-reports/2026/q1.csv'
const UPLOAD = 'arn:aws:s3:::acme-uploads/incoming/run.json'

/** An ApiCall record; with `resources`, as the v3 plugin or the aws-sdk v2 hook writes it in process. */
const call = (Service, Api, resources) => ({
  Type: 'ApiCall', Service, Api, Region: 'us-west-2', AttemptCount: 1, FinalHttpStatusCode: 200,
  ...(resources === undefined ? {} : { Resources: resources }),
})

const statementOf = (policy, action) => policy.Statement.find((statement) => statement.Action.includes(action))

test('an action one call named the resource of and another reached over CSM without one keeps "*", and says why', () => {
  const result = buildPolicy([
    call('S3', 'GetObject', { 's3:GetObject': [REPORT] }),
    // The same action from another process (Client-Side Monitoring only): no resource known.
    call('S3', 'GetObject'),
    call('S3', 'PutObject', { 's3:PutObject': [UPLOAD] }),
  ])
  // Naming only the known object would deny the second call.
  assert.equal(statementOf(result.policy, 's3:GetObject').Resource, '*')
  assert.equal(statementOf(result.policy, 's3:PutObject').Resource, 'arn:aws:s3:::acme-uploads/incoming/*')
  assert.deepEqual(result.wildcards.map(({ action, reason, calls }) => ({ action, reason, calls })), [
    { action: 's3:GetObject', reason: 'actionLevel', calls: [{ call: 'S3.GetObject', count: 1 }] },
  ])
  assert.deepEqual(result.widened, [{ action: 's3:GetObject', named: ['arn:aws:s3:::acme-reports/2026/*'] }])

  const report = policyReport(result)
  assert.ok(report.some((line) => /^Resource "\*" for s3:GetObject: recorded without resources: Client-Side Monitoring .*; from S3\.GetObject \(1 call\)$/.test(line)), report.join('\n'))
  assert.ok(report.includes('Resource "*" kept for s3:GetObject although other calls named arn:aws:s3:::acme-reports/2026/*: ' +
    'a statement naming only that would deny the calls it was granted "*" for'), report.join('\n'))
})

test('calls that all named their resources get those resources, with nothing reported', () => {
  const result = buildPolicy([
    call('S3', 'GetObject', { 's3:GetObject': [REPORT] }),
    call('S3', 'GetObject', { 's3:GetObject': ['arn:aws:s3:::acme-reports/2026/q2.csv'] }),
  ])
  assert.equal(statementOf(result.policy, 's3:GetObject').Resource, 'arn:aws:s3:::acme-reports/2026/*')
  assert.deepEqual(result.wildcards, [])
  assert.deepEqual(result.widened, [])
  assert.deepEqual(policyReport(result), [])
})
