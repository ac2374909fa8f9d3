//! Sessions by application and start time.

use super::{Page, SessionCursor, TimeRange, after, paginate, scope_condition};
use crate::entities::sessions;
use crate::{ReadScope, Store, StoreError};
use chrono::{DateTime, Utc};
use eye_domain::ApplicationId;
use sea_orm::sea_query::Expr;
use sea_orm::{Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

/// Which sessions to read.
#[derive(Debug, Clone)]
pub struct SessionFilter {
    /// The applications the reader may see (already narrowed to a requested application).
    pub scope: ReadScope,
    /// When the sessions started (their first event).
    pub range: TimeRange,
    /// Continue after this position.
    pub after: Option<SessionCursor>,
    /// Page size (1..=[`super::MAX_PAGE_SIZE`]).
    pub limit: u64,
}

/// A session's summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    /// The application it belongs to.
    pub application_id: ApplicationId,
    /// Its id, as the application names it.
    pub session_id: String,
    /// Its earliest event.
    pub first_seen: DateTime<Utc>,
    /// Its latest event.
    pub last_seen: DateTime<Utc>,
    /// How many events it has.
    pub event_count: i64,
}

impl From<sessions::Model> for SessionSummary {
    fn from(row: sessions::Model) -> Self {
        Self {
            application_id: row.application_id.into(),
            session_id: row.session_id,
            first_seen: row.first_seen,
            last_seen: row.last_seen,
            event_count: row.event_count,
        }
    }
}

fn after_cursor(cursor: &SessionCursor) -> Expr {
    use sessions::Column as C;
    after(
        vec![Expr::col(C::ApplicationId), Expr::col(C::SessionId)],
        vec![
            Expr::val(cursor.application_id.as_uuid()),
            Expr::val(cursor.session_id.clone()),
        ],
    )
}

impl Store {
    /// One page of sessions in key order (`application_id`, `session_id`), read off the primary key. The key
    /// never changes, so a session that exists when paging starts is on exactly one page however its
    /// events arrive meanwhile; `first_seen` (the range filter) is read as it is when each page is read.
    #[tracing::instrument(skip_all, fields(limit = filter.limit), err)]
    pub async fn query_sessions(
        &self,
        filter: &SessionFilter,
    ) -> Result<Page<SessionSummary, SessionCursor>, StoreError> {
        use sessions::Column as C;
        let Some(scope) = scope_condition(&filter.scope, C::ApplicationId) else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        let condition = Condition::all()
            .add(scope)
            .add(filter.range.condition(C::FirstSeen))
            .add_option(filter.after.as_ref().map(after_cursor));
        let rows = sessions::Entity::find()
            .filter(condition)
            .order_by_asc(C::ApplicationId)
            .order_by_asc(C::SessionId)
            .limit(filter.limit + 1)
            .all(&self.db)
            .await?;
        let page = paginate(rows, filter.limit, |row| SessionCursor {
            application_id: row.application_id.into(),
            session_id: row.session_id.clone(),
        });
        Ok(Page {
            items: page.items.into_iter().map(SessionSummary::from).collect(),
            next: page.next,
        })
    }
}
