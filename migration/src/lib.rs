//! The schema's history. Migrations run unchanged on PostgreSQL and SQLite, and never import entities:
//! each one is frozen at the moment it was written.

use sea_orm_migration::prelude::{MigrationTrait, MigratorTrait, async_trait};

mod m20261122_000001_applications;
mod m20261122_000002_events;
mod m20261122_000003_ingest_errors;
mod m20261122_000004_event_types;
mod m20261122_000005_queries;
mod m20261122_000006_notifications;
mod m20261122_000007_dashboard_counts;
mod m20261130_000008_dead_jobs;
mod m20261130_000009_notification_leases;
mod m20261130_000010_registry_revision;
mod m20261130_000011_rule_checkpoints;
mod m20261130_000012_rules;
mod m20261130_000013_notification_pages;
mod m20261130_000015_erasures;
mod m20261130_000016_event_counts;
mod m20261130_000017_lean_event_indexes;
mod m20261130_000018_rule_state_revision;
mod statements;

/// Applies the migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_applications::Migration),
            Box::new(m20261122_000002_events::Migration),
            Box::new(m20261122_000003_ingest_errors::Migration),
            Box::new(m20261122_000004_event_types::Migration),
            Box::new(m20261122_000005_queries::Migration),
            Box::new(m20261122_000006_notifications::Migration),
            Box::new(m20261122_000007_dashboard_counts::Migration),
            Box::new(m20261130_000008_dead_jobs::Migration),
            Box::new(m20261130_000009_notification_leases::Migration),
            Box::new(m20261130_000010_registry_revision::Migration),
            Box::new(m20261130_000011_rule_checkpoints::Migration),
            Box::new(m20261130_000012_rules::Migration),
            Box::new(m20261130_000013_notification_pages::Migration),
            Box::new(m20261130_000015_erasures::Migration),
            Box::new(m20261130_000016_event_counts::Migration),
            Box::new(m20261130_000017_lean_event_indexes::Migration),
            Box::new(m20261130_000018_rule_state_revision::Migration),
        ]
    }
}
