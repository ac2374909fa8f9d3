//! Events by any combination of application, session, category, name, user and time range.

use super::{EventCursor, EventOrder, Page, TimeRange, after, before, paginate, scope_condition};
use crate::entities::{events, sessions};
use crate::{ReadScope, Store, StoreError};
use chrono::{DateTime, Utc};
use eye_domain::{ApplicationId, Category, EventId, EventName, SessionId, UserId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DbErr, EntityTrait, FromQueryResult, Order, QueryFilter, QueryOrder,
    QuerySelect, Select,
};
use serde_json::value::RawValue;
use uuid::Uuid;

/// Which events to read, and from where.
#[derive(Debug, Clone)]
pub struct EventFilter {
    /// The applications the reader may see (already narrowed to a requested application).
    pub scope: ReadScope,
    /// Only this session.
    pub session_id: Option<SessionId>,
    /// Only this category.
    pub category: Option<Category>,
    /// Only this name.
    pub name: Option<EventName>,
    /// Only this user's events.
    pub user_id: Option<UserId>,
    /// When the events occurred.
    pub range: TimeRange,
    /// Oldest or newest first.
    pub order: EventOrder,
    /// Continue after this position, in `order` (callers refuse a cursor issued for the other order).
    pub after: Option<EventCursor>,
    /// Page size (1..=[`super::MAX_PAGE_SIZE`]).
    pub limit: u64,
}

/// A stored event, as analysts read it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// Its id.
    pub event_id: EventId,
    /// The sender.
    pub application_id: ApplicationId,
    /// Its session.
    pub session_id: String,
    /// Its category.
    pub category: String,
    /// Its name.
    pub name: String,
    /// Its payload, as the database's JSON text: pages are passed on to readers, and parsing each
    /// payload into a tree only to write it out again took ~15 % of the api's CPU per page.
    pub data: Box<RawValue>,
    /// When it occurred.
    pub timestamp: DateTime<Utc>,
    /// When The Eye accepted it.
    pub received_at: DateTime<Utc>,
    /// The user, if sent.
    pub user_id: Option<String>,
    /// The device, if sent.
    pub device_id: Option<String>,
}

/// The columns a page reads: what analysts see, the keyset position, and the payload as text.
#[derive(Debug, FromQueryResult)]
struct EventRow {
    id: i64,
    event_id: Uuid,
    application_id: Uuid,
    session_id: String,
    category: String,
    name: String,
    data: String,
    timestamp: DateTime<Utc>,
    received_at: DateTime<Utc>,
    user_id: Option<String>,
    device_id: Option<String>,
}

impl TryFrom<EventRow> for StoredEvent {
    type Error = StoreError;

    fn try_from(row: EventRow) -> Result<Self, StoreError> {
        let data = RawValue::from_string(row.data)
            .map_err(|err| DbErr::Custom(format!("event {} payload: {err}", row.event_id)))?;
        Ok(Self {
            event_id: row.event_id.into(),
            application_id: row.application_id.into(),
            session_id: row.session_id,
            category: row.category,
            name: row.name,
            data,
            timestamp: row.timestamp,
            received_at: row.received_at,
            user_id: row.user_id,
            device_id: row.device_id,
        })
    }
}

fn filter_condition(filter: &EventFilter, scope: Condition) -> Condition {
    use events::Column as C;
    Condition::all()
        .add(scope)
        .add_option(
            filter
                .session_id
                .as_ref()
                .map(|s| C::SessionId.eq(s.as_str())),
        )
        .add_option(filter.category.as_ref().map(|c| C::Category.eq(c.as_str())))
        .add_option(filter.name.as_ref().map(|n| C::Name.eq(n.as_str())))
        .add_option(filter.user_id.as_ref().map(|u| C::UserId.eq(u.as_str())))
        .add(filter.range.condition(C::Timestamp))
        .add_option(filter.after.map(|cursor| {
            let past = match filter.order {
                EventOrder::Ascending => after,
                EventOrder::Descending => before,
            };
            past(
                vec![Expr::col(C::Timestamp), Expr::col(C::Id)],
                vec![Expr::val(cursor.timestamp), Expr::val(cursor.id)],
            )
        }))
}

/// The page query: the filter, in index order (newest first walks the same indexes backwards), one row
/// more than the page to tell if another follows. It selects an `EventRow`'s columns, not a `Model`'s.
pub(super) fn select_events(filter: &EventFilter, scope: Condition) -> Select<events::Entity> {
    let direction = match filter.order {
        EventOrder::Ascending => Order::Asc,
        EventOrder::Descending => Order::Desc,
    };
    use events::Column as C;
    events::Entity::find()
        .select_only()
        .columns([C::Id, C::EventId, C::ApplicationId, C::SessionId])
        .columns([C::Category, C::Name])
        .column_as(Expr::cust("CAST(data AS TEXT)"), "data")
        .columns([C::Timestamp, C::ReceivedAt, C::UserId, C::DeviceId])
        .filter(filter_condition(filter, scope))
        .order_by(C::Timestamp, direction.clone())
        .order_by(C::Id, direction)
        .limit(filter.limit + 1)
}

impl Store {
    /// One page of events in the order they occurred (`timestamp`, then storage order), oldest or newest
    /// first as the filter asks.
    #[tracing::instrument(skip_all, fields(limit = filter.limit), err)]
    pub async fn query_events(
        &self,
        filter: &EventFilter,
    ) -> Result<Page<StoredEvent, EventCursor>, StoreError> {
        let scope = self.event_scope(filter).await?;
        let Some(scope) = scope_condition(&scope, events::Column::ApplicationId) else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        let rows = select_events(filter, scope)
            .into_model::<EventRow>()
            .all(&self.db)
            .await?;
        let page = paginate(rows, filter.limit, |row| EventCursor {
            timestamp: row.timestamp,
            id: row.id,
            order: filter.order,
        });
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(StoredEvent::try_from)
                .collect::<Result<_, _>>()?,
            next: page.next,
        })
    }

    /// A session id alone does not name a session (applications choose ids freely): narrow the scope to
    /// the applications that have it, so the `(application_id, session_id, timestamp, id)` index applies.
    async fn event_scope(&self, filter: &EventFilter) -> Result<ReadScope, StoreError> {
        let narrow = match (&filter.session_id, &filter.scope) {
            (Some(session), ReadScope::All) => Some(session),
            (Some(session), ReadScope::Applications(apps)) if apps.len() > 1 => Some(session),
            _ => None,
        };
        match narrow {
            Some(session) => Ok(ReadScope::Applications(
                self.session_applications(session, &filter.scope).await?,
            )),
            None => Ok(filter.scope.clone()),
        }
    }

    /// The applications within `scope` that have a session with this id.
    pub async fn session_applications(
        &self,
        session: &SessionId,
        scope: &ReadScope,
    ) -> Result<Vec<ApplicationId>, StoreError> {
        let Some(scope) = scope_condition(scope, sessions::Column::ApplicationId) else {
            return Ok(Vec::new());
        };
        let rows = sessions::Entity::find()
            .filter(sessions::Column::SessionId.eq(session.as_str()))
            .filter(scope)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| row.application_id.into())
            .collect())
    }
}
