'use strict'

// aws-sdk v2 reports each call over Client-Side Monitoring; the v3 clients (@aws-sdk/*) report
// nothing, so their calls are not recorded. The nodejs22.x runtime ships only v3, so v2 is bundled.
const AWS = require('aws-sdk')
const ApiCallRecorder = require('aws-api-call-recorder')

const sts = new AWS.STS()

async function handler() {
  const identity = await sts.getCallerIdentity({}).promise()
  return {
    statusCode: 200,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ account: identity.Account }),
  }
}

exports.handler = ApiCallRecorder(handler)
