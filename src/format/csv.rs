//! CSV with the columns of the awscsm2csv tool, then exception, timing and context columns.

use std::borrow::Cow;

use crate::csm::{CsmEvent, FIELDS, FieldKind, parse_event};
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

/// The record field behind a column (`Attempts` is `AttemptCount`; the others share their name).
pub fn record_field(column: &str) -> &str {
    match column {
        "Attempts" => "AttemptCount",
        other => other,
    }
}

/// Whether a column holds numbers in records (readers turn its cells back into numbers).
pub fn is_numeric_column(column: &str) -> bool {
    let field = record_field(column);
    field == "recordedAt"
        || FIELDS
            .iter()
            .any(|(name, kind)| *name == field && *kind == FieldKind::Int)
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

    /// Writes buffered records, each from its parsed event and its context.
    pub fn write(&mut self, records: &[Record], out: &mut Vec<u8>) -> Result<(), CsvError> {
        let mut rows = CsvRows::new(out);
        if std::mem::take(&mut self.header_pending) {
            rows.header()?;
        }
        for record in records {
            let event = parse_event(record.event_json().as_bytes(), false)?;
            rows.row(record, &event)?;
        }
        rows.finish()
    }
}

/// Writes CSV rows one by one into `W`, from records and their parsed events.
pub struct CsvRows<W: std::io::Write> {
    writer: csv::Writer<W>,
}

impl<W: std::io::Write> CsvRows<W> {
    pub fn new(out: W) -> Self {
        CsvRows {
            writer: csv::WriterBuilder::new().from_writer(out),
        }
    }

    /// Adds the header row.
    pub fn header(&mut self) -> Result<(), CsvError> {
        Ok(self.writer.write_record(CSV_COLUMNS)?)
    }

    /// Adds the row of `record`, whose event is `event`.
    pub fn row(&mut self, record: &Record, event: &CsmEvent<'_>) -> Result<(), CsvError> {
        for column in CSV_COLUMNS {
            let value = cell(record, event, record_field(column));
            self.writer
                .write_field(value.as_deref().unwrap_or("").as_bytes())?;
        }
        Ok(self.writer.write_record(None::<&[u8]>)?)
    }

    /// Writes out what is still held.
    pub fn finish(mut self) -> Result<(), CsvError> {
        self.writer.flush().map_err(|e| CsvError::Csv(e.into()))
    }

    /// Writes out what is still held and gives the destination back.
    pub fn into_inner(self) -> Result<W, CsvError> {
        self.writer
            .into_inner()
            .map_err(|e| CsvError::Csv(e.into_error().into()))
    }
}

/// One cell: an event field, or one the recorder adds.
fn cell<'a>(record: &'a Record, event: &'a CsmEvent<'_>, field: &str) -> Option<Cow<'a, str>> {
    let context = record.context();
    let text = |value: &'a Option<String>| value.as_deref().map(Cow::Borrowed);
    match field {
        "functionName" => text(&context.info.function_name),
        "functionVersion" => text(&context.info.function_version),
        "awsRequestId" => text(&context.info.aws_request_id),
        "phase" => context.phase.map(|phase| Cow::Borrowed(phase.as_str())),
        "coldStart" => context
            .info
            .cold_start
            .map(|cold| Cow::Owned(cold.to_string())),
        "recordedAt" => Some(Cow::Owned(record.recorded_at().to_string())),
        _ => event
            .field_text(field)
            .map(|text| Cow::Owned(text.into_owned())),
    }
}

/// Why records could not be written as CSV.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("{0}")]
    Csv(#[from] csv::Error),
    #[error("a record's event does not parse: {0}")]
    Event(#[from] crate::csm::ParseError),
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
