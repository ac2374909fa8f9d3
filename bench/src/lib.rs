//! The Eye's benchmark harness: load generation, end-to-end and COPY rates, query latency, process costs.
//! `bench/run.sh` sets up a fresh database and the services and calls the `eye-bench` binary.

pub mod db;
pub mod e2e;
pub mod load;
pub mod procs;
pub mod progress;
pub mod queries;
pub mod report;
pub mod run;
pub mod stats;
pub mod storage;
pub mod workload;
