use super::*;
use crate::stats::LatencySummary;

fn latency(p50: f64, p99: f64) -> Option<LatencySummary> {
    Some(LatencySummary {
        samples: 10,
        p50_ms: p50,
        p95_ms: p99,
        p99_ms: p99,
        max_ms: p99,
    })
}

fn load(events_per_s: f64, p99: f64) -> LoadResult {
    LoadResult {
        requests_accepted: 10,
        events_accepted: 1000,
        failures: BTreeMap::from([(503, 2)]),
        elapsed_s: 20.0,
        events_per_s,
        requests_per_s: events_per_s / 100.0,
        latency: latency(1.0, p99),
    }
}

fn phase<T>(result: T) -> Phase<T> {
    Phase {
        result,
        cpu_s: CpuSnapshot::default(),
        redis_commands: 7,
        rows_stored: 9,
        load_after: [1.0, 2.0, 3.0],
    }
}

fn e2e(events_per_s: f64) -> E2eResult {
    E2eResult {
        events: 500_000,
        complete: true,
        stored: 500_000,
        elapsed_s: 500_000.0 / events_per_s,
        events_per_s,
        send: load(events_per_s, 5.0),
        max_backlog: 1000,
        commits: 5000,
    }
}

fn sample_report() -> Report {
    let queries = QueryResults {
        via: "sql",
        events: 1_000_000,
        latency: BTreeMap::from([
            ("session_events", latency(1.0, 2.0).expect("l")),
            ("user_day_first_page", latency(9.0, 25.0).expect("l")),
        ]),
        last_result_size: BTreeMap::from([("session_events", 20)]),
    };
    let phases = Phases {
        e2e: phase(e2e(20_000.0)),
        copy: CopyResult {
            rows: 500_000,
            elapsed_s: 10.0,
            rows_per_s: 50_000.0,
        },
        index_costs: IndexCosts {
            rows: 500_000,
            bare_copy_s: 5.0,
            indexes: BTreeMap::from([(
                "events_pkey".to_owned(),
                crate::storage::IndexCost {
                    copy_s: 5.5,
                    extra_us_per_row: 1.0,
                },
            )]),
        },
        disk: DiskUse {
            events: 1_000_000,
            table_bytes: 300_000_000,
            index_bytes: BTreeMap::from([("events_pkey".to_owned(), 22_000_000)]),
            bytes_per_event: 322.0,
            per_event: BTreeMap::from([
                ("table".to_owned(), 300.0),
                ("events_pkey".to_owned(), 22.0),
            ]),
            event_counts_bytes: 100_000,
            sessions_bytes: 1_000_000,
        },
        accept_batch: phase(load(31_000.0, 9.0)),
        accept_single: phase(load(4_000.0, 30.0)),
        fill: phase(e2e(10_000.0)),
        queries,
    };
    let rss = BTreeMap::from([("api".to_owned(), 60.0), ("worker".to_owned(), 80.0)]);
    let e2e_to_copy = Some(0.4);
    let targets = targets(&phases, e2e_to_copy, &rss);
    Report {
        schema: SCHEMA,
        started_at: "2026-01-01T00:00:00+00:00".into(),
        machine: Machine {
            nproc: 2,
            memory_mib: 24_000,
            postgres: "15.20".into(),
            redis: "7.0.15".into(),
            load_before: [0.1, 0.2, 0.3],
        },
        settings: Settings {
            connections: 32,
            batch_size: 100,
            accept_duration_s: 20.0,
            e2e_events: 500_000,
            query_events: 1_000_000,
        },
        processes: Processes {
            apis: 2,
            workers: 2,
        },
        phases,
        e2e_to_copy,
        peak_rss_mib: rss,
        peak_rss_per_process_mib: BTreeMap::from([(
            "api".to_owned(),
            vec![
                ProcessPeak { pid: 7, mib: 50.0 },
                ProcessPeak { pid: 8, mib: 60.0 },
            ],
        )]),
        targets,
    }
}

#[test]
fn the_json_report_has_every_phase_under_a_stable_key() {
    let json = serde_json::to_value(sample_report()).expect("serialises");
    assert_eq!(json["schema"], "eye-bench/2");
    for key in [
        "e2e",
        "copy",
        "accept_batch",
        "accept_single",
        "fill",
        "queries",
        "index_costs",
        "disk",
    ] {
        assert!(json["phases"][key].is_object(), "phases.{key}");
    }
    assert_eq!(json["phases"]["accept_batch"]["events_per_s"], 31_000.0);
    assert_eq!(json["phases"]["accept_batch"]["latency"]["p99_ms"], 9.0);
    assert_eq!(json["phases"]["accept_batch"]["failures"]["503"], 2);
    assert_eq!(json["phases"]["accept_batch"]["redis_commands"], 7);
    assert_eq!(json["phases"]["e2e"]["send"]["events_accepted"], 1000);
    assert_eq!(json["phases"]["copy"]["rows_per_s"], 50_000.0);
    assert_eq!(json["phases"]["fill"]["complete"], true);
    assert_eq!(json["phases"]["accept_single"]["rows_stored"], 9);
    assert_eq!(
        json["phases"]["queries"]["latency"]["session_events"]["p95_ms"],
        2.0
    );
    assert_eq!(json["peak_rss_mib"]["api"], 60.0);
    assert_eq!(json["phases"]["disk"]["per_event"]["events_pkey"], 22.0);
    assert_eq!(
        json["phases"]["index_costs"]["indexes"]["events_pkey"]["extra_us_per_row"],
        1.0
    );
    assert_eq!(json["peak_rss_per_process_mib"]["api"][1]["mib"], 60.0);
    assert_eq!(json["processes"]["apis"], 2);
    assert_eq!(json["processes"]["workers"], 2);
    assert_eq!(json["e2e_to_copy"], 0.4);
    assert_eq!(
        json["machine"]["load_before"].as_array().map(Vec::len),
        Some(3)
    );
}

#[test]
fn each_target_is_met_or_missed_by_the_measured_value() {
    let report = sample_report();
    let met: BTreeMap<&str, bool> = report
        .targets
        .iter()
        .map(|t| (t.name.as_str(), t.met))
        .collect();
    assert!(met["accept_batch_events_per_s"]);
    assert!(!met["accept_single_events_per_s"]);
    assert!(!met["accept_single_p99_ms"]);
    assert!(!met["e2e_to_copy_ratio"]);
    assert!(met["query_session_events_p95_ms"]);
    assert!(!met["query_user_day_first_page_p95_ms"]);
    assert!(!met["api_peak_rss_mib"], "60 MiB is over 50");
    assert!(!met["worker_peak_rss_mib"], "80 MiB is over 64");
    assert!(
        !met["query_month_counts_per_day_by_name_p95_ms"],
        "a query not measured is not met"
    );
}

#[test]
fn a_target_without_a_measurement_is_missed() {
    assert!(!at_least("x", 1.0, None).met);
    assert!(!below("x", 1.0, None).met);
}

#[test]
fn the_summary_names_every_target_and_marks_misses() {
    let text = summary(&sample_report());
    assert!(text.contains("[met] accept_batch_events_per_s"), "{text}");
    assert!(text.contains("[MISSED] e2e_to_copy_ratio"), "{text}");
    assert!(text.contains("end to end / COPY"), "{text}");
    assert!(
        text.contains("2 api process(es), 2 worker process(es)"),
        "{text}"
    );
    assert!(text.contains("each api process, MiB: 50.0, 60.0"), "{text}");
}
