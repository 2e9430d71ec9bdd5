//! A check that follows the node's role (`when:`): idle while its condition is false, the
//! check itself while it holds.
//!
//! - Idle: the run renews the lease (nothing served here, nothing to watch) and says why,
//!   so `status`, `check` and the metrics show the check idle with its reason.
//! - Turning true: the check is prepared anew from its settings, so it starts on what is
//!   there now (the filesystem mounted now, not the one of start-up); turning false drops it.
//! - A failed run counts only if the condition still holds after it: an unmount, a demotion
//!   or an address removed in the middle of a run is a clean switchover, never a fault.
//! - The condition cannot be read (mountinfo, /proc/drbd unreadable): the run fails.
//!   Missing kernel data never makes a check idle.

use std::time::Duration;

use crate::health::checks::CheckSettings;
use crate::health::condition::{Condition, ConditionWatch, Reading};
use crate::health::{Check, Verdict};
use crate::system::Root;

pub struct Conditional {
    watch: ConditionWatch,
    settings: CheckSettings,
    root: Root,
    /// The check while its condition holds; `None` while idle.
    active: Option<Box<dyn Check>>,
}

impl Conditional {
    pub fn new(condition: Condition, settings: CheckSettings, root: &Root) -> Self {
        Self::watching(ConditionWatch::new(condition, root), settings, root)
    }

    /// With a condition reader of the caller's (tests hand in their own address source).
    pub fn watching(watch: ConditionWatch, settings: CheckSettings, root: &Root) -> Self {
        Conditional {
            watch,
            settings,
            root: root.clone(),
            active: None,
        }
    }

    /// A failed run, judged again after it: idle if the condition stopped holding meanwhile.
    fn after_failure(&mut self, failed: Verdict) -> Verdict {
        match self.watch.read() {
            Ok(Reading::Idle(reason)) => {
                self.active = None;
                Verdict::idle(format!(
                    "{reason} (it changed during a run that failed with `{}`; a failure counts \
                     only while the condition holds)",
                    failed.evidence
                ))
            }
            _ => failed,
        }
    }
}

impl Check for Conditional {
    fn run(&mut self, now: Duration) -> Verdict {
        match self.watch.read() {
            Err(e) => {
                return Verdict::unhealthy(format!(
                    "cannot tell whether the condition `{}` holds: {e}",
                    self.watch.condition()
                ))
            }
            Ok(Reading::Idle(reason)) => {
                self.active = None;
                return Verdict::idle(reason);
            }
            Ok(Reading::Holds(_)) => {}
        }
        let check = match &mut self.active {
            Some(c) => c,
            None => match self.settings.build_on_condition(&self.root) {
                Ok(c) => self.active.insert(c),
                Err(e) => {
                    let v = Verdict::unhealthy(format!("cannot prepare the check: {e}"));
                    return self.after_failure(v);
                }
            },
        };
        let verdict = check.run(now);
        if verdict.healthy {
            verdict
        } else {
            self.after_failure(verdict)
        }
    }

    fn settle_time(&self) -> Option<Duration> {
        self.active.as_ref().and_then(|c| c.settle_time())
    }

    fn condition(&self) -> Option<String> {
        Some(self.watch.condition().to_string())
    }
}

#[cfg(test)]
mod tests;
