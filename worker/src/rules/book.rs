//! The rules a worker evaluates with: the published ones, cached by revision and reloaded inside the
//! job's own unit of work when a publish or delete moved the revision.

use eye_rules::{Rule, RuleSet, parse_rule};
use eye_store::{IngestTxn, RuleRevision, StoreError, StoredRule};
use std::sync::{Arc, PoisonError, RwLock};

/// The published rules at one revision.
#[derive(Debug, Clone)]
pub struct PublishedRules {
    /// The revision a job's transaction read.
    pub revision: RuleRevision,
    /// The rules live at that revision.
    pub rules: Arc<RuleSet>,
}

/// The published rules, cached per revision (cheap to clone; clones share the cache).
///
/// Each job reads the revision in its own transaction (share-locked there on PostgreSQL, see
/// [`IngestTxn::rule_revision`]) and evaluates with the rules of exactly that revision: a job that began
/// after a publish answered uses the new rules, and no job mixes two versions. The check costs one
/// single-row read per job that has events with a user; the reload, only when the revision moved.
#[derive(Clone, Default)]
pub struct RuleBook {
    current: Arc<RwLock<Option<PublishedRules>>>,
}

impl RuleBook {
    /// An empty book: the first job loads the rules.
    pub fn new() -> Self {
        Self::default()
    }

    /// The rules of the revision `txn` sees: from the cache, or loaded inside `txn`.
    pub async fn rules_for(&self, txn: &IngestTxn) -> Result<PublishedRules, StoreError> {
        let revision = txn.rule_revision().await?;
        if let Some(published) = self.cached(revision) {
            return Ok(published);
        }
        let rules = Arc::new(rule_set(&txn.live_rules().await?));
        tracing::info!(
            revision = revision.get(),
            rules = rules.rules().len(),
            "notification rules loaded"
        );
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        // Another job may have loaded a newer revision meanwhile: keep the newest.
        if current
            .as_ref()
            .is_none_or(|loaded| loaded.revision < revision)
        {
            *current = Some(PublishedRules {
                revision,
                rules: rules.clone(),
            });
        }
        Ok(PublishedRules { revision, rules })
    }

    fn cached(&self, revision: RuleRevision) -> Option<PublishedRules> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current
            .as_ref()
            .filter(|loaded| loaded.revision == revision)
            .cloned()
    }
}

/// The stored rules, checked. The API checks every rule before storing it, so a refusal here means a
/// definition written by an older version of the code that this one reads differently: it is logged and
/// left out rather than stopping every job.
pub fn rule_set(stored: &[StoredRule]) -> RuleSet {
    let rules: Vec<Rule> = stored
        .iter()
        .filter_map(|stored| match parse_rule(&stored.name, &stored.definition) {
            Ok(rule) => Some(rule),
            Err(err) => {
                tracing::error!(rule = %stored.name, version = stored.version, error = %err, "stored rule is invalid; skipped");
                None
            }
        })
        .collect();
    // Names are unique per live rule in the table, so this never refuses.
    RuleSet::from_rules(rules).unwrap_or_default()
}
