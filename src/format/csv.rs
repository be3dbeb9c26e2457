//! CSV with the columns of the awscsm2csv tool, then exception, timing and context columns.

use crate::csm::parse_datagram;
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

/// The CSM field behind a column whose header differs from the field name.
fn csm_field(column: &str) -> &str {
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

    pub fn write(&mut self, records: &[Record], out: &mut Vec<u8>) -> Result<(), csv::Error> {
        let mut writer = csv::WriterBuilder::new().from_writer(out);
        if std::mem::take(&mut self.header_pending) {
            writer.write_record(CSV_COLUMNS)?;
        }
        let mut row: Vec<String> = Vec::with_capacity(CSV_COLUMNS.len());
        for record in records {
            // Stored events were produced by the parser, so they parse again.
            let event = parse_datagram(record.event_json().as_bytes(), true)
                .expect("buffered events are valid CSM JSON");
            let context = record.context();
            row.clear();
            for column in CSV_COLUMNS {
                let cell = match *column {
                    "functionName" => context.info.function_name.clone(),
                    "functionVersion" => context.info.function_version.clone(),
                    "awsRequestId" => context.info.aws_request_id.clone(),
                    "phase" => Some(context.phase.as_str().to_owned()),
                    "coldStart" => context.info.cold_start.map(|c| c.to_string()),
                    "recordedAt" => Some(record.recorded_at().to_string()),
                    other => event.field_text(csm_field(other)).map(|t| t.into_owned()),
                };
                row.push(cell.unwrap_or_default());
            }
            writer.write_record(&row)?;
        }
        writer.flush()?;
        Ok(())
    }
}
