//! The decision, pure: from what the state record and the runtime directory say, this boot's
//! id, the configured `rejoin-delay` and the clock, whether READY=1 waits and until when.

use std::path::Path;
use std::time::Duration;

use super::pending::{self, Pending};
use super::state::{Previous, RunState};
use crate::units::format_duration;

/// What start-up does about the rejoin delay.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// READY=1 waits until then (CLOCK_BOOTTIME); `None`: no wait.
    pub wait: Option<Pending>,
    /// Whether `wait` is new in this boot and must be written to the runtime directory.
    pub new: bool,
    /// The line for the log (and `status`): what was found and what it means.
    pub line: String,
    /// The line is a warning: the delay is unknown or the record damaged.
    pub warn: bool,
}

/// What the decision reads.
pub struct Inputs<'a> {
    pub previous: &'a Previous,
    pub pending: &'a pending::Found,
    pub boot_id: &'a str,
    /// `rejoin-delay` of the config now running, when it sets one.
    pub configured: Option<Duration>,
    /// The fence bound of the config now running (used where the record gives none).
    pub current_bound: Duration,
    /// CLOCK_BOOTTIME now.
    pub now: Duration,
    pub state_path: &'a Path,
    pub pending_path: &'a Path,
}

pub fn decide(i: &Inputs) -> Decision {
    let s = i.state_path.display();
    let no_wait = |line: String, warn: bool| Decision {
        wait: None,
        new: false,
        line,
        warn,
    };
    match i.pending {
        pending::Found::ThisBoot(p) => {
            let left = p.until.saturating_sub(i.now);
            let line = if left.is_zero() {
                format!(
                    "the rejoin delay of this boot ({}) is over (per {})",
                    format_duration(p.delay),
                    i.pending_path.display()
                )
            } else {
                format!(
                    "restarted during the rejoin delay of this boot ({}): READY=1 still waits {:.1} s (per {})",
                    format_duration(p.delay),
                    left.as_secs_f64(),
                    i.pending_path.display()
                )
            };
            return Decision {
                wait: (!left.is_zero()).then_some(*p),
                new: false,
                line,
                warn: false,
            };
        }
        pending::Found::Damaged { why } => {
            let delay = i.configured.unwrap_or(i.current_bound);
            return wait(
                i,
                delay,
                format!(
                    "the rejoin delay record {} of this boot is damaged ({why}): the delay runs again in full",
                    i.pending_path.display()
                ),
                true,
            );
        }
        pending::Found::Nothing => {}
    }
    match i.previous {
        Previous::NoDirectory => no_wait(
            format!("no state directory for {s}: whether the previous boot ended armed is unknown, so no rejoin delay (give a writable --state-dir; the unit's StateDirectory=wdfeed makes /var/lib/wdfeed)"),
            true,
        ),
        Previous::TimedOut => no_wait(
            format!("reading the state record {s} did not finish (a hung disk?): the rejoin delay is unknown, so none"),
            true,
        ),
        Previous::NoRecord => no_wait(
            format!("no state record {s}: first start with this state directory, no rejoin delay"),
            false,
        ),
        Previous::Damaged { why } => {
            let delay = i.configured.unwrap_or(i.current_bound);
            wait(
                i,
                delay,
                format!("the state record {s} is damaged ({why}): treated as a boot that ended armed"),
                true,
            )
        }
        Previous::Record(r) if r.boot == i.boot_id => no_wait(
            format!("the state record {s} is of this boot ({}): restarted, no rejoin delay", r.state.word()),
            false,
        ),
        Previous::Record(r) if !r.state.ended_armed() => no_wait(
            format!(
                "the previous boot's wdfeed {} (state record {s}): no rejoin delay",
                match r.state {
                    RunState::Started => "never armed",
                    _ => "stopped cleanly",
                }
            ),
            false,
        ),
        Previous::Record(r) => {
            let delay = i.configured.unwrap_or(r.rejoin_delay);
            let how = match r.state {
                RunState::Fenced => "was fenced (its wdfeed recorded the fence)",
                RunState::StoppedArmed => {
                    "was stopped with the devices left armed (on-exit: keep-armed), so a reset may have followed"
                }
                _ => "ended with a device armed and no clean stop (reset, crash or power loss)",
            };
            wait(
                i,
                delay,
                format!(
                    "the previous boot {how}; its fence bound was {}; state record {s}",
                    format_duration(r.bound)
                ),
                false,
            )
        }
    }
}

fn wait(i: &Inputs, delay: Duration, why: String, warn: bool) -> Decision {
    if delay.is_zero() {
        return Decision {
            wait: None,
            new: false,
            line: format!("{why}; rejoin-delay is 0: READY=1 does not wait"),
            warn,
        };
    }
    Decision {
        wait: Some(Pending {
            until: i.now + delay,
            delay,
        }),
        new: true,
        line: format!(
            "{why}: READY=1 waits {} (rejoin-delay) so the cluster stack starts only after the peer stopped waiting; wdfeed arms and pets meanwhile",
            format_duration(delay)
        ),
        warn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rejoin::state::StateRecord;

    const BOOT: &str = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
    const PREV: &str = "ffffffff-4f50-6172-8394-a5b6c7d8e9f0";
    const NOW: Duration = Duration::from_secs(20);
    const B: Duration = Duration::from_secs(9);

    fn record(boot: &str, state: RunState) -> Previous {
        Previous::Record(StateRecord {
            boot: boot.into(),
            state,
            bound: Duration::from_secs(14),
            rejoin_delay: Duration::from_secs(14),
            ended: vec![],
            dumps: None,
        })
    }

    fn decide_with(prev: Previous, pend: pending::Found, configured: Option<u64>) -> Decision {
        decide(&Inputs {
            previous: &prev,
            pending: &pend,
            boot_id: BOOT,
            configured: configured.map(Duration::from_secs),
            current_bound: B,
            now: NOW,
            state_path: Path::new("/var/lib/wdfeed/state"),
            pending_path: Path::new("/run/wdfeed/rejoin"),
        })
    }

    fn until(d: &Decision) -> Option<u64> {
        d.wait.map(|p| p.until.as_secs())
    }

    #[test]
    fn a_previous_boot_that_ended_armed_waits_its_recorded_delay_from_now() {
        let d = decide_with(record(PREV, RunState::Armed), pending::Found::Nothing, None);
        assert_eq!(until(&d), Some(34));
        assert!(d.new && !d.warn);
        assert!(d.line.contains("ended with a device armed"), "{}", d.line);
        assert!(d.line.contains("waits 14s"), "{}", d.line);
    }

    #[test]
    fn the_configured_delay_wins_and_zero_disables() {
        let d = decide_with(
            record(PREV, RunState::Armed),
            pending::Found::Nothing,
            Some(3),
        );
        assert_eq!(until(&d), Some(23));
        let d = decide_with(
            record(PREV, RunState::Armed),
            pending::Found::Nothing,
            Some(0),
        );
        assert_eq!(d.wait, None);
        assert!(d.line.contains("rejoin-delay is 0"), "{}", d.line);
    }

    #[test]
    fn a_clean_stop_a_never_armed_boot_or_this_boot_do_not_wait() {
        for prev in [
            record(PREV, RunState::StoppedCleanly),
            record(PREV, RunState::Started),
            record(BOOT, RunState::Armed),
            record(BOOT, RunState::Started),
            Previous::NoRecord,
        ] {
            let d = decide_with(prev.clone(), pending::Found::Nothing, Some(5));
            assert_eq!(d.wait, None, "{prev:?}");
            assert!(!d.warn, "{prev:?}");
        }
    }

    #[test]
    fn an_unknown_previous_boot_is_a_warning_without_a_delay() {
        for prev in [Previous::NoDirectory, Previous::TimedOut] {
            let d = decide_with(prev.clone(), pending::Found::Nothing, None);
            assert_eq!(d.wait, None, "{prev:?}");
            assert!(d.warn && d.line.contains("unknown"), "{}", d.line);
            assert!(d.line.contains("/var/lib/wdfeed/state"), "{}", d.line);
        }
    }

    #[test]
    fn a_damaged_record_is_the_safe_case_a_full_delay() {
        let prev = Previous::Damaged {
            why: "no `state` line where expected (truncated?)".into(),
        };
        let d = decide_with(prev.clone(), pending::Found::Nothing, None);
        assert_eq!(until(&d), Some(29), "the current bound");
        assert!(d.warn && d.line.contains("/var/lib/wdfeed/state is damaged"));
        let d = decide_with(prev, pending::Found::Nothing, Some(2));
        assert_eq!(until(&d), Some(22));
    }

    #[test]
    fn a_restart_during_the_delay_keeps_its_end() {
        let p = Pending {
            until: Duration::from_secs(30),
            delay: Duration::from_secs(14),
        };
        // the record now says this boot: only the pending delay counts, and it is not new
        for prev in [record(BOOT, RunState::Armed), record(PREV, RunState::Armed)] {
            let d = decide_with(prev, pending::Found::ThisBoot(p), Some(100));
            assert_eq!(until(&d), Some(30));
            assert!(!d.new);
            assert!(d.line.contains("still waits 10.0 s"), "{}", d.line);
        }
        let over = Pending {
            until: Duration::from_secs(19),
            ..p
        };
        let d = decide_with(
            record(PREV, RunState::Armed),
            pending::Found::ThisBoot(over),
            None,
        );
        assert_eq!(d.wait, None);
        assert!(d.line.contains("is over"), "{}", d.line);
    }

    #[test]
    fn a_damaged_pending_delay_runs_again_in_full() {
        let d = decide_with(
            record(BOOT, RunState::Armed),
            pending::Found::Damaged { why: "x".into() },
            None,
        );
        assert_eq!(until(&d), Some(29));
        assert!(d.new && d.warn);
        assert!(d.line.contains("/run/wdfeed/rejoin"), "{}", d.line);
    }
}
