//! The result of a run: one JSON document, the targets it is checked against, and a summary table.

use crate::db::CopyResult;
use crate::e2e::E2eResult;
use crate::load::LoadResult;
use crate::procs::{CpuSnapshot, ProcessPeak};
use crate::queries::{Query, QueryResults};
use crate::storage::{DiskUse, IndexCosts};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Version of the JSON layout; bump when a field changes meaning.
pub const SCHEMA: &str = "eye-bench/2";

/// The machine and services the numbers were measured on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs.
    pub nproc: usize,
    /// Total memory, MiB.
    pub memory_mib: u64,
    /// `SHOW server_version`.
    pub postgres: String,
    /// `redis_version` from `INFO server`.
    pub redis: String,
    /// 1/5/15-minute load average just before the run.
    pub load_before: [f64; 3],
}

/// How the run was configured.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Concurrent HTTP connections.
    pub connections: usize,
    /// Events per batch request.
    pub batch_size: u64,
    /// Length of each accept phase, seconds.
    pub accept_duration_s: f64,
    /// Events in the end-to-end phase.
    pub e2e_events: u64,
    /// Events stored before the query phase.
    pub query_events: u64,
}

/// How many processes of each role served the run (one PostgreSQL and one Redis behind them all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Processes {
    /// `eye api` processes the load was spread over.
    pub apis: usize,
    /// `eye worker` processes storing the events.
    pub workers: usize,
}

/// One measured phase with what it cost the machine.
#[derive(Debug, Clone, Serialize)]
pub struct Phase<T> {
    /// The phase's own numbers.
    #[serde(flatten)]
    pub result: T,
    /// CPU seconds spent during the phase, per process role.
    pub cpu_s: CpuSnapshot,
    /// Commands Redis processed during the phase (every client, the workers' polling included).
    pub redis_commands: u64,
    /// Rows added to `events` during the phase.
    pub rows_stored: u64,
    /// 1/5/15-minute load average at the end of the phase.
    pub load_after: [f64; 3],
}

/// Every phase of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Phases {
    /// End to end, on an empty database.
    pub e2e: Phase<E2eResult>,
    /// The raw-COPY limit of the same rows.
    pub copy: CopyResult,
    /// What each index adds to writing those rows.
    pub index_costs: IndexCosts,
    /// Filling up to `query_events` through the service (a second end-to-end measurement, on a fuller table).
    pub fill: Phase<E2eResult>,
    /// Bytes on disk once filled.
    pub disk: DiskUse,
    /// Query latency.
    pub queries: QueryResults,
    /// Accept rate, batches (the workers store concurrently; the backlog is left in the queue).
    pub accept_batch: Phase<LoadResult>,
    /// Accept rate, one event per request.
    pub accept_single: Phase<LoadResult>,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// The machine.
    pub machine: Machine,
    /// The settings.
    pub settings: Settings,
    /// How many api and worker processes ran.
    pub processes: Processes,
    /// The phases.
    pub phases: Phases,
    /// End-to-end rate divided by the COPY rate.
    pub e2e_to_copy: Option<f64>,
    /// Peak resident memory (VmHWM) at the end of the run, MiB, per role: its largest process.
    pub peak_rss_mib: BTreeMap<String, f64>,
    /// Peak resident memory of each process, per role.
    pub peak_rss_per_process_mib: BTreeMap<String, Vec<ProcessPeak>>,
    /// The targets and whether this run met them.
    pub targets: Vec<Target>,
}

/// One target of issue 7.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    /// What is measured.
    pub name: String,
    /// The goal, readable (`>= 30000`).
    pub goal: String,
    /// The measured value.
    pub measured: Option<f64>,
    /// Whether the goal was met.
    pub met: bool,
}

fn at_least(name: &str, goal: f64, measured: Option<f64>) -> Target {
    let met = measured.is_some_and(|m| m >= goal);
    Target {
        name: name.to_owned(),
        goal: format!(">= {goal}"),
        measured,
        met,
    }
}

fn below(name: &str, goal: f64, measured: Option<f64>) -> Target {
    let met = measured.is_some_and(|m| m < goal);
    Target {
        name: name.to_owned(),
        goal: format!("< {goal}"),
        measured,
        met,
    }
}

/// The targets of issues 7 and 14, checked against a run's numbers.
pub fn targets(
    phases: &Phases,
    e2e_to_copy: Option<f64>,
    rss: &BTreeMap<String, f64>,
) -> Vec<Target> {
    let single = &phases.accept_single.result;
    let mut all = vec![
        at_least(
            "accept_batch_events_per_s",
            30_000.0,
            Some(phases.accept_batch.result.events_per_s),
        ),
        at_least(
            "accept_single_events_per_s",
            5_000.0,
            Some(single.events_per_s),
        ),
        below(
            "accept_single_p99_ms",
            20.0,
            single.latency.map(|l| l.p99_ms),
        ),
        at_least("e2e_to_copy_ratio", 0.7, e2e_to_copy),
    ];
    for query in Query::ALL {
        let latency = phases.queries.latency.get(query.key());
        all.push(below(
            &format!("query_{}_p95_ms", query.key()),
            query.target_p95_ms(),
            latency.map(|l| l.p95_ms),
        ));
    }
    all.push(below("api_peak_rss_mib", 50.0, rss.get("api").copied()));
    all.push(below(
        "worker_peak_rss_mib",
        64.0,
        rss.get("worker").copied(),
    ));
    all
}

/// The human summary.
pub fn summary(report: &Report) -> String {
    let p = &report.phases;
    let mut out = String::new();
    let m = &report.machine;
    let _ = writeln!(
        out,
        "\nThe Eye benchmark, {} ({} CPUs, {} MiB, PostgreSQL {}, Redis {}; load before {:?})",
        report.started_at, m.nproc, m.memory_mib, m.postgres, m.redis, m.load_before
    );
    let _ = writeln!(
        out,
        "{} api process(es), {} worker process(es)",
        report.processes.apis, report.processes.workers
    );
    let _ = writeln!(
        out,
        "{:<42} {:>14} {:>10} {:>10}",
        "measure", "rate /s", "p50 ms", "p99 ms"
    );
    for (name, load) in [
        ("accept, batches", &p.accept_batch.result),
        ("accept, single events", &p.accept_single.result),
    ] {
        let (p50, p99) = load
            .latency
            .map_or((f64::NAN, f64::NAN), |l| (l.p50_ms, l.p99_ms));
        let _ = writeln!(
            out,
            "{name:<42} {:>14.0} {p50:>10.2} {p99:>10.2}",
            load.events_per_s
        );
    }
    let _ = writeln!(
        out,
        "{:<42} {:>14.0}",
        format!("end to end ({} events)", p.e2e.result.events),
        p.e2e.result.events_per_s
    );
    let _ = writeln!(
        out,
        "{:<42} {:>14.0}",
        format!(
            "end to end, filling to {} events",
            report.settings.query_events
        ),
        p.fill.result.events_per_s
    );
    let _ = writeln!(
        out,
        "{:<42} {:>14.0}",
        format!("raw COPY ({} rows)", p.copy.rows),
        p.copy.rows_per_s
    );
    let _ = writeln!(
        out,
        "{:<42} {:>14}",
        "end to end / COPY",
        report
            .e2e_to_copy
            .map_or("-".into(), |r| format!("{:.1}%", r * 100.0))
    );
    let _ = writeln!(
        out,
        "{:<42} {:>14} {:>10} {:>10}",
        format!(
            "queries via {} on {} events",
            p.queries.via, p.queries.events
        ),
        "",
        "p50 ms",
        "p95 ms"
    );
    for (query, l) in &p.queries.latency {
        let _ = writeln!(
            out,
            "  {query:<40} {:>14} {:>10.2} {:>10.2}",
            "", l.p50_ms, l.p95_ms
        );
    }
    let _ = writeln!(
        out,
        "{:<42} {:>14.0}",
        format!("disk bytes per event at {} events", p.disk.events),
        p.disk.bytes_per_event
    );
    for (part, bytes) in &p.disk.per_event {
        let cost = p.index_costs.indexes.get(part);
        let _ = writeln!(
            out,
            "  {part:<40} {bytes:>14.0} bytes {}",
            cost.map_or(String::new(), |c| format!(
                "{:+.2} µs/row",
                c.extra_us_per_row
            ))
        );
    }
    for (role, mib) in &report.peak_rss_mib {
        let _ = writeln!(out, "{:<42} {:>14.1}", format!("peak RSS {role}, MiB"), mib);
    }
    for (role, peaks) in report
        .peak_rss_per_process_mib
        .iter()
        .filter(|(_, peaks)| peaks.len() > 1)
    {
        let each: Vec<String> = peaks.iter().map(|p| format!("{:.1}", p.mib)).collect();
        let _ = writeln!(out, "  each {role} process, MiB: {}", each.join(", "));
    }
    let _ = writeln!(out, "\ntargets:");
    for t in &report.targets {
        let measured = t.measured.map_or("-".into(), |v| format!("{v:.2}"));
        let _ = writeln!(
            out,
            "  [{}] {:<44} {:>12} (goal {})",
            if t.met { "met" } else { "MISSED" },
            t.name,
            measured,
            t.goal
        );
    }
    out
}

#[cfg(test)]
mod tests;
