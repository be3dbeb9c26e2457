'use strict'

// Names the calls the recording proxy saw. The proxy (in the addon) knows a request's head; naming a
// REST operation and reading back its input takes the service models and the IAM table, which live
// here: the service and operation from ./sdk-v3/operations.js (the rules the in-process HTTP path
// uses), the input from the request's URI, query, headers and JSON or form body, and the resources
// it names from ./iam/resources.js, exactly as for in-process v3 calls.

const { identifyService, identifyOperation, requestInput } = require('./sdk-v3/operations.js')
const { addResources } = require('./iam/resources.js')

const FORM = /^application\/x-www-form-urlencoded/i

/**
 * One proxy record, named: `Service` becomes the service's id (as CSM has it: `S3`, `DynamoDB`) where
 * the request tells it, `Api` is set where the service model decides it (else `ApiUnknown` stays),
 * and an `ApiCall` gets the `Resources` its input names. Returns the event's JSON; never throws.
 */
function nameProxyEvent({ eventJson, method, target, host, headers, body }) {
  try {
    const event = JSON.parse(eventJson)
    const serviceId = identifyService({ userAgent: headers['user-agent'], target: headers['x-amz-target'], signingName: event.Service, hostname: host })
    if (serviceId === undefined) return eventJson
    event.Service = serviceId
    const request = { method, requestPath: target, hostname: host, headers, body }
    const form = FORM.test(headers['content-type'] ?? '') && typeof body === 'string'
    event.Api ??= identifyOperation(serviceId, { ...request, formAction: form ? new URLSearchParams(body).get('Action') ?? undefined : undefined })
    if (event.Api === undefined) return JSON.stringify(event)
    delete event.ApiUnknown
    // A body sent but not handed over (too large, or neither JSON nor a form) is input not seen.
    const partialInput = body === undefined && (Number(headers['content-length']) > 0 || headers['transfer-encoding'] !== undefined)
    if (event.Type === 'ApiCall') addResources(event, requestInput(serviceId, event.Api, request), { partialInput })
    return JSON.stringify(event)
  } catch {
    return eventJson
  }
}

module.exports = { nameProxyEvent }
