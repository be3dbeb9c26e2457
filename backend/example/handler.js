'use strict'

// The v3 SDK (@aws-sdk/*) ships with every current Node.js runtime and sends no Client-Side
// Monitoring datagrams of its own: ApiCallRecorder instruments its clients, so nothing else is needed.
// (aws-sdk v2 and botocore report their calls themselves when AWS_CSM_ENABLED=true.)
const { STSClient, GetCallerIdentityCommand } = require('@aws-sdk/client-sts')
const ApiCallRecorder = require('aws-api-call-recorder')

const sts = new STSClient({})

async function handler() {
  const identity = await sts.send(new GetCallerIdentityCommand({}))
  return {
    statusCode: 200,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ account: identity.Account }),
  }
}

exports.handler = ApiCallRecorder(handler)
