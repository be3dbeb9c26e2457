//! A table for people reading `listen` as it runs: one line per event, clock time first.

use std::borrow::Cow;
use std::io::Write;

use crate::csm::{CsmEvent, EventType};
use crate::record::Record;

/// The header line, laid out as the rows are.
pub fn header() -> String {
    format!(
        "{:<12}  {:<7}  {:<36}  {:>6}  {:>6}  DETAIL\n",
        "TIME", "EVENT", "SERVICE API", "STATUS", "MS"
    )
}

/// Appends the line of one event.
pub fn write_row(record: &Record, event: &CsmEvent<'_>, out: &mut Vec<u8>) {
    let call = event.event_type == EventType::ApiCall;
    let label = match &event.event_type {
        EventType::ApiCall => "call",
        EventType::ApiCallAttempt => "attempt",
        EventType::Other(other) => other,
    };
    let (status, latency, exception, message) = if call {
        (
            event.final_http_status_code,
            event.latency,
            first_present([&event.final_aws_exception, &event.final_sdk_exception]),
            first_present([
                &event.final_aws_exception_message,
                &event.final_sdk_exception_message,
            ]),
        )
    } else {
        (
            event.http_status_code,
            event.attempt_latency,
            first_present([&event.aws_exception, &event.sdk_exception]),
            first_present([&event.aws_exception_message, &event.sdk_exception_message]),
        )
    };
    let mut detail = Vec::new();
    if let (true, Some(count)) = (call, event.attempt_count) {
        detail.push(format!(
            "{count} attempt{}",
            if count == 1 { "" } else { "s" }
        ));
    }
    if call && event.max_retries_exceeded == Some(1) {
        detail.push("retries exhausted".to_owned());
    }
    if let Some(exception) = exception {
        detail.push(match message {
            Some(message) => format!("{exception}: {message}"),
            None => exception.to_owned(),
        });
    }
    let time = clock_time(
        event
            .timestamp
            .unwrap_or_else(|| record.recorded_at() as i64),
    );
    let api = format!(
        "{} {}",
        event.service.as_deref().unwrap_or("?"),
        event.api.as_deref().unwrap_or("?")
    );
    let detail = detail.join("; ");
    let detail = one_line(&detail);
    let line = format!(
        "{time:<12}  {label:<7}  {api:<36}  {:>6}  {:>6}  {detail}",
        text_or_dash(status),
        text_or_dash(latency),
    );
    let _ = writeln!(out, "{}", line.trim_end());
}

fn first_present<'a>(values: [&'a Option<Cow<'_, str>>; 2]) -> Option<&'a str> {
    values
        .into_iter()
        .find_map(|value| value.as_deref().filter(|text| !text.is_empty()))
}

fn text_or_dash(value: Option<i64>) -> Cow<'static, str> {
    value.map_or(Cow::Borrowed("-"), |n| Cow::Owned(n.to_string()))
}

/// Line breaks in messages would break the table's one line per event.
fn one_line(text: &str) -> Cow<'_, str> {
    if !text.contains(['\r', '\n']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut in_break = false;
    for c in text.chars() {
        if c == '\r' || c == '\n' {
            if !in_break {
                out.push(' ');
            }
            in_break = true;
        } else {
            out.push(c);
            in_break = false;
        }
    }
    Cow::Owned(out)
}

/// `HH:MM:SS.mmm` in local time.
fn clock_time(epoch_ms: i64) -> String {
    let (seconds, millis) = (epoch_ms.div_euclid(1000), epoch_ms.rem_euclid(1000));
    let (hour, minute, second) = local_hms(seconds);
    format!("{hour:02}:{minute:02}:{second:02}.{millis:03}")
}

#[cfg(unix)]
fn local_hms(seconds: i64) -> (i64, i64, i64) {
    let time = seconds as libc::time_t;
    // SAFETY: localtime_r writes only into the `tm` it is given, which lives on this stack.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&time, &mut tm) }.is_null() {
        return utc_hms(seconds);
    }
    (tm.tm_hour.into(), tm.tm_min.into(), tm.tm_sec.into())
}

#[cfg(not(unix))]
fn local_hms(seconds: i64) -> (i64, i64, i64) {
    utc_hms(seconds)
}

fn utc_hms(seconds: i64) -> (i64, i64, i64) {
    let of_day = seconds.rem_euclid(86_400);
    (of_day / 3600, of_day % 3600 / 60, of_day % 60)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::attribution::{InvocationInfo, RecordContext};
    use crate::csm::parse_event;

    fn line(json: &str) -> String {
        let record = Record::new(
            json.to_owned(),
            Arc::new(RecordContext::without_phase(InvocationInfo::default())),
            0,
        );
        let event = parse_event(json.as_bytes(), false).unwrap();
        let mut out = Vec::new();
        write_row(&record, &event, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_failed_call_shows_its_attempts_exhaustion_and_exception_on_one_line() {
        let text = line(
            r#"{"Type":"ApiCall","Service":"S3","Api":"GetObject","FinalHttpStatusCode":404,"Latency":12,"AttemptCount":3,"MaxRetriesExceeded":1,"FinalAwsException":"NoSuchKey","FinalAwsExceptionMessage":"gone\r\nfor good","Timestamp":0}"#,
        );
        assert!(
            text.ends_with('\n') && text.lines().count() == 1,
            "{text:?}"
        );
        let columns: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(&columns[1..6], ["call", "S3", "GetObject", "404", "12"]);
        assert!(
            text.trim_end()
                .ends_with("3 attempts; retries exhausted; NoSuchKey: gone for good"),
            "{text:?}"
        );
    }

    #[test]
    fn an_attempt_without_fields_shows_dashes_and_question_marks() {
        let text = line(r#"{"Type":"ApiCallAttempt"}"#);
        let columns: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(&columns[1..], ["attempt", "?", "?", "-", "-"]);
    }

    #[test]
    fn the_header_lines_up_with_the_rows() {
        let row = line(
            r#"{"Type":"ApiCall","Service":"S3","Api":"ListBuckets","FinalHttpStatusCode":200,"Latency":7,"Timestamp":0}"#,
        );
        let header = header();
        let status_end = header.find("STATUS").unwrap() + "STATUS".len();
        assert_eq!(&row[status_end - 3..status_end], "200");
        let ms_end = header.find("  MS").unwrap() + "  MS".len();
        assert_eq!(&row[ms_end - 1..ms_end], "7");
    }
}
