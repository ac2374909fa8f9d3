//! End-to-end tests: the real service over HTTP, against real PostgreSQL and Redis (and the embedded
//! default). Each test owns its database and queue name, so tests run in parallel.

mod admission;
mod auth;
mod db_outage;
mod ingest;
mod notifications;
mod notify_server;
mod openapi;
mod proxy;
mod queries;
mod queue;
mod sdk;
mod slow_clients;
mod support;
mod validation;
