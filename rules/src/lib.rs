//! The Eye's notification rules: a pure engine (no I/O, no clock) that turns a user's events into
//! notifications.
//!
//! Rules are data: rule objects ([`parse_rule`], the API's JSON) or a TOML file of them
//! ([`RuleSet::from_toml_str`], seed rules in [`DEFAULT_RULES_TOML`]), of three generic kinds:
//! [`DurationRule`] (a finish too long after its start), [`AbsenceRule`] (a trigger not followed by an
//! expected event in time) and [`CountRule`] (at least N events within a window). [`evaluate`] maps a user's [`UserRuleState`] and one
//! [`RuleEvent`] to an [`Outcome`]; [`fire_due_timers`] fires absence timers by the wall clock.
//! The caller persists state and notifications under the contract documented in [`state`].
//! [`DryRun`] evaluates stored history without persisting anything.

mod absence;
#[cfg(test)]
mod arrival_order;
pub mod config;
mod count;
mod definition;
mod dry_run;
mod duration;
mod engine;
mod event;
mod names;
mod rule_set;
pub mod state;
mod template;

#[cfg(test)]
mod testkit;

pub use absence::{AbsenceRule, Lateness, due_at, fire_due_timers};
pub use config::{ConfigError, DEFAULT_RULES_TOML, Definition, definitions_from_toml};
pub use count::CountRule;
pub use definition::{MAX_COUNT, Problem, RuleError, parse_rule};
pub use dry_run::{DecidingEvent, DryRun, DryRunNotification};
pub use duration::DurationRule;
pub use engine::evaluate;
pub use event::RuleEvent;
pub use names::{EventKind, OccasionKey, RuleName, RuleNameError};
pub use rule_set::{Rule, RuleSet};
pub use state::{
    AbsenceTimer, CountWindow, Counted, Notification, OpenPair, Outcome, PairKey, StateChange,
    UserRuleState,
};
pub use template::{Builtin, Template, TemplateError};
