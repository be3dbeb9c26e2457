// The server the proxies forward to, alone in its own Node process so that it does not share the
// client's event loop: HTTPS on 127.0.0.1 with a certificate for the AWS host names the client uses.
// A small request gets a small SQS-shaped answer; an upload is read to its end and answered with
// the number of bytes received.
import fs from 'node:fs'
import https from 'node:https'

const [certPath, keyPath] = process.argv.slice(2)

const SMALL_RESPONSE = Buffer.from('<?xml version="1.0"?><GetQueueUrlResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">' +
  '<GetQueueUrlResult><QueueUrl>https://sqs.us-east-1.amazonaws.com/123456789012/bench</QueueUrl></GetQueueUrlResult>' +
  '<ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata></GetQueueUrlResponse>')

const server = https.createServer({ cert: fs.readFileSync(certPath), key: fs.readFileSync(keyPath), keepAliveTimeout: 30_000 }, (request, response) => {
  let received = 0
  request.on('data', (chunk) => { received += chunk.length })
  request.on('end', () => {
    if (request.method === 'PUT') {
      response.writeHead(200, { 'content-type': 'text/plain', 'x-amz-request-id': 'bench' })
      response.end(String(received))
      return
    }
    response.writeHead(200, { 'content-type': 'text/xml', 'x-amzn-requestid': '00000000-0000-0000-0000-000000000000', 'content-length': SMALL_RESPONSE.length })
    response.end(SMALL_RESPONSE)
  })
})

server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }))
process.on('disconnect', () => process.exit(0))
