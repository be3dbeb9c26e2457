//! Output formats shared by the file and stdout sinks and the command line.

mod csv;
mod jsonl;
pub mod table;

pub use self::csv::{CSV_COLUMNS, CsvError, CsvRows, CsvWriter, is_numeric_column, record_field};
pub use self::jsonl::write_jsonl;

/// How records are written to a file or stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// One JSON object per line.
    #[default]
    Jsonl,
    /// RFC 4180 CSV with a header row.
    Csv,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "jsonl" => Ok(OutputFormat::Jsonl),
            "csv" => Ok(OutputFormat::Csv),
            other => Err(format!(
                "unknown output format {other:?} (expected jsonl or csv)"
            )),
        }
    }
}

impl OutputFormat {
    /// The format a file name implies: `.csv` is CSV, anything else JSON Lines.
    pub fn for_path(path: &std::path::Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("csv") => OutputFormat::Csv,
            _ => OutputFormat::Jsonl,
        }
    }
}
