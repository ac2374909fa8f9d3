//! Event timestamps as clients send them.

use chrono::{DateTime, NaiveDateTime, Utc};

/// A timestamp that is neither RFC 3339 nor the seeds' `YYYY-MM-DD HH:MM:SS[.ffffff]` form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected an RFC 3339 timestamp (e.g. 2021-01-01T09:15:27.243860Z) or `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC"
)]
pub struct TimestampError;

/// Parses RFC 3339, or the zone-less form the original applications send (`2021-01-01 09:15:27.243860`),
/// which is taken as UTC.
pub fn parse_timestamp(input: &str) -> Result<DateTime<Utc>, TimestampError> {
    if let Ok(parsed) = DateTime::parse_from_rfc3339(input) {
        return Ok(parsed.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(input, "%Y-%m-%d %H:%M:%S%.f")
        .map(|naive| naive.and_utc())
        .map_err(|_| TimestampError)
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
                Err(TimestampError),
                "input {input:?}"
            );
        }
    }
}
