'use strict'

// CSM event fields read from the v3 SDK's middleware context, request, response and error.

// The v3 SDK's own retry classification (@smithy retry: throttling, transient, server errors).
// MaxRetriesExceeded is 1 when the last error is one the SDK would retry, as v2's `error.retryable`.
const THROTTLING_ERROR_CODES = new Set([
  'BandwidthLimitExceeded', 'EC2ThrottledException', 'LimitExceededException', 'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException', 'RequestLimitExceeded', 'RequestThrottled',
  'RequestThrottledException', 'SlowDown', 'ThrottledException', 'Throttling', 'ThrottlingException',
  'TooManyRequestsException', 'TransactionInProgressException',
])
const TRANSIENT_ERROR_CODES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException'])
const NETWORK_ERROR_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
])
const MAX_CAUSE_DEPTH = 10

function smithyContext(context) {
  return context?.__smithy_context
}

function signingProperties(context) {
  return smithyContext(context)?.selectedHttpAuthScheme?.httpAuthOption?.signingProperties
}

function signingIdentity(context) {
  return smithyContext(context)?.selectedHttpAuthScheme?.identity
}

function signingRegion(context) {
  const region = signingProperties(context)?.region ?? context?.signing_region
  return typeof region === 'string' && region !== '' ? region : undefined
}

function operationName(context) {
  const operation = smithyContext(context)?.operation
  if (typeof operation === 'string' && operation !== '') return operation
  const commandName = context?.commandName
  return typeof commandName === 'string' ? commandName.replace(/Command$/, '') : undefined
}

/** Access key id, region and signing name from a SigV4 `Authorization` header's credential scope. */
function credentialScope(authorization) {
  if (typeof authorization !== 'string') return undefined
  const match = /Credential=([^/,\s]+)\/\d{8}\/([^/,\s]+)\/([^/,\s]+)\//.exec(authorization)
  return match ? { accessKey: match[1], region: match[2], signingName: match[3] } : undefined
}

/** The region of a regional AWS endpoint (`sts.eu-west-1.amazonaws.com`), for unsigned requests. */
function regionFromHostname(hostname) {
  if (typeof hostname !== 'string') return undefined
  const match = /\.([a-z]{2}(?:-iso[a-z]?|-gov)?-[a-z]+-\d+)\.(?:amazonaws\.com(?:\.cn)?|api\.aws)$/.exec(hostname)
  return match ? match[1] : undefined
}

function header(headers, name) {
  if (headers === null || typeof headers !== 'object') return undefined
  let value = headers[name]
  if (value === undefined) {
    for (const key of Object.keys(headers)) {
      if (key.toLowerCase() === name) {
        value = headers[key]
        break
      }
    }
  }
  if (Array.isArray(value)) value = value.join(', ')
  return typeof value === 'string' && value !== '' ? value : undefined
}

function statusCode(response, error) {
  const status = response?.statusCode ?? error?.$metadata?.httpStatusCode
  return Number.isInteger(status) && status > 0 ? status : undefined
}

/** v2's split: an error with an HTTP status above 299 is the service's, anything else the SDK's. */
function addException(event, error, status, prefix) {
  if (error === null || typeof error !== 'object') {
    event[`${prefix}SdkException`] = typeof error
    if (error !== undefined && error !== null) event[`${prefix}SdkExceptionMessage`] = String(error)
    return
  }
  // v3 fills in "UnknownError" when the response has no message (S3 HeadObject 404); v2 sends none.
  const message = nonEmpty(error.message) !== 'UnknownError' ? nonEmpty(error.message) : undefined
  if (status !== undefined && status > 299) {
    const code = nonEmpty(error.name) ?? nonEmpty(error.Code) ?? nonEmpty(error.code)
    if (code) event[`${prefix}AwsException`] = code
    if (message) event[`${prefix}AwsExceptionMessage`] = message
  } else {
    const code = nonEmpty(error.code) ?? nonEmpty(error.name)
    if (code) event[`${prefix}SdkException`] = code
    if (message) event[`${prefix}SdkExceptionMessage`] = message
  }
}

function nonEmpty(value) {
  return typeof value === 'string' && value !== '' ? value : undefined
}

function isRetryable(error, depth = 0) {
  if (error === null || typeof error !== 'object' || error.name === 'AbortError') return false
  const status = error.$metadata?.httpStatusCode
  return (
    error.$retryable !== undefined ||
    status === 429 ||
    (status >= 500 && status <= 599) ||
    THROTTLING_ERROR_CODES.has(error.name) ||
    TRANSIENT_ERROR_CODES.has(error.name) ||
    NETWORK_ERROR_CODES.has(error.code) ||
    error.$metadata?.clockSkewCorrected === true ||
    (error.name === 'InvalidSignatureException' && String(error.message).includes('Signature expired')) ||
    (error.code === 'ERR_HTTP2_STREAM_ERROR' && String(error.message).includes('NGHTTP2_REFUSED_STREAM')) ||
    (error.cause !== undefined && depth < MAX_CAUSE_DEPTH && isRetryable(error.cause, depth + 1))
  )
}

module.exports = {
  signingProperties,
  signingIdentity,
  signingRegion,
  operationName,
  credentialScope,
  regionFromHostname,
  header,
  statusCode,
  addException,
  isRetryable,
}
