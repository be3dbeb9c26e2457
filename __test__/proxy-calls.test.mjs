// Naming what the recording proxy saw: the service and operation from the request, the input read
// back from its URI, query, headers and body, and the resources that input names.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { nameProxyEvent } = require('../proxy-calls.js')
const { requestInput } = require('../sdk-v3/operations.js')

/** A proxy `ApiCall` as the addon makes it from the head alone, and its request. */
function call({ service, api, method = 'GET', target = '/', host, headers = {}, body, type = 'ApiCall' }) {
  const event = { Version: 1, Type: type, Service: service, Region: 'us-east-1', ...(api ? { Api: api } : { ApiUnknown: true }) }
  return JSON.parse(nameProxyEvent({ eventJson: JSON.stringify(event), method, target, host, headers, body }))
}

test('S3 REST requests are named from the bindings, virtual-hosted or path-style, and their keys read back', () => {
  const virtual = call({ service: 's3', method: 'GET', target: '/reports/2026/%C3%BCnicode%20file.txt', host: 'my-bucket.s3.amazonaws.com' })
  assert.equal(virtual.Service, 'S3')
  assert.equal(virtual.Api, 'GetObject')
  assert.equal(virtual.ApiUnknown, undefined)
  assert.deepEqual(virtual.Resources, { 's3:GetObject': ['arn:aws:s3:::my-bucket/reports/2026/ünicode file.txt'] })
  const pathStyle = call({ service: 's3', method: 'PUT', target: '/my.bucket/a/b', host: 's3.eu-west-1.amazonaws.com' })
  assert.equal(pathStyle.Api, 'PutObject')
  assert.deepEqual(pathStyle.Resources, { 's3:PutObject': ['arn:aws:s3:::my.bucket/a/b'] })
  // A bucket with dots in a virtual host name.
  const dotted = call({ service: 's3', method: 'HEAD', target: '/', host: 'logs.example.com.s3.us-west-2.amazonaws.com' })
  assert.equal(dotted.Api, 'HeadBucket')
  assert.deepEqual(dotted.Resources, { 's3:ListBucket': ['arn:aws:s3:::logs.example.com'] })
})

test('input from the query and headers chooses the actions: a version, tags at creation, a copy source', () => {
  const version = call({ service: 's3', method: 'DELETE', target: '/k?versionId=3HL4kqtJlcpXroDTDmJ%2BrmSpXd3dIbrHY', host: 'b.s3.amazonaws.com' })
  assert.deepEqual(version.Resources, { 's3:DeleteObjectVersion': ['arn:aws:s3:::b/k'] })
  const plain = call({ service: 's3', method: 'DELETE', target: '/k', host: 'b.s3.amazonaws.com' })
  assert.deepEqual(plain.Resources, { 's3:DeleteObject': ['arn:aws:s3:::b/k'] })
  const tagged = call({ service: 's3', method: 'PUT', target: '/k', host: 'b.s3.amazonaws.com', headers: { 'x-amz-tagging': 'team=a' } })
  assert.deepEqual(Object.keys(tagged.Resources).sort(), ['s3:PutObject', 's3:PutObjectTagging'])
  const copied = requestInput('S3', 'CopyObject', { method: 'PUT', requestPath: '/dest', hostname: 'b.s3.amazonaws.com', headers: { 'x-amz-copy-source': 'src-bucket/key' } })
  assert.equal(copied.CopySource, 'src-bucket/key')
  assert.equal(copied.Bucket, 'b')
  assert.equal(copied.Key, 'dest')
})

test('JSON and form bodies give their members; a secret is named with -?????? however the input named it', () => {
  const json = { 'x-amz-target': 'secretsmanager.GetSecretValue', 'content-type': 'application/x-amz-json-1.1' }
  const byName = call({ service: 'secretsmanager', api: 'GetSecretValue', method: 'POST', host: 'secretsmanager.us-east-1.amazonaws.com', headers: json, body: '{"SecretId":"db/password"}' })
  assert.equal(byName.Service, 'Secrets Manager')
  assert.deepEqual(byName.Resources, { 'secretsmanager:GetSecretValue': ['arn:aws:secretsmanager:us-east-1:*:secret:db/password-??????'] })
  const byArn = call({ service: 'secretsmanager', api: 'GetSecretValue', method: 'POST', host: 'secretsmanager.us-east-1.amazonaws.com', headers: json,
    body: '{"SecretId":"arn:aws:secretsmanager:us-east-1:123456789012:secret:db/password-fErgYE"}' })
  assert.deepEqual(byArn.Resources, { 'secretsmanager:GetSecretValue': ['arn:aws:secretsmanager:us-east-1:123456789012:secret:db/password-??????'] })
  const form = { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }
  const topic = call({ service: 'sns', api: 'CreateTopic', method: 'POST', host: 'sns.us-east-1.amazonaws.com', headers: form,
    body: 'Action=CreateTopic&Version=2010-03-31&Name=orders&Tags.member.1.Key=team&Tags.member.1.Value=a' })
  assert.deepEqual(topic.Resources['sns:TagResource'], ['arn:aws:sns:us-east-1:*:orders'])
  // A topic passes a role only where its attributes name one: then iam:PassRole is on that role.
  assert.equal(topic.Resources['iam:PassRole'], undefined)
  const delivery = 'arn:aws:iam::123456789012:role/sns-delivery'
  const withRole = call({ service: 'sns', api: 'CreateTopic', method: 'POST', host: 'sns.us-east-1.amazonaws.com', headers: form,
    body: `Action=CreateTopic&Version=2010-03-31&Name=orders&Attributes.entry.1.key=SQSFailureFeedbackRoleArn&Attributes.entry.1.value=${encodeURIComponent(delivery)}` })
  assert.deepEqual(withRole.Resources['iam:PassRole'], [delivery])
  // A body too large to read may name a role: the mapping's wildcard stays (the URI alone names none).
  const insight = encodeURIComponent('arn:aws:securityhub:us-east-1:123456789012:insight/123456789012/custom/x')
  const unread = (headers) => call({ service: 'securityhub', api: 'UpdateInsight', method: 'PATCH', target: `/insights/${insight}`,
    host: 'securityhub.us-east-1.amazonaws.com', headers: { 'content-type': 'application/json', ...headers } })
  assert.deepEqual(unread({ 'content-length': '20000' }).Resources['iam:PassRole'], ['*'])
  assert.equal(unread({}).Resources['iam:PassRole'], undefined)
  const role = call({ service: 'iam', api: 'CreateRole', method: 'POST', host: 'iam.amazonaws.com', headers: form,
    body: 'Action=CreateRole&RoleName=app&AssumeRolePolicyDocument=%7B%7D' })
  assert.deepEqual(role.Resources, { 'iam:CreateRole': ['arn:aws:iam::*:role/app'] })
})

test('services that sign alike are told apart by host name; what cannot be named stays unknown, never guessed', () => {
  const control = call({ service: 's3', method: 'GET', target: '/v20180820/configuration/publicAccessBlock', host: '123456789012.s3-control.us-east-1.amazonaws.com',
    headers: { 'x-amz-account-id': '123456789012' } })
  assert.equal(control.Service, 'S3 Control')
  assert.equal(control.Api, 'GetPublicAccessBlock')
  assert.deepEqual(control.Resources, { 's3:GetAccountPublicAccessBlock': ['*'] })
  const unknown = call({ service: 's3', method: 'PATCH', target: '/k', host: 'b.s3.amazonaws.com' })
  assert.equal(unknown.Service, 'S3')
  assert.equal(unknown.Api, undefined)
  assert.equal(unknown.ApiUnknown, true)
  assert.equal(unknown.Resources, undefined)
  const stranger = call({ service: 'no-such-signer', method: 'GET', host: 'x.example.amazonaws.com' })
  assert.equal(stranger.Service, 'no-such-signer')
  assert.equal(stranger.ApiUnknown, true)
})

test('a body cut by the bound, a malformed body or a broken event are recorded as they are, never thrown', () => {
  const json = { 'x-amz-target': 'DynamoDB_20120810.PutItem', 'content-type': 'application/x-amz-json-1.0' }
  // A body over the bound does not reach here (undefined): the action stays, its resource is "*".
  const large = call({ service: 'dynamodb', api: 'PutItem', method: 'POST', host: 'dynamodb.us-east-1.amazonaws.com', headers: json })
  assert.deepEqual(large.Resources, { 'dynamodb:PutItem': ['*'] })
  const malformed = call({ service: 'dynamodb', api: 'PutItem', method: 'POST', host: 'dynamodb.us-east-1.amazonaws.com', headers: json, body: '{"TableName":' })
  assert.deepEqual(malformed.Resources, { 'dynamodb:PutItem': ['*'] })
  const hostile = requestInput('SNS', 'Publish', { method: 'POST', requestPath: '/', hostname: 'sns.us-east-1.amazonaws.com',
    headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '__proto__.polluted=1&a.0.b=2&TopicArn=t' })
  assert.equal({}.polluted, undefined)
  assert.equal(hostile.TopicArn, 't')
  assert.equal(nameProxyEvent({ eventJson: 'not json', method: 'GET', target: '/', host: 'h', headers: {} }), 'not json')
  // Attempts are named but carry no resources: the call does.
  const attempt = call({ type: 'ApiCallAttempt', service: 's3', method: 'GET', target: '/k', host: 'b.s3.amazonaws.com' })
  assert.equal(attempt.Api, 'GetObject')
  assert.equal(attempt.Resources, undefined)
})
