//! Event timestamps as clients send them.

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};

/// Why a timestamp was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// Neither RFC 3339 nor the seeds' `YYYY-MM-DD HH:MM:SS[.ffffff]` form.
    #[error(
        "expected an RFC 3339 timestamp (e.g. 2021-01-01T09:15:27.243860Z) or `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC"
    )]
    Unrecognized,
    /// Before 0001-01-01T00:00:00Z: year 0 and the years before it parse, but PostgreSQL reads them only in
    /// some forms (its text input refuses year 0, its binary one takes it as 1 BC), so whether such an event
    /// was stored would depend on the path it took.
    #[error("out of range: the earliest accepted timestamp is 0001-01-01T00:00:00Z")]
    BeforeYearOne,
}

/// Parses RFC 3339, or the zone-less form the original applications send (`2021-01-01 09:15:27.243860`),
/// which is taken as UTC.
pub fn parse_timestamp(input: &str) -> Result<DateTime<Utc>, TimestampError> {
    let parsed = match DateTime::parse_from_rfc3339(input) {
        Ok(parsed) => parsed.with_timezone(&Utc),
        Err(_) => NaiveDateTime::parse_from_str(input, "%Y-%m-%d %H:%M:%S%.f")
            .map(|naive| naive.and_utc())
            .map_err(|_| TimestampError::Unrecognized)?,
    };
    if parsed.year() < 1 {
        return Err(TimestampError::BeforeYearOne);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn accepted_forms_parse_to_the_same_instant() {
        let expected = Utc
            .with_ymd_and_hms(2021, 1, 1, 9, 15, 27)
            .single()
            .expect("valid date")
            + chrono::Duration::microseconds(243_860);
        for input in [
            "2021-01-01 09:15:27.243860",
            "2021-01-01T09:15:27.243860Z",
            "2021-01-01T10:15:27.243860+01:00",
        ] {
            assert_eq!(parse_timestamp(input), Ok(expected), "input {input}");
        }
    }

    #[test]
    fn the_fitness_apps_second_precision_form_parses() {
        let parsed = parse_timestamp("2021-02-28 16:22:52").expect("valid");
        assert_eq!(parsed.to_rfc3339(), "2021-02-28T16:22:52+00:00");
    }

    #[test]
    fn other_forms_are_refused() {
        for input in [
            "",
            "yesterday",
            "2021-02-30 10:00:00",
            "2021-01-01",
            "1614529372",
        ] {
            assert_eq!(
                parse_timestamp(input),
                Err(TimestampError::Unrecognized),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn a_timestamp_before_the_year_1_is_out_of_range() {
        for input in [
            "0000-12-31T23:59:59Z",
            "0001-01-01T00:30:00+01:00",
            "-0500-06-01 12:00:00",
        ] {
            assert_eq!(
                parse_timestamp(input),
                Err(TimestampError::BeforeYearOne),
                "input {input:?}"
            );
        }
        assert_eq!(
            parse_timestamp("0001-01-01T00:00:00Z").map(|t| t.year()),
            Ok(1)
        );
    }
}
