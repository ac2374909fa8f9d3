//! Stored events as a dry run reads them: one application's events of some types in a time range, per
//! user in event-time order, streamed.

use crate::entities::events;
use crate::rule_events::RuleEventRow;
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use eye_domain::ApplicationId;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Select,
};
use std::ops::ControlFlow;

/// Which stored events a dry run reads.
#[derive(Debug, Clone)]
pub struct HistoryFilter<'a> {
    /// The application.
    pub application: ApplicationId,
    /// The event types, as (category, name).
    pub types: &'a [(&'a str, &'a str)],
    /// Inclusive start (event time).
    pub from: DateTime<Utc>,
    /// Exclusive end (event time).
    pub to: DateTime<Utc>,
}

impl HistoryFilter<'_> {
    fn select(&self) -> Select<events::Entity> {
        use events::Column as C;
        let types = self
            .types
            .iter()
            .fold(Condition::any(), |any, (category, name)| {
                let both = Condition::all().add(C::Category.eq(*category));
                any.add(both.add(C::Name.eq(*name)))
            });
        events::Entity::find()
            .filter(C::ApplicationId.eq(self.application.as_uuid()))
            .filter(C::UserId.is_not_null())
            .filter(C::Timestamp.gte(self.from))
            .filter(C::Timestamp.lt(self.to))
            .filter(types)
    }
}

impl Store {
    /// How many stored events the filter selects (a dry run's work, known before it starts).
    pub async fn count_history(&self, filter: &HistoryFilter<'_>) -> Result<u64, StoreError> {
        if filter.types.is_empty() {
            return Ok(0);
        }
        Ok(filter.select().count(&self.db).await?)
    }

    /// Hands each selected event to `visit`, ordered by user, then event time (ties by storage order),
    /// streaming them: only the row at hand is held. `visit` may stop early with `Break`.
    pub async fn for_each_history_event(
        &self,
        filter: &HistoryFilter<'_>,
        mut visit: impl FnMut(RuleEventRow) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        use events::Column as C;
        use futures::TryStreamExt;
        if filter.types.is_empty() {
            return Ok(());
        }
        let mut rows = filter
            .select()
            .order_by_asc(C::UserId)
            .order_by_asc(C::Timestamp)
            .order_by_asc(C::Id)
            .stream(&self.db)
            .await?;
        while let Some(row) = rows.try_next().await? {
            if visit(RuleEventRow::from(row)).is_break() {
                break;
            }
        }
        Ok(())
    }
}
