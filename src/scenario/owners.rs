//! One requirement, one owner: what reached the upstream is judged in every scenario, but each
//! requirement fails only in the scenario that owns it. Elsewhere the same finding is a note
//! (`INFORMATIONAL`), so a daemon that does not copy `test_pattern` into `X-Test-Pattern` fails
//! 1.1 once, with the fix, and every other scenario judges its own property through the
//! prompt's `[[pattern:…]]` directive.

use super::catalog;

/// A requirement on what reaches the upstream, checked wherever the upstream is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Requirement {
    /// The handoff's `test_pattern` goes upstream as `X-Test-Pattern`.
    PatternHeader,
    /// The handoff's prompt reaches the upstream exactly, as the last user message.
    Prompt,
    /// One upstream request per handoff, and at least one.
    OneRequest,
}

impl Requirement {
    /// The name of the scenario that owns this requirement.
    pub(super) fn owner(self) -> &'static str {
        match self {
            Requirement::PatternHeader | Requirement::OneRequest => "basic_response",
            Requirement::Prompt => "prompt_escapes",
        }
    }

    /// Whether `scenario` (a name) owns this requirement.
    pub(super) fn owned_by(self, scenario: &str) -> bool {
        self.owner() == scenario
    }

    /// The owner as reports name a scenario: `1.1 basic_response`.
    pub(super) fn see(self) -> String {
        let name = self.owner();
        let id = catalog()
            .iter()
            .find(|s| s.name == name)
            .map_or("?", |s| s.id);
        format!("{id} {name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_owner_is_a_scenario_that_calls_the_upstream_with_the_standard_pattern_twice() {
        for r in [
            Requirement::PatternHeader,
            Requirement::Prompt,
            Requirement::OneRequest,
        ] {
            let owner = catalog().iter().find(|s| s.name == r.owner());
            let owner = owner.unwrap_or_else(|| panic!("{r:?}: no scenario {}", r.owner()));
            assert!(!r.see().starts_with('?'), "{r:?}");
            assert_eq!(owner.drive, super::super::Drive::Single, "{r:?}");
        }
    }
}
