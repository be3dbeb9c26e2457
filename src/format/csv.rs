//! CSV with the columns of the awscsm2csv tool, then exception, timing and context columns.

use serde_json::Value;

use crate::record::Record;

/// Column headers, in order. The first twelve are awscsm2csv's; `Attempts` is `AttemptCount`.
pub const CSV_COLUMNS: &[&str] = &[
    "Type",
    "Region",
    "Service",
    "Api",
    "XAmznRequestId",
    "Attempts",
    "Latency",
    "Timestamp",
    "Version",
    "HttpStatusCode",
    "FinalHttpStatusCode",
    "MaxRetriesExceeded",
    "AwsException",
    "AwsExceptionMessage",
    "SdkException",
    "SdkExceptionMessage",
    "FinalAwsException",
    "FinalAwsExceptionMessage",
    "FinalSdkException",
    "FinalSdkExceptionMessage",
    "AttemptLatency",
    "ClientId",
    "Fqdn",
    "UserAgent",
    "XAmzRequestId",
    "XAmzId2",
    "functionName",
    "functionVersion",
    "awsRequestId",
    "phase",
    "coldStart",
    "recordedAt",
];

/// The record field behind a column whose header differs from the field name.
fn record_field(column: &str) -> &str {
    match column {
        "Attempts" => "AttemptCount",
        other => other,
    }
}

/// Writes records as CSV rows; the header is written once, before the first row, if asked for.
pub struct CsvWriter {
    header_pending: bool,
}

impl CsvWriter {
    pub fn new(write_header: bool) -> Self {
        CsvWriter {
            header_pending: write_header,
        }
    }

    /// Writes buffered records.
    pub fn write(&mut self, records: &[Record], out: &mut Vec<u8>) -> Result<(), CsvError> {
        let json: Vec<String> = records.iter().map(Record::to_json).collect();
        self.write_json(json.iter().map(String::as_str), out)
    }

    /// Writes records given as full record JSON objects (as the JSON Lines output has them).
    pub fn write_json<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a str>,
        out: &mut Vec<u8>,
    ) -> Result<(), CsvError> {
        let mut writer = csv::WriterBuilder::new().from_writer(out);
        if std::mem::take(&mut self.header_pending) {
            writer.write_record(CSV_COLUMNS)?;
        }
        let mut row: Vec<String> = Vec::with_capacity(CSV_COLUMNS.len());
        for json in records {
            let record: serde_json::Map<String, Value> = serde_json::from_str(json)?;
            row.clear();
            row.extend(
                CSV_COLUMNS
                    .iter()
                    .map(|column| match record.get(record_field(column)) {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(text)) => text.clone(),
                        Some(other) => other.to_string(),
                    }),
            );
            writer.write_record(&row)?;
        }
        writer.flush().map_err(|e| CsvError::Csv(e.into()))?;
        Ok(())
    }
}

/// Why records could not be written as CSV.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("{0}")]
    Csv(#[from] csv::Error),
    #[error("a record is not a JSON object: {0}")]
    Json(#[from] serde_json::Error),
}

#[cfg(test)]
mod tests {
    use super::CSV_COLUMNS;
    use crate::csm::RECORDER_FIELDS;

    #[test]
    fn the_last_columns_are_the_recorders_own_fields() {
        assert_eq!(
            &CSV_COLUMNS[CSV_COLUMNS.len() - RECORDER_FIELDS.len()..],
            RECORDER_FIELDS
        );
    }
}
