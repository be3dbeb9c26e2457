// Firehose flush throughput: ms to deliver 100, 1,000 and 10,000 records to Firehose on a local moto
// server, and records per second. Run: node bench/flush.mjs [repetitions]
import { createRequire } from 'node:module'
import { startMoto, FAKE_CREDENTIALS } from '../__test__/helpers/moto.mjs'
import { createDeliveryStream } from '../__test__/helpers/firehose.mjs'

const require = createRequire(import.meta.url)
const repetitions = Number(process.argv[2] ?? 5)
const SIZES = [100, 1_000, 10_000]

const moto = await startMoto()
try {
  Object.assign(process.env, FAKE_CREDENTIALS, { AWS_ENDPOINT_URL_FIREHOSE: moto.endpoint, AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1' })
  const AWS = require('aws-sdk')
  const { Recorder } = require('../index.js')
  await createDeliveryStream(AWS, moto.endpoint, { bucket: 'bench-flush', stream: 'bench-flush' })
  const recorder = new Recorder({ port: 0, deliveryStreamName: 'bench-flush', maxBufferedRecords: 20_000 })
  // A typical botocore ApiCallAttempt, about 560 bytes.
  const event = JSON.stringify({
    Version: 1, ClientId: '', Type: 'ApiCallAttempt', Service: 'DynamoDB', Api: 'GetItem', Timestamp: Date.now(),
    AttemptLatency: 12, Fqdn: 'dynamodb.us-west-2.amazonaws.com', UserAgent: 'Boto3/1.44.5 md/Botocore#1.44.5 ua/2.1 os/linux#6.1 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython cfg/retry-mode#standard Botocore/1.44.5',
    AccessKey: 'AKIAIOSFODNN7EXAMPLE', Region: 'us-west-2', HttpStatusCode: 200, XAmznRequestId: 'GGnsUuGkSiAveRvuoZcnc3vFRs0JqfTfRTdAK2hAsY4hJu6kOYeI',
  })
  // Warm up: the client is created and the connection opened on the first flush.
  recorder.ingest(event)
  await recorder.flush({ drainMs: 0 })
  const rows = []
  for (const size of SIZES) {
    const times = []
    for (let r = 0; r < repetitions; r++) {
      for (let i = 0; i < size; i++) recorder.ingest(event)
      const report = await recorder.flush({ drainMs: 0 })
      if (report.delivered !== size) throw new Error(`delivered ${report.delivered} of ${size}: ${report.error}`)
      times.push(report.durationMs)
    }
    times.sort((a, b) => a - b)
    const median = times[Math.floor(times.length / 2)]
    rows.push({
      records: size,
      'PutRecordBatch calls': Math.ceil(size / 500),
      'median ms': median,
      'min ms': times[0],
      'max ms': times[times.length - 1],
      'records/s': Math.round(size / (Math.max(median, 1) / 1000)),
    })
  }
  console.log('Flush to Firehose (moto on 127.0.0.1), median of', repetitions)
  console.table(rows)
} finally {
  await moto.stop()
}
