// A Lambda context like the Node.js runtime passes to handlers.
import { randomUUID } from 'node:crypto'

export function lambdaContext({ functionName = 'recorder-test', timeoutMs = 30_000 } = {}) {
  const deadline = Date.now() + timeoutMs
  return {
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-west-2:123456789012:function:${functionName}`,
    memoryLimitInMB: '128',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: '2026/11/23/[$LATEST]0123456789abcdef',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  }
}

/** A logger that keeps what it is given. */
export function memoryLogger() {
  const warnings = []
  return { warnings, warn: (message) => warnings.push(String(message)) }
}
