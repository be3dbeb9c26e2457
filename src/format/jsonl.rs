//! JSON Lines: one record per line, exactly the objects Firehose receives.

use crate::record::Record;

/// Appends each record as one JSON object followed by a newline.
pub fn write_jsonl(records: &[Record], out: &mut Vec<u8>) {
    for record in records {
        record.write_json(out);
        out.push(b'\n');
    }
}
