//! End-to-end tests: the real service over HTTP, against real PostgreSQL and Redis (and the embedded
//! default). Each test owns its database and queue name, so tests run in parallel.

mod absence_backlog;
mod admission;
mod auth;
mod contract;
mod dashboard;
mod db_outage;
mod dead_jobs;
mod durability;
mod exactly_once;
mod ingest;
mod lifecycle_bench;
mod lifecycle_erasure;
mod lifecycle_export;
mod lifecycle_retention;
mod notifications;
mod notify_server;
mod openapi;
mod outbox_leases;
mod private_redis;
mod proxy;
mod queries;
mod queue;
mod readme;
mod registry_revision;
mod rules_api;
mod rules_arrival;
mod rules_dry_run;
mod rules_revision;
mod sdk;
mod sdk_outage;
mod sent_at;
mod slow_clients;
mod support;
mod validation;
