//! A validated set of rules, as loaded from configuration.

use crate::absence::AbsenceRule;
use crate::count::CountRule;
use crate::duration::DurationRule;
use crate::names::{EventKind, RuleName};

/// One rule of either kind.
#[derive(Debug, Clone)]
pub enum Rule {
    /// See [`DurationRule`].
    Duration(DurationRule),
    /// See [`AbsenceRule`].
    Absence(AbsenceRule),
    /// See [`CountRule`].
    Count(CountRule),
}

impl Rule {
    /// The event types the rule reacts to (all roles).
    fn kinds(&self) -> Vec<&EventKind> {
        match self {
            Self::Duration(rule) => [&rule.start, &rule.finish]
                .into_iter()
                .chain(&rule.cancel)
                .collect(),
            Self::Absence(rule) => std::iter::once(&rule.trigger)
                .chain(&rule.expected)
                .collect(),
            Self::Count(rule) => vec![rule.kind()],
        }
    }

    /// The rule's name.
    pub fn name(&self) -> &RuleName {
        match self {
            Self::Duration(rule) => rule.name(),
            Self::Absence(rule) => rule.name(),
            Self::Count(rule) => rule.name(),
        }
    }
}

/// Rules with distinct names; build one with [`RuleSet::from_toml_str`] or [`RuleSet::seed`].
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    /// Wraps rules whose names the loader has checked to be distinct.
    pub(crate) fn new(rules: Vec<Rule>) -> Self {
        Self { rules }
    }

    /// The rules, in configuration order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether any rule reacts to events of type `category` / `name`. Other events change no rule's state
    /// by themselves (a pending absence timer is fired by the wall clock only).
    pub fn concerns(&self, category: &str, name: &str) -> bool {
        self.rules
            .iter()
            .flat_map(Rule::kinds)
            .any(|kind| kind.is(category, name))
    }

    /// Every event type (category, name) some rule reacts to, each once.
    pub fn event_types(&self) -> Vec<(&str, &str)> {
        let mut types: Vec<_> = self
            .rules
            .iter()
            .flat_map(Rule::kinds)
            .map(|kind| (kind.category(), kind.name()))
            .collect();
        types.sort_unstable();
        types.dedup();
        types
    }

    /// The rule with this name, if any.
    pub fn get(&self, name: &RuleName) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.name() == name)
    }

    /// The absence rule with this name, if any.
    pub fn absence(&self, name: &RuleName) -> Option<&AbsenceRule> {
        self.rules.iter().find_map(|rule| match rule {
            Rule::Absence(absence) if absence.name() == name => Some(absence),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_rules_concern_the_fitness_events_only() {
        let rules = RuleSet::seed().expect("seed rules load");
        for name in [
            "app_launch",
            "training_program_started",
            "training_program_finished",
            "training_program_cancelled",
        ] {
            assert!(rules.concerns("fitness", name), "{name}");
        }
        assert!(!rules.concerns("page interaction", "pageview"));
        assert!(!rules.concerns("fitness", "workout_shared"));
        assert_eq!(rules.event_types().len(), 4);
    }
}
