// A Firehose delivery stream into an S3 bucket on moto, and the records delivered into it.
export async function createDeliveryStream(AWS, endpoint, { bucket, stream }) {
  const config = { endpoint, region: 'us-west-2', s3ForcePathStyle: true }
  const s3 = new AWS.S3(config)
  const firehose = new AWS.Firehose(config)
  await s3.createBucket({ Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: 'us-west-2' } }).promise()
  await firehose.createDeliveryStream({
    DeliveryStreamName: stream,
    DeliveryStreamType: 'DirectPut',
    ExtendedS3DestinationConfiguration: {
      BucketARN: `arn:aws:s3:::${bucket}`,
      RoleARN: 'arn:aws:iam::123456789012:role/firehose',
      Prefix: 'calls/',
    },
  }).promise()
  return { s3 }
}

/** Every JSON line in every object of the bucket, and how many objects there were. */
export async function deliveredRecords(s3, bucket) {
  const listing = await s3.listObjectsV2({ Bucket: bucket }).promise()
  const records = []
  for (const object of listing.Contents ?? []) {
    const body = await s3.getObject({ Bucket: bucket, Key: object.Key }).promise()
    for (const line of body.Body.toString('utf8').split('\n').filter(Boolean)) records.push(JSON.parse(line))
  }
  return { records, objects: (listing.Contents ?? []).length }
}
