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
    /// Written with a year before 1000. Year 0 and the years before it parse, but PostgreSQL reads them
    /// only in some forms (its text input refuses year 0, its binary one takes it as 1 BC), so whether such
    /// an event was stored would depend on the path it took. The bound is on the year as written, so that
    /// the spec's pattern says exactly what is accepted (a bound on the UTC instant would depend on the
    /// offset, which no pattern can follow); from the year 1000 on, no offset takes an instant near year 0.
    #[error("out of range: timestamps are accepted from the year 1000 on")]
    BeforeYear1000,
}

/// The first year a timestamp may be written with.
const FIRST_YEAR: i32 = 1000;

/// Parses RFC 3339, or the zone-less form the original applications send (`2021-01-01 09:15:27.243860`),
/// which is taken as UTC.
pub fn parse_timestamp(input: &str) -> Result<DateTime<Utc>, TimestampError> {
    let (written_year, parsed) = match DateTime::parse_from_rfc3339(input) {
        Ok(parsed) => (parsed.year(), parsed.with_timezone(&Utc)),
        Err(_) => NaiveDateTime::parse_from_str(input, "%Y-%m-%d %H:%M:%S%.f")
            .map(|naive| (naive.year(), naive.and_utc()))
            .map_err(|_| TimestampError::Unrecognized)?,
    };
    if written_year < FIRST_YEAR {
        return Err(TimestampError::BeforeYear1000);
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
    fn a_timestamp_written_before_the_year_1000_is_out_of_range() {
        for input in [
            "0000-12-31T23:59:59Z",
            "0999-12-31T23:59:59-01:00",
            "0500-06-01 12:00:00",
            "-0500-06-01 12:00:00",
        ] {
            assert_eq!(
                parse_timestamp(input),
                Err(TimestampError::BeforeYear1000),
                "input {input:?}"
            );
        }
        let first = parse_timestamp("1000-01-01T00:30:00+01:00").expect("written in the year 1000");
        assert_eq!(
            first.year(),
            999,
            "an offset may take it before the year in UTC"
        );
    }
}
