//! CSV with the columns of the awscsm2csv tool, then exception, timing and context columns.

use std::sync::OnceLock;

use crate::csm::{CsmEvent, FIELDS, FieldKind, FieldValue, parse_event};
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
    "candidateRequestIds",
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
        let values = event.values();
        let context = record.context();
        let mut number = itoa::Buffer::new();
        let mut candidates = String::new();
        for source in sources() {
            let cell: &[u8] = match *source {
                Source::Event(index) => match values[index] {
                    Some(FieldValue::Str(value)) => value.as_bytes(),
                    Some(FieldValue::Int(value)) => number.format(value).as_bytes(),
                    None => b"",
                },
                Source::FunctionName => text(&context.info.function_name),
                Source::FunctionVersion => text(&context.info.function_version),
                Source::AwsRequestId => text(&context.info.aws_request_id),
                Source::CandidateRequestIds => {
                    candidates.clear();
                    candidates.push_str(&context.candidates.join(" "));
                    candidates.as_bytes()
                }
                Source::Phase => context.phase.map_or("", |phase| phase.as_str()).as_bytes(),
                Source::ColdStart => match context.info.cold_start {
                    Some(true) => b"true",
                    Some(false) => b"false",
                    None => b"",
                },
                Source::RecordedAt => number.format(record.recorded_at()).as_bytes(),
            };
            self.writer.write_field(cell)?;
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

fn text(value: &Option<String>) -> &[u8] {
    value.as_deref().unwrap_or("").as_bytes()
}

/// Where a column's cells come from: an event field (its index in [`FIELDS`]) or a field the
/// recorder adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Event(usize),
    FunctionName,
    FunctionVersion,
    AwsRequestId,
    CandidateRequestIds,
    Phase,
    ColdStart,
    RecordedAt,
}

/// Each column's source, in column order, resolved once.
fn sources() -> &'static [Source] {
    static SOURCES: OnceLock<Vec<Source>> = OnceLock::new();
    SOURCES.get_or_init(|| {
        CSV_COLUMNS
            .iter()
            .map(|column| match record_field(column) {
                "functionName" => Source::FunctionName,
                "functionVersion" => Source::FunctionVersion,
                "awsRequestId" => Source::AwsRequestId,
                "candidateRequestIds" => Source::CandidateRequestIds,
                "phase" => Source::Phase,
                "coldStart" => Source::ColdStart,
                "recordedAt" => Source::RecordedAt,
                field => Source::Event(
                    FIELDS
                        .iter()
                        .position(|(name, _)| *name == field)
                        .unwrap_or_else(|| panic!("CSV column {column} names no CSM field")),
                ),
            })
            .collect()
    })
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
    fn every_column_has_a_source() {
        assert_eq!(super::sources().len(), CSV_COLUMNS.len());
    }

    #[test]
    fn the_last_columns_are_the_recorders_own_fields() {
        assert_eq!(
            &CSV_COLUMNS[CSV_COLUMNS.len() - RECORDER_FIELDS.len()..],
            RECORDER_FIELDS
        );
    }
}
