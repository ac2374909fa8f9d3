//! What the processes under test cost: peak memory and CPU time, read from Linux' `/proc`.

use serde::Serialize;
use std::collections::BTreeMap;

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ; 100 on Linux x86-64 and arm64).
const TICKS_PER_SECOND: f64 = 100.0;

/// The processes whose cost is reported, and how to find them.
#[derive(Debug, Clone)]
pub struct Watched {
    /// `eye api`.
    pub api: Option<u32>,
    /// `eye worker`.
    pub worker: Option<u32>,
}

/// CPU seconds used so far, per role.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuSnapshot(pub BTreeMap<String, f64>);

impl CpuSnapshot {
    /// CPU used between `earlier` and `self`, per role, in seconds.
    pub fn since(&self, earlier: &CpuSnapshot) -> CpuSnapshot {
        let spent = self
            .0
            .iter()
            .map(|(role, now)| {
                let before = earlier.0.get(role).copied().unwrap_or(0.0);
                // A process that exited takes its CPU time with it: never report less than nothing.
                (
                    role.clone(),
                    ((now - before).max(0.0) * 100.0).round() / 100.0,
                )
            })
            .collect();
        CpuSnapshot(spent)
    }
}

impl Watched {
    /// CPU seconds of the api, the worker, this load generator, and every postgres / redis-server process on
    /// the machine (other databases' backends included; backends that exit during a phase are missed).
    pub fn cpu(&self) -> CpuSnapshot {
        let mut roles = BTreeMap::new();
        for (role, pid) in [("api", self.api), ("worker", self.worker)] {
            if let Some(seconds) = pid.and_then(cpu_seconds) {
                roles.insert(role.to_owned(), seconds);
            }
        }
        roles.insert(
            "bench".to_owned(),
            cpu_seconds(std::process::id()).unwrap_or(0.0),
        );
        for (role, comm) in [("postgres", "postgres"), ("redis", "redis-server")] {
            roles.insert(role.to_owned(), cpu_of_command(comm));
        }
        CpuSnapshot(roles)
    }

    /// Peak resident memory (VmHWM) of the api and worker, in MiB.
    pub fn peak_rss_mib(&self) -> BTreeMap<String, f64> {
        [("api", self.api), ("worker", self.worker)]
            .into_iter()
            .filter_map(|(role, pid)| Some((role.to_owned(), vm_hwm_kib(pid?)? as f64 / 1024.0)))
            .collect()
    }
}

/// `VmHWM` of a process, in KiB.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_hwm(&status)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat).map(|ticks| ticks as f64 / TICKS_PER_SECOND)
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line; the command name may hold spaces, so
/// counting starts after its closing parenthesis.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")", field 3 (state) is index 0, so fields 14 and 15 are indexes 11 and 12.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn cpu_of_command(comm: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .filter_map(cpu_seconds)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_resident_memory_is_read_from_the_vm_hwm_line() {
        let status = "Name:\teye\nVmPeak:\t  999 kB\nVmHWM:\t   51234 kB\nVmRSS:\t 40000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(51_234));
        assert_eq!(parse_vm_hwm("Name:\teye\n"), None);
    }

    #[test]
    fn cpu_ticks_are_user_plus_system_even_when_the_name_has_spaces() {
        let stat = "4242 (tokio runtime) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
    }

    #[test]
    fn cpu_spent_is_the_difference_per_role() {
        let before = CpuSnapshot([("api".to_owned(), 1.0)].into());
        let after = CpuSnapshot([("api".to_owned(), 3.5), ("worker".to_owned(), 2.0)].into());
        let spent = after.since(&before);
        assert_eq!(spent.0["api"], 2.5);
        assert_eq!(spent.0["worker"], 2.0);
    }

    #[test]
    fn cpu_of_processes_that_exited_never_goes_negative() {
        let before = CpuSnapshot([("postgres".to_owned(), 30.0)].into());
        let after = CpuSnapshot([("postgres".to_owned(), 10.0)].into());
        assert_eq!(after.since(&before).0["postgres"], 0.0);
    }

    #[test]
    fn this_process_has_a_peak_resident_memory() {
        assert!(vm_hwm_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }
}
