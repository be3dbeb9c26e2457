'use strict'

// The size limits aws-sdk v2 and botocore apply to CSM events, and the cut that keeps text valid.

/** The SDKs' limit on one serialized event; larger events are dropped, as v2 and botocore do. */
const { maxEventBytes: MAX_EVENT_BYTES } = require('../data/limits.json')
/** v2 cuts a longer AWS_CSM_CLIENT_ID to this many characters. */
const MAX_CLIENT_ID_LENGTH = 255
/** Field lengths v2's publisher trims to (UTF-16 code units). */
const FIELD_LIMITS = {
  UserAgent: 256,
  SdkException: 128,
  SdkExceptionMessage: 512,
  AwsException: 128,
  AwsExceptionMessage: 512,
  FinalSdkException: 128,
  FinalSdkExceptionMessage: 512,
  FinalAwsException: 128,
  FinalAwsExceptionMessage: 512,
}

/**
 * Cuts a string to `max` UTF-16 code units like v2, without splitting a surrogate pair, and
 * replaces lone surrogates: the recorder's JSON parser rejects an event that contains one.
 */
function trim(value, max) {
  let text = typeof value.toWellFormed === 'function' ? value.toWellFormed() : value
  if (text.length > max) {
    const last = text.charCodeAt(max - 1)
    text = text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max)
  }
  return text
}

function limitFields(event) {
  for (const [field, value] of Object.entries(event)) {
    if (typeof value === 'string') event[field] = trim(value, FIELD_LIMITS[field] ?? Infinity)
  }
  return event
}

module.exports = { MAX_EVENT_BYTES, MAX_CLIENT_ID_LENGTH, trim, limitFields }
