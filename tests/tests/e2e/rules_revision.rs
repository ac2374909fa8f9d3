//! The rules' revision as jobs see it: a publish cannot commit while a job evaluates (PostgreSQL: the
//! job share-locks the revision row), so every job evaluates wholly with one version, and a job that
//! begins after the publish answered evaluates the new rules.

use crate::rules_api::workouts;
use crate::support::{Backend, Isolation};
use eye_rules::RuleName;
use eye_worker::rules::RuleBook;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_waits_for_the_job_evaluating_and_the_next_job_uses_the_new_rule()
-> anyhow::Result<()> {
    let isolation = Isolation::new(Backend::PostgresRedis).await?;
    let store = eye_server::open_store(&isolation.config).await?;
    let (book, other_worker) = (RuleBook::new(), RuleBook::new());
    let job = store.begin_ingest().await?;
    assert!(
        book.rules_for(&job).await?.rules.rules().is_empty(),
        "nothing published yet"
    );

    let name = RuleName::parse("two_workouts")?;
    let definition = workouts(2).as_object().cloned().unwrap_or_default();
    let publisher = tokio::spawn({
        let store = store.clone();
        async move { store.publish_rule(&name, &definition).await }
    });
    // Not a timing assertion: however slow the machine, the publish cannot finish before the commit.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !publisher.is_finished(),
        "a publish commits only after the evaluating job"
    );
    assert!(
        book.rules_for(&job).await?.rules.rules().is_empty(),
        "the job keeps its version"
    );
    job.commit().await?;
    publisher.await??;

    for book in [&book, &other_worker] {
        let next = store.begin_ingest().await?;
        let rules = book.rules_for(&next).await?;
        assert_eq!(
            rules.rules.rules().len(),
            1,
            "every worker's next job evaluates the new rule"
        );
        next.commit().await?;
    }
    drop(store);
    isolation.cleanup().await
}
