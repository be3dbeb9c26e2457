'use strict'

// A least-privilege IAM policy draft from recorded calls: CSM Service -> IAM prefix (generated from
// botocore's models, see scripts/generate-iam-prefixes.py), Api -> action, with the operations whose
// action has another name listed below.

const IAM_PREFIXES = require('./iam-prefixes.json')

/**
 * Operations whose IAM action is not `prefix:Api`, keyed by `prefix:Api`. From the IAM Service
 * Authorization Reference. Each maps to every action the operation can need.
 */
const ACTION_EXCEPTIONS = {
  's3:ListObjects': ['s3:ListBucket'],
  's3:ListObjectsV2': ['s3:ListBucket'],
  's3:HeadBucket': ['s3:ListBucket'],
  's3:HeadObject': ['s3:GetObject'],
  's3:SelectObjectContent': ['s3:GetObject'],
  's3:ListObjectVersions': ['s3:ListBucketVersions'],
  's3:ListBuckets': ['s3:ListAllMyBuckets'],
  's3:CreateMultipartUpload': ['s3:PutObject'],
  's3:UploadPart': ['s3:PutObject'],
  's3:CompleteMultipartUpload': ['s3:PutObject'],
  's3:UploadPartCopy': ['s3:GetObject', 's3:PutObject'],
  's3:CopyObject': ['s3:GetObject', 's3:PutObject'],
  's3:ListParts': ['s3:ListMultipartUploadParts'],
  's3:ListMultipartUploads': ['s3:ListBucketMultipartUploads'],
  's3:DeleteObjects': ['s3:DeleteObject'],
  's3:GetBucketLifecycleConfiguration': ['s3:GetLifecycleConfiguration'],
  's3:PutBucketLifecycleConfiguration': ['s3:PutLifecycleConfiguration'],
  's3:DeleteBucketLifecycle': ['s3:PutLifecycleConfiguration'],
  's3:GetBucketEncryption': ['s3:GetEncryptionConfiguration'],
  's3:PutBucketEncryption': ['s3:PutEncryptionConfiguration'],
  's3:DeleteBucketEncryption': ['s3:PutEncryptionConfiguration'],
  's3:GetBucketCors': ['s3:GetBucketCORS'],
  's3:PutBucketCors': ['s3:PutBucketCORS'],
  's3:DeleteBucketCors': ['s3:PutBucketCORS'],
  's3:GetBucketNotificationConfiguration': ['s3:GetBucketNotification'],
  's3:PutBucketNotificationConfiguration': ['s3:PutBucketNotification'],
  's3:GetBucketReplication': ['s3:GetReplicationConfiguration'],
  's3:PutBucketReplication': ['s3:PutReplicationConfiguration'],
  's3:DeleteBucketReplication': ['s3:PutReplicationConfiguration'],
  's3:DeleteBucketTagging': ['s3:PutBucketTagging'],
  's3:GetPublicAccessBlock': ['s3:GetBucketPublicAccessBlock'],
  's3:PutPublicAccessBlock': ['s3:PutBucketPublicAccessBlock'],
  's3:DeletePublicAccessBlock': ['s3:PutBucketPublicAccessBlock'],
  's3:GetObjectLockConfiguration': ['s3:GetBucketObjectLockConfiguration'],
  's3:PutObjectLockConfiguration': ['s3:PutBucketObjectLockConfiguration'],
  's3:GetBucketAccelerateConfiguration': ['s3:GetAccelerateConfiguration'],
  's3:PutBucketAccelerateConfiguration': ['s3:PutAccelerateConfiguration'],
  'lambda:Invoke': ['lambda:InvokeFunction'],
  'lambda:InvokeWithResponseStream': ['lambda:InvokeFunction'],
  'sqs:SendMessageBatch': ['sqs:SendMessage'],
  'sqs:DeleteMessageBatch': ['sqs:DeleteMessage'],
  'sqs:ChangeMessageVisibilityBatch': ['sqs:ChangeMessageVisibility'],
  'sns:PublishBatch': ['sns:Publish'],
  'dynamodb:TransactGetItems': ['dynamodb:GetItem'],
  'dynamodb:TransactWriteItems': ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:ConditionCheckItem'],
  'dynamodb:ExecuteStatement': ['dynamodb:PartiQLSelect', 'dynamodb:PartiQLInsert', 'dynamodb:PartiQLUpdate', 'dynamodb:PartiQLDelete'],
  'dynamodb:BatchExecuteStatement': ['dynamodb:PartiQLSelect', 'dynamodb:PartiQLInsert', 'dynamodb:PartiQLUpdate', 'dynamodb:PartiQLDelete'],
  'dynamodb:ExecuteTransaction': ['dynamodb:PartiQLSelect', 'dynamodb:PartiQLInsert', 'dynamodb:PartiQLUpdate', 'dynamodb:PartiQLDelete'],
}

/** What cannot be decided from a CSM event, keyed by `prefix:Api`. */
const NOTES = {
  's3:GetObject': 'a GetObject with a VersionId needs s3:GetObjectVersion (the version is not in the events)',
  's3:HeadObject': 'a HeadObject with a VersionId needs s3:GetObjectVersion (the version is not in the events)',
  'dynamodb:TransactWriteItems': 'TransactWriteItems needs only the item actions the transactions use; remove the others',
  'dynamodb:ExecuteStatement': 'PartiQL needs only the PartiQL actions of the statements used; remove the others',
  'dynamodb:BatchExecuteStatement': 'PartiQL needs only the PartiQL actions of the statements used; remove the others',
  'dynamodb:ExecuteTransaction': 'PartiQL needs only the PartiQL actions of the statements used; remove the others',
  'sts:GetCallerIdentity': 'sts:GetCallerIdentity needs no permission; it is listed for completeness',
}

const byLowerServiceId = new Map(Object.entries(IAM_PREFIXES.services).map(([id, prefix]) => [id.toLowerCase(), prefix]))

/** The IAM prefix for a CSM `Service` (a serviceId; JS v2 falls back to the endpoint prefix). */
function iamPrefix(service) {
  if (typeof service !== 'string' || service === '') return null
  return IAM_PREFIXES.services[service] ??
    byLowerServiceId.get(service.toLowerCase()) ??
    IAM_PREFIXES.endpointPrefixes[service] ??
    null
}

/** The IAM actions an operation needs, or null when it cannot be mapped. */
function actionsFor(service, api) {
  const prefix = iamPrefix(service)
  if (!prefix || typeof api !== 'string' || !/^[A-Za-z0-9]+$/.test(api)) return null
  const methods = IAM_PREFIXES.httpMethodActions[service]
  if (methods) {
    // API Gateway's control plane is authorized by HTTP method, on the resource path.
    return methods[api] ? [`${prefix}:${methods[api]}`] : null
  }
  return ACTION_EXCEPTIONS[`${prefix}:${api}`] ?? [`${prefix}:${api}`]
}

function statementId(prefix) {
  return prefix.split(/[^A-Za-z0-9]+/).filter(Boolean).map((part) => part[0].toUpperCase() + part.slice(1)).join('')
}

/**
 * Builds the policy from records. Every Service/Api pair of an ApiCall event counts, failed calls
 * included (a call denied or answered 404 still needs its permission).
 * @returns {{ policy: object, calls: number, unmapped: {service, api, calls}[], notes: string[] }}
 */
function buildPolicy(records) {
  const actionsByPrefix = new Map()
  const unmapped = new Map()
  const notes = new Set()
  let calls = 0
  for (const record of records) {
    if (record.Type !== 'ApiCall') continue
    calls += 1
    const actions = actionsFor(record.Service, record.Api)
    if (!actions) {
      const key = `${record.Service}\u0000${record.Api}`
      const entry = unmapped.get(key) ?? { service: record.Service ?? null, api: record.Api ?? null, calls: 0 }
      entry.calls += 1
      unmapped.set(key, entry)
      continue
    }
    const prefix = actions[0].split(':')[0]
    const set = actionsByPrefix.get(prefix) ?? new Set()
    for (const action of actions) set.add(action)
    actionsByPrefix.set(prefix, set)
    const note = NOTES[`${prefix}:${record.Api}`]
    if (note) notes.add(note)
    if (IAM_PREFIXES.httpMethodActions[record.Service]) {
      notes.add(`${record.Service} actions are HTTP methods; narrow Resource to the API paths used`)
    }
  }
  const Statement = [...actionsByPrefix.keys()].sort().map((prefix) => ({
    Sid: statementId(prefix),
    Effect: 'Allow',
    Action: [...actionsByPrefix.get(prefix)].sort(),
    Resource: '*',
  }))
  return {
    policy: { Version: '2012-10-17', Statement },
    calls,
    unmapped: [...unmapped.values()],
    notes: [...notes].sort(),
  }
}

module.exports = { buildPolicy, actionsFor, iamPrefix, ACTION_EXCEPTIONS }
