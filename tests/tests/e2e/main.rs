//! End-to-end tests: the real service over HTTP, against real PostgreSQL and Redis (and the embedded
//! default). Each test owns its database and queue name, so tests run in parallel.

mod absence_backlog;
mod admission;
mod auth;
mod db_outage;
mod dead_jobs;
mod durability;
mod exactly_once;
mod ingest;
mod notifications;
mod notify_server;
mod openapi;
mod outbox_leases;
mod private_redis;
mod proxy;
mod queries;
mod queue;
mod registry_revision;
mod rules_arrival;
mod sdk;
mod segment;
mod segment_sdk;
mod sent_at;
mod slow_clients;
mod support;
mod validation;
