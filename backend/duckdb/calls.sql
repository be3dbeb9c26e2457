-- A DuckDB view over delivered objects copied to a local calls/ folder, for example with
-- `aws s3 sync s3://<bucket>/calls/ calls/`. It has the Glue table's name and columns, so the
-- Athena queries in ../README.md run unchanged; for another stage, rename the schema.
-- DuckDB matches JSON keys case-sensitively, so the columns are spelled as the recorder writes them;
-- queries can still use lowercase names, because DuckDB resolves column names case-insensitively.
CREATE SCHEMA IF NOT EXISTS api_calls_dev;
CREATE OR REPLACE VIEW api_calls_dev.calls AS
SELECT * FROM read_json(
  'calls/**',
  format = 'newline_delimited',
  compression = 'auto',
  ignore_errors = true,
  hive_partitioning = true,
  hive_types = {'date': 'VARCHAR'},
  columns = {
    'Version': 'INTEGER',
    'ClientId': 'VARCHAR',
    'Type': 'VARCHAR',
    'Service': 'VARCHAR',
    'Api': 'VARCHAR',
    'Timestamp': 'BIGINT',
    'Region': 'VARCHAR',
    'UserAgent': 'VARCHAR',
    'AttemptCount': 'INTEGER',
    'Latency': 'INTEGER',
    'MaxRetriesExceeded': 'INTEGER',
    'FinalHttpStatusCode': 'INTEGER',
    'FinalAwsException': 'VARCHAR',
    'FinalAwsExceptionMessage': 'VARCHAR',
    'FinalSdkException': 'VARCHAR',
    'FinalSdkExceptionMessage': 'VARCHAR',
    'Fqdn': 'VARCHAR',
    'AttemptLatency': 'INTEGER',
    'HttpStatusCode': 'INTEGER',
    'AccessKey': 'VARCHAR',
    'XAmznRequestId': 'VARCHAR',
    'XAmzRequestId': 'VARCHAR',
    'XAmzId2': 'VARCHAR',
    'AwsException': 'VARCHAR',
    'AwsExceptionMessage': 'VARCHAR',
    'SdkException': 'VARCHAR',
    'SdkExceptionMessage': 'VARCHAR',
    'Resources': 'MAP(VARCHAR, VARCHAR[])',
    'functionName': 'VARCHAR',
    'functionVersion': 'VARCHAR',
    'awsRequestId': 'VARCHAR',
    'candidateRequestIds': 'VARCHAR[]',
    'phase': 'VARCHAR',
    'coldStart': 'BOOLEAN',
    'recordedAt': 'BIGINT'
  }
);
