//! Starting the notification rules: seeding the published rules from the rules file at the first start,
//! the reactor, and in worker processes the timer sweeper and the notifier that delivers the outbox.

use crate::Config;
use anyhow::Context;
use eye_rules::{DEFAULT_RULES_TOML, Definition, definitions_from_toml};
use eye_store::Store;
use eye_worker::Queue;
use eye_worker::notify::{Notifier, NotifyRetry, NotifySettings};
use eye_worker::rules::{
    RuleBook, RuleReactor, SharedClock, Sweeper, SweeperSettings, SystemClock,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Pause between sweeps of due absence timers.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Pause between polls of an idle outbox.
const NOTIFY_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Longest delay between two delivery attempts.
const NOTIFY_MAX_DELAY: Duration = Duration::from_secs(300);

/// The rules of `EYE_RULES`, or the built-in seed rules, checked.
pub fn file_rules(config: &Config) -> anyhow::Result<Vec<Definition>> {
    let Some(path) = &config.rules else {
        return definitions_from_toml(DEFAULT_RULES_TOML).context("the built-in rules are invalid");
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read EYE_RULES={}", path.display()))?;
    definitions_from_toml(&text).with_context(|| format!("EYE_RULES={}", path.display()))
}

/// Publishes each rule of the rules file as version 1 unless a rule of that name was ever published
/// (deleted ones included): the file seeds the rules at the first start, the API manages them after.
pub async fn seed_rules(config: &Config, store: &Store) -> anyhow::Result<()> {
    for definition in file_rules(config)? {
        let seeded = store
            .seed_rule(&definition.name, &definition.body)
            .await
            .context("cannot seed the notification rules")?;
        if seeded {
            tracing::info!(rule = %definition.name, "published a rule from the rules file");
        }
    }
    Ok(())
}

/// Seeds the rules, then answers the reactor that evaluates stored events against the published rules.
pub async fn reactor(config: &Config, store: &Store) -> anyhow::Result<RuleReactor> {
    seed_rules(config, store).await?;
    Ok(RuleReactor::new(RuleBook::new()))
}

/// Spawns the timer sweeper and the notifier that delivers the outbox (in worker processes).
pub fn start_rule_tasks(
    config: &Config,
    store: &Store,
    queue: &Queue,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<()> {
    let clock: SharedClock = Arc::new(SystemClock);
    let sweeper = Sweeper::new(
        store.clone(),
        clock.clone(),
        SweeperSettings {
            lateness: config.rule_lateness,
            interval: SWEEP_INTERVAL,
            in_transit: config.ingest_deadline + config.queue_push_timeout,
        },
    )
    .with_queue(queue.clone());
    tasks.spawn(sweeper.run(shutdown.clone()));
    let notifier = Notifier::new(store.clone(), clock, notify_settings(config))?;
    tasks.spawn(notifier.run(shutdown.clone()));
    Ok(())
}

fn notify_settings(config: &Config) -> NotifySettings {
    NotifySettings {
        url: config.notify_url.clone(),
        timeout: config.notify_timeout,
        poll_interval: NOTIFY_POLL_INTERVAL,
        retry: NotifyRetry {
            max_attempts: config.notify_max_attempts,
            min_delay: config.notify_retry_delay,
            max_delay: NOTIFY_MAX_DELAY.max(config.notify_retry_delay),
        },
    }
}
