//! What the processes under test cost: peak memory and CPU time, read from Linux' `/proc`.

use serde::Serialize;
use std::collections::BTreeMap;

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ; 100 on Linux x86-64 and arm64).
const TICKS_PER_SECOND: f64 = 100.0;

/// The processes whose cost is reported, and how to find them.
#[derive(Debug, Clone, Default)]
pub struct Watched {
    /// Every `eye api` process.
    pub api: Vec<u32>,
    /// Every `eye worker` process.
    pub worker: Vec<u32>,
}

/// The peak resident memory of one process under test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessPeak {
    /// Its pid.
    pub pid: u32,
    /// `VmHWM`, MiB.
    pub mib: f64,
}

/// Peak resident memory per role: each process's, and the largest (what a per-process limit is held to).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeakRss {
    /// Per role, each process in the order given.
    pub per_process: BTreeMap<String, Vec<ProcessPeak>>,
}

impl PeakRss {
    /// The largest process of each role, MiB (the report's `peak_rss_mib`, as with one process per role).
    pub fn max_per_role(&self) -> BTreeMap<String, f64> {
        self.per_process
            .iter()
            .filter_map(|(role, peaks)| {
                let max = peaks.iter().map(|p| p.mib).reduce(f64::max)?;
                Some((role.clone(), max))
            })
            .collect()
    }
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
    /// CPU seconds of the api processes and of the worker processes (each role summed), this load
    /// generator, and every postgres / redis-server process on the machine (other databases' backends
    /// included; backends that exit during a phase are missed).
    pub fn cpu(&self) -> CpuSnapshot {
        let mut roles = BTreeMap::new();
        for (role, pids) in self.roles() {
            if let Some(seconds) = role_total(pids.iter().map(|&pid| cpu_seconds(pid))) {
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

    /// Peak resident memory (VmHWM) of every api and worker process still running.
    pub fn peak_rss(&self) -> PeakRss {
        let per_process = self
            .roles()
            .into_iter()
            .filter(|(_, pids)| !pids.is_empty())
            .map(|(role, pids)| {
                let peaks = pids
                    .iter()
                    .filter_map(|&pid| {
                        let kib = vm_hwm_kib(pid)?;
                        Some(ProcessPeak {
                            pid,
                            mib: kib as f64 / 1024.0,
                        })
                    })
                    .collect();
                (role.to_owned(), peaks)
            })
            .collect();
        PeakRss { per_process }
    }

    fn roles(&self) -> [(&'static str, &[u32]); 2] {
        [("api", &self.api), ("worker", &self.worker)]
    }
}

/// The CPU seconds of a role: the sum over its processes that could be read, none if no process could
/// (so a role that is not watched has no entry rather than a zero).
fn role_total(seconds: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    seconds
        .flatten()
        .fold(None, |sum, s| Some(sum.unwrap_or(0.0) + s))
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
    fn a_roles_cpu_is_the_sum_of_its_readable_processes() {
        assert_eq!(role_total([Some(1.5), Some(2.0)].into_iter()), Some(3.5));
        assert_eq!(role_total([Some(1.5), None].into_iter()), Some(1.5));
        assert_eq!(role_total([None, None].into_iter()), None);
        assert_eq!(role_total(std::iter::empty()), None);
    }

    #[test]
    fn the_peak_of_a_role_is_its_largest_process() {
        let peak = |pid, mib| ProcessPeak { pid, mib };
        let rss = PeakRss {
            per_process: BTreeMap::from([
                ("api".to_owned(), vec![peak(10, 40.0), peak(11, 55.5)]),
                ("worker".to_owned(), vec![peak(20, 70.0)]),
                ("gone".to_owned(), vec![]),
            ]),
        };
        let max = rss.max_per_role();
        assert_eq!(max.get("api"), Some(&55.5));
        assert_eq!(max.get("worker"), Some(&70.0));
        assert_eq!(max.get("gone"), None);
    }

    #[test]
    fn every_watched_process_has_its_own_peak() {
        let me = std::process::id();
        let watched = Watched {
            api: vec![me, me],
            worker: vec![],
        };
        let rss = watched.peak_rss();
        assert_eq!(rss.per_process["api"].len(), 2);
        assert!(!rss.per_process.contains_key("worker"));
        assert!(watched.cpu().0.contains_key("api"));
        assert!(!watched.cpu().0.contains_key("worker"));
    }

    #[test]
    fn this_process_has_a_peak_resident_memory() {
        assert!(vm_hwm_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }
}
