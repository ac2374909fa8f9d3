use chrono::TimeZone;

use super::*;

fn at(hour: u32, minute: u32, second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2021, 2, 28, hour, minute, second)
        .single()
        .expect("a valid time")
}

const SKEW_SECONDS: i64 = 30;

fn skew() -> TimeDelta {
    TimeDelta::seconds(SKEW_SECONDS)
}

#[test]
fn timestamps_up_to_exactly_the_skew_after_reception_are_accepted_and_one_second_more_is_future() {
    let received = at(16, 0, 0);
    let cases = [
        (at(15, 0, 0), true),
        (received, true),
        (at(16, 0, 30), true),
        (at(16, 0, 31), false),
        (at(17, 0, 0), false),
    ];
    for (timestamp, accepted) in cases {
        let verdict = judge_time(timestamp, None, received, skew());
        assert_eq!(verdict.is_ok(), accepted, "timestamp {timestamp}");
    }
}

#[test]
fn without_sent_at_the_timestamp_is_kept_uncorrected() {
    let time = judge_time(at(15, 0, 0), None, at(16, 0, 0), skew()).expect("not future");
    assert_eq!(time.original(), at(15, 0, 0));
    assert_eq!(time.corrected(), at(15, 0, 0));
    assert_eq!(time.clock_offset(), None);
}

#[test]
fn a_device_clock_one_hour_fast_is_corrected_and_accepted() {
    // The device thinks it is 17:00 when the server receives the event at 16:00.
    let (timestamp, sent_at, received) = (at(16, 59, 0), at(17, 0, 0), at(16, 0, 0));
    let time = judge_time(timestamp, Some(sent_at), received, skew()).expect("corrected");
    assert_eq!(time.corrected(), at(15, 59, 0));
    assert_eq!(time.clock_offset(), Some(TimeDelta::hours(-1)));
}

#[test]
fn with_sent_at_the_original_timestamp_is_kept() {
    let (timestamp, sent_at, received) = (at(10, 0, 0), at(10, 5, 0), at(10, 5, 2));
    let time = judge_time(timestamp, Some(sent_at), received, skew()).expect("not future");
    assert_eq!(time.original(), at(10, 0, 0));
    assert_eq!(time.corrected(), at(10, 0, 2));
}

#[test]
fn with_sent_at_the_skew_boundary_applies_to_the_corrected_time() {
    // The device clock is right; the event claims to come after it was sent.
    let (sent_at, received) = (at(16, 0, 0), at(16, 0, 0));
    let cases = [(at(16, 0, 30), true), (at(16, 0, 31), false)];
    for (timestamp, accepted) in cases {
        let verdict = judge_time(timestamp, Some(sent_at), received, skew());
        assert_eq!(verdict.is_ok(), accepted, "timestamp {timestamp}");
    }
}

#[test]
fn a_future_timestamp_explains_by_how_much_it_is_ahead() {
    let error = judge_time(at(17, 0, 0), None, at(16, 0, 0), skew()).expect_err("future");
    assert_eq!(
        error.detail(),
        "timestamp 2021-02-28 17:00:00 UTC (corrected to 2021-02-28 17:00:00 UTC) is 3600s after \
         the event was received at 2021-02-28 16:00:00 UTC; at most 30s is tolerated"
    );
}

#[test]
fn a_future_timestamp_with_sent_at_stays_a_future_timestamp() {
    let (sent_at, received) = (at(16, 0, 0), at(16, 0, 0));
    let error = judge_time(at(17, 0, 0), Some(sent_at), received, skew()).expect_err("future");
    assert!(matches!(error, TimeRejection::Future(_)), "{error:?}");
}

fn year(year: i32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid time")
}

#[test]
fn a_sent_at_that_would_move_the_timestamp_before_1970_or_out_of_range_is_invalid() {
    let received = at(16, 0, 0);
    let cases = [
        // (timestamp, sent_at, invalid)
        (at(15, 59, 0), year(9999), true),
        (at(15, 59, 0), DateTime::<Utc>::MAX_UTC, true),
        (at(15, 59, 0), DateTime::<Utc>::MIN_UTC, true),
        (at(15, 59, 0), year(2100), true),
        // A clock reset to 1970 is what sent_at exists to correct.
        (year(1970), year(1970) + TimeDelta::minutes(5), false),
        (at(15, 59, 0), year(2030), false),
        (at(15, 59, 0), at(17, 0, 0), false),
        // A correction forward in time is judged by the future rule.
        (at(15, 59, 0), year(1), false),
        (year(1960), year(1960) + TimeDelta::minutes(5), false),
        // An uncorrected timestamp before 1970 is not sent_at's fault; moving one earlier is.
        (year(1960), received, false),
        (year(1960), received + TimeDelta::days(1), true),
    ];
    for (timestamp, sent_at, invalid) in cases {
        let verdict = judge_time(timestamp, Some(sent_at), received, skew());
        let refused = matches!(verdict, Err(TimeRejection::InvalidSentAt(_)));
        assert_eq!(
            refused, invalid,
            "{timestamp} sent at {sent_at}: {verdict:?}"
        );
    }
}

#[test]
fn an_invalid_sent_at_explains_the_correction_it_would_make() {
    let error = judge_time(at(16, 0, 0), Some(year(9999)), at(16, 0, 0), skew())
        .expect_err("invalid sent_at");
    let detail = error.detail();
    assert!(
        detail.starts_with(
            "sent_at 9999-01-01 00:00:00 UTC is implausible: correcting timestamp \
         2021-02-28 16:00:00 UTC by -"
        ),
        "{detail}"
    );
    assert!(
        detail
            .contains("by -251756236800s (received at 2021-02-28 16:00:00 UTC) gives -5957-04-29"),
        "{detail}"
    );
    assert!(
        detail.ends_with(
            "may not move a timestamp before 1970-01-01 00:00:00 UTC or out of the \
         representable range"
        ),
        "{detail}"
    );
}
