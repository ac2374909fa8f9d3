//! A validated set of rules, as loaded from configuration.

use crate::absence::AbsenceRule;
use crate::duration::DurationRule;
use crate::names::RuleName;

/// One rule of either kind.
#[derive(Debug, Clone)]
pub enum Rule {
    /// See [`DurationRule`].
    Duration(DurationRule),
    /// See [`AbsenceRule`].
    Absence(AbsenceRule),
}

impl Rule {
    /// The rule's name.
    pub fn name(&self) -> &RuleName {
        match self {
            Self::Duration(rule) => rule.name(),
            Self::Absence(rule) => rule.name(),
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

    /// The absence rule with this name, if any.
    pub fn absence(&self, name: &RuleName) -> Option<&AbsenceRule> {
        self.rules.iter().find_map(|rule| match rule {
            Rule::Absence(absence) if absence.name() == name => Some(absence),
            _ => None,
        })
    }
}
