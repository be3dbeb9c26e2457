// Programs run as child processes, and the moto IAM users they run as.
import { spawn } from 'node:child_process'
import assert from 'node:assert/strict'

/** Runs a command to its end (killed after `timeoutMs`); its exit and what it printed. */
export function runCommand(command, args, { env, cwd, timeoutMs }) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => { stdout += chunk })
    child.stderr.on('data', (chunk) => { stderr += chunk })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

/** Allows everything: the policy of the user who sets a moto server up. */
export const ADMIN_POLICY = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] }

/**
 * A moto IAM user holding exactly `policy`; its credentials. `aws(args)` runs the aws CLI against
 * moto as a user allowed to make it (moto lets the first requests through unsigned).
 */
export async function userWithPolicy(aws, name, policy) {
  const user = await aws(['iam', 'create-user', '--user-name', name])
  assert.equal(user.code, 0, user.stderr)
  const created = await aws(['iam', 'create-access-key', '--user-name', name])
  assert.equal(created.code, 0, created.stderr)
  const put = await aws(['iam', 'put-user-policy', '--user-name', name, '--policy-name', 'recorded', '--policy-document', JSON.stringify(policy)])
  assert.equal(put.code, 0, put.stderr)
  const { AccessKeyId, SecretAccessKey } = JSON.parse(created.stdout).AccessKey
  return { AWS_ACCESS_KEY_ID: AccessKeyId, AWS_SECRET_ACCESS_KEY: SecretAccessKey }
}
