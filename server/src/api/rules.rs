//! Notification rules as data (admin token): publish, list, read with versions, delete, and dry-run.
//!
//! A rule object is the JSON form of one `[[rule]]` table of `rules/rules.toml`. Every publish and delete
//! raises the rules' revision in its transaction; each worker job reads the revision in its own
//! transaction, so a job that began after the publish call answered evaluates the new rules.

mod dry_run;
pub(crate) mod wire;

pub use dry_run::{DryRunIn, DryRunOut};
pub use wire::{RuleDetail, RuleIn, RuleList, RuleOut, RulePublishedOut};

use crate::api::auth::AdminToken;
use crate::api::problem::{ApiError, FieldError};
use crate::state::AppState;
use eye_rules::{RuleError, RuleName, parse_rule};
use eye_store::RulePublished;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi, Tags};
use serde_json::{Map, Value};

#[derive(Tags)]
enum RuleTags {
    /// Notification rules: publish, version, delete and dry-run them (admin token).
    Rules,
}

/// The rule endpoints.
pub struct RulesApi;

#[derive(ApiResponse)]
enum PublishResponse {
    /// The rule is new (or was deleted): its first live version.
    #[oai(status = 201)]
    Created(Json<RulePublishedOut>),
    /// A new version of a live rule.
    #[oai(status = 200)]
    NewVersion(Json<RulePublishedOut>),
}

#[derive(ApiResponse)]
enum DeleteResponse {
    /// Deleted: no job that begins from now on evaluates it. Its versions are kept.
    #[oai(status = 204)]
    Deleted,
}

#[derive(ApiResponse)]
enum ListResponse {
    /// The live rules, by name.
    #[oai(status = 200)]
    Rules(Json<RuleList>),
}

#[derive(ApiResponse)]
enum DetailResponse {
    /// The rule and all its versions, newest first.
    #[oai(status = 200)]
    Rule(Json<RuleDetail>),
}

#[derive(ApiResponse)]
enum DryRunResponse {
    /// What the rule would have decided over the range: nothing was sent or written.
    #[oai(status = 200)]
    Decided(Json<DryRunOut>),
}

/// A rule refusal as a 400 naming the field, under `prefix` (e.g. `rule.` inside a dry run).
pub(crate) fn invalid_rule(err: &RuleError, prefix: &str) -> ApiError {
    ApiError::Invalid(vec![FieldError::new(
        format!("{prefix}{}", err.field),
        err.problem.to_string(),
    )])
}

fn rule_name(name: String) -> Result<RuleName, ApiError> {
    RuleName::parse(name)
        .map_err(|err| ApiError::Invalid(vec![FieldError::new("name", err.to_string())]))
}

/// The body as a rule object without its `name` (the path names the rule).
fn rule_object(name: &RuleName, body: Value) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(mut body) = body else {
        return Err(ApiError::Invalid(vec![FieldError::new(
            "body",
            "must be a rule object, e.g. {\"kind\": \"count\", ...}",
        )]));
    };
    parse_rule(name.as_str(), &body).map_err(|err| invalid_rule(&err, ""))?;
    body.remove("name");
    Ok(body)
}

#[OpenApi(tag = "RuleTags::Rules")]
impl RulesApi {
    /// Publish a rule
    ///
    /// The body is a rule object: the fields of a `[[rule]]` table of `rules/rules.toml`, as JSON (`kind`
    /// is `duration`, `absence` or `count`; a `name`, if given, must equal the path's). An invalid rule is a
    /// 400 naming the field. Each publish stores a new version; workers evaluate it from the next job that
    /// begins after this call answered, without a restart.
    #[oai(
        path = "/v1/admin/rules/:name",
        method = "put",
        operation_id = "publish_rule"
    )]
    async fn publish(
        &self,
        state: Data<&AppState>,
        _auth: AdminToken,
        /// The rule's name: 1 to 64 characters of a-z, 0-9 and `_`.
        #[oai(validator(pattern = "^[a-z0-9_]{1,64}$"))]
        name: Path<String>,
        body: Json<RuleIn>,
    ) -> Result<PublishResponse, ApiError> {
        let name = rule_name(name.0)?;
        let definition = rule_object(&name, body.0.into_value())?;
        let published = state
            .store()
            .publish_rule(&name, &definition)
            .await
            .map_err(ApiError::internal)?;
        tracing::info!(rule = %name, ?published, "rule published");
        let out = |version| {
            Json(RulePublishedOut {
                name: name.to_string(),
                version,
            })
        };
        Ok(match published {
            RulePublished::Created(version) => PublishResponse::Created(out(version)),
            RulePublished::NewVersion(version) => PublishResponse::NewVersion(out(version)),
        })
    }

    /// List the live rules with their current versions
    #[oai(path = "/v1/admin/rules", method = "get", operation_id = "list_rules")]
    async fn list(
        &self,
        state: Data<&AppState>,
        _auth: AdminToken,
    ) -> Result<ListResponse, ApiError> {
        let rules = state
            .store()
            .live_rules()
            .await
            .map_err(ApiError::internal)?;
        Ok(ListResponse::Rules(Json(RuleList {
            rules: rules.into_iter().map(RuleOut::from).collect(),
        })))
    }

    /// Read a rule with all its versions
    ///
    /// Deleted rules are answered too (`live` false), with their versions; 404 for a name never published.
    #[oai(
        path = "/v1/admin/rules/:name",
        method = "get",
        operation_id = "get_rule"
    )]
    async fn get(
        &self,
        state: Data<&AppState>,
        _auth: AdminToken,
        /// The rule's name: 1 to 64 characters of a-z, 0-9 and `_`.
        #[oai(validator(pattern = "^[a-z0-9_]{1,64}$"))]
        name: Path<String>,
    ) -> Result<DetailResponse, ApiError> {
        let name = rule_name(name.0)?;
        let versions = state
            .store()
            .rule_versions(&name)
            .await
            .map_err(ApiError::internal)?;
        RuleDetail::from_versions(versions)
            .map(|detail| DetailResponse::Rule(Json(detail)))
            .ok_or_else(|| ApiError::NotFound(format!("no rule `{name}`")))
    }

    /// Delete a rule
    ///
    /// Jobs that begin after this call answered no longer evaluate it. Its versions are kept (see `GET`),
    /// and publishing the name again starts its next version.
    #[oai(
        path = "/v1/admin/rules/:name",
        method = "delete",
        operation_id = "delete_rule"
    )]
    async fn delete(
        &self,
        state: Data<&AppState>,
        _auth: AdminToken,
        /// The rule's name: 1 to 64 characters of a-z, 0-9 and `_`.
        #[oai(validator(pattern = "^[a-z0-9_]{1,64}$"))]
        name: Path<String>,
    ) -> Result<DeleteResponse, ApiError> {
        let name = rule_name(name.0)?;
        if state
            .store()
            .delete_rule(&name)
            .await
            .map_err(ApiError::internal)?
        {
            tracing::info!(rule = %name, "rule deleted");
            Ok(DeleteResponse::Deleted)
        } else {
            Err(ApiError::NotFound(format!("no live rule `{name}`")))
        }
    }

    /// Dry-run a rule over stored events
    ///
    /// Evaluates `rule` (a rule object, or the name of a published rule) over the application's stored
    /// events with a timestamp in `[from, to)`, per user in event-time order from an empty state, and
    /// answers what it would have notified: the total, the count per day (UTC, by `triggered_at`) and the
    /// first 100 notifications by `triggered_at` with their deciding events. It sends and writes nothing,
    /// and streams the events. An absence is decided only if its deadline lies before `to`. Limits: a range
    /// of at most 366 days and at most `EYE_DRY_RUN_MAX_EVENTS` (default 200,000) events of the rule's
    /// types (counted first; a larger range is a 400: split it).
    #[oai(
        path = "/v1/admin/rules/dry-run",
        method = "post",
        operation_id = "dry_run_rule"
    )]
    async fn dry_run(
        &self,
        state: Data<&AppState>,
        _auth: AdminToken,
        body: Json<DryRunIn>,
    ) -> Result<DryRunResponse, ApiError> {
        dry_run::run(state.0, body.0)
            .await
            .map(|decided| DryRunResponse::Decided(Json(decided)))
    }
}
