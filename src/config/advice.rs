//! What to set in the HA engine beside wdfeed, derived from the fence bound B. One pure
//! function per engine; `validate`, `info`, `run` and `doctor` print what it returns.
//!
//! Pacemaker beside sbd (docs/PACEMAKER.md has the sources behind each rule):
//!
//! ```text
//! S = SBD_WATCHDOG_TIMEOUT        = max(5 s, ceil(B / 2))     whole seconds
//! F = fencing-watchdog-timeout    = max(2 x S, ceil(B)) = 2 x S
//! SBD_DELAY_START=yes             sbd waits 2 x S = F before it starts
//! ```
//!
//! - F >= S, or pacemaker-controld exits (`pcmk__valid_sbd_timeout`).
//! - F >= 2 x S: sbd itself takes up to S to reset a node it judges unhealthy, and 2 x S is
//!   what Pacemaker uses when F is negative ("auto"); with S from B, both agree.
//! - F >= B: the peer starts waiting only after it lost the node, which is after the fault
//!   appeared; wdfeed resets the node within B of that.
//! - A node reset by a fence must not rejoin while the peer still waits: SBD_DELAY_START=yes
//!   delays sbd, and with it the cluster stack, by 2 x S = F.

use std::time::Duration;

/// sbd's default SBD_WATCHDOG_TIMEOUT on x86 (sbd 1.5.2 configure.ac).
pub const SBD_DEFAULT_WATCHDOG_TIMEOUT: u64 = 5;

/// The values to set for Pacemaker beside sbd, in whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pacemaker {
    /// `SBD_WATCHDOG_TIMEOUT` in sbd's environment file (/etc/default/sbd on Debian).
    pub sbd_watchdog_timeout: u64,
    /// Pacemaker's `fencing-watchdog-timeout` (`stonith-watchdog-timeout` before 3.0.2).
    pub fencing_watchdog_timeout: u64,
}

/// B rounded up to whole seconds.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The values for a node whose fence bound is `bound`.
pub fn pacemaker(bound: Duration) -> Pacemaker {
    let half = ceil_secs(bound).div_ceil(2);
    let s = half.max(SBD_DEFAULT_WATCHDOG_TIMEOUT);
    Pacemaker {
        sbd_watchdog_timeout: s,
        fencing_watchdog_timeout: fencing_watchdog_timeout(bound, s),
    }
}

/// The shortest safe `fencing-watchdog-timeout` for a node whose sbd already runs with
/// `sbd_watchdog_timeout` seconds: max(2 x S, ceil(B)).
pub fn fencing_watchdog_timeout(bound: Duration, sbd_watchdog_timeout: u64) -> u64 {
    sbd_watchdog_timeout.saturating_mul(2).max(ceil_secs(bound))
}

impl Pacemaker {
    /// The one line `validate`, `info` and the start-up log print.
    pub fn line(&self) -> String {
        format!(
            "Pacemaker beside sbd: SBD_WATCHDOG_TIMEOUT={} and SBD_DELAY_START=yes in sbd's \
             environment file, fencing-watchdog-timeout={}s (stonith-watchdog-timeout before \
             Pacemaker 3.0.2); docs/PACEMAKER.md",
            self.sbd_watchdog_timeout, self.fencing_watchdog_timeout
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_short_bound_keeps_sbds_default() {
        let p = pacemaker(ms(6_000));
        assert_eq!(p.sbd_watchdog_timeout, 5);
        assert_eq!(p.fencing_watchdog_timeout, 10);
    }

    #[test]
    fn the_sbd_timeout_is_half_the_bound_rounded_up() {
        // 17.0 s -> S = 9, F = 18 >= 17; 29.2 s -> ceil 30 -> S = 15, F = 30.
        assert_eq!(
            pacemaker(ms(17_000)),
            Pacemaker {
                sbd_watchdog_timeout: 9,
                fencing_watchdog_timeout: 18
            }
        );
        assert_eq!(
            pacemaker(ms(29_200)),
            Pacemaker {
                sbd_watchdog_timeout: 15,
                fencing_watchdog_timeout: 30
            }
        );
        assert_eq!(pacemaker(ms(60_001)).fencing_watchdog_timeout, 62);
    }

    #[test]
    fn every_rule_holds_for_any_bound() {
        for b in (0..200_000).step_by(100) {
            let bound = ms(b);
            let p = pacemaker(bound);
            let f = Duration::from_secs(p.fencing_watchdog_timeout);
            assert!(f >= bound, "F >= B for {bound:?}");
            assert!(p.fencing_watchdog_timeout >= 2 * p.sbd_watchdog_timeout);
            assert!(p.sbd_watchdog_timeout >= SBD_DEFAULT_WATCHDOG_TIMEOUT);
            // The auto value (a negative F: 2 x S) is as safe as the explicit one.
            assert_eq!(p.fencing_watchdog_timeout, 2 * p.sbd_watchdog_timeout);
        }
    }

    #[test]
    fn a_longer_sbd_timeout_already_set_raises_f() {
        assert_eq!(fencing_watchdog_timeout(ms(17_000), 20), 40);
        assert_eq!(fencing_watchdog_timeout(ms(17_000), 5), 17);
        assert_eq!(fencing_watchdog_timeout(ms(16_500), 5), 17);
    }

    #[test]
    fn the_line_names_both_spellings_of_the_option() {
        let l = pacemaker(ms(17_000)).line();
        assert!(l.contains("SBD_WATCHDOG_TIMEOUT=9 "), "{l}");
        assert!(l.contains("fencing-watchdog-timeout=18s"), "{l}");
        assert!(l.contains("stonith-watchdog-timeout"), "{l}");
    }
}
