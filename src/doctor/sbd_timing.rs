//! sbd's timing against wdfeed's fence bound: SBD_WATCHDOG_TIMEOUT at least half of B (so
//! that the auto fencing-watchdog-timeout, 2 x S, covers B), and SBD_DELAY_START no shorter
//! than fencing-watchdog-timeout, so that a node reset by a fence does not rejoin while its
//! peer still waits for it.

use super::sbd::{sbd_timeout, yes};
use super::{cib, envfile, printable, Level, Report, Wdfeed};
use crate::config::advice;

/// Reports on SBD_WATCHDOG_TIMEOUT and SBD_DELAY_START; returns the timeout in seconds when
/// it could be read.
pub(super) fn check(
    wd: &Wdfeed,
    env: &envfile::EnvFile,
    env_name: &str,
    opts: &str,
    report: &mut Report,
) -> Option<u64> {
    let at = |key: &str| {
        env.get(key)
            .map(|e| format!("{env_name}:{}", e.line))
            .unwrap_or_else(|| "sbd's default".into())
    };
    // The timeout against the fence bound.
    let rec = advice::pacemaker(wd.bound.total);
    let timeout = match sbd_timeout(env, opts) {
        Some(s) => Some(s),
        None => {
            if let Some(e) = env.get("SBD_WATCHDOG_TIMEOUT") {
                report.add(
                    Level::Warn,
                    "sbd",
                    format!(
                        "SBD_WATCHDOG_TIMEOUT=`{}` ({env_name}:{}) is not a time in seconds",
                        printable(&e.value),
                        e.line
                    ),
                    Some(format!("SBD_WATCHDOG_TIMEOUT={}", rec.sbd_watchdog_timeout)),
                );
            }
            None
        }
    };
    let s = timeout.unwrap_or(advice::SBD_DEFAULT_WATCHDOG_TIMEOUT);
    if s < rec.sbd_watchdog_timeout {
        report.add(
            Level::Warn,
            "sbd",
            format!(
                "SBD_WATCHDOG_TIMEOUT={s} ({}) is less than half of wdfeed's fence bound \
                 ({}): with fencing-watchdog-timeout set to a negative value (auto: 2 x {s} = \
                 {} s) the peer would stop waiting before wdfeed has reset this node",
                at("SBD_WATCHDOG_TIMEOUT"),
                wd.b(),
                2 * s
            ),
            Some(format!(
                "SBD_WATCHDOG_TIMEOUT={} on every node, or keep {s} and set \
                 fencing-watchdog-timeout={}s explicitly",
                rec.sbd_watchdog_timeout,
                advice::fencing_watchdog_timeout(wd.bound.total, s)
            )),
        );
    } else {
        report.add(
            Level::Ok,
            "sbd",
            format!(
                "SBD_WATCHDOG_TIMEOUT={s} ({}): at least half of wdfeed's fence bound ({})",
                at("SBD_WATCHDOG_TIMEOUT"),
                wd.b()
            ),
            None,
        );
    }

    // The start delay: a node reset by a fence must not rejoin while its peer still waits.
    let f = advice::fencing_watchdog_timeout(wd.bound.total, s);
    let delay = env.get("SBD_DELAY_START").map(|e| {
        let v = e.value.trim();
        if yes(v) {
            2 * s
        } else {
            cib::parse_msec(v).map_or(0, |ms| u64::try_from(ms / 1000).unwrap_or(0))
        }
    });
    match delay {
        Some(d) if d >= f => {
            report.add(
                Level::Ok,
                "sbd",
                format!(
                    "SBD_DELAY_START ({}): sbd waits {d} s at start, no less than \
                     fencing-watchdog-timeout ({f} s)",
                    at("SBD_DELAY_START")
                ),
                None,
            );
            if d >= 90 {
                report.add(
                    Level::Note,
                    "sbd",
                    format!(
                        "sbd.service starts only after that {d} s wait, and systemd's default \
                         start timeout is 90 s"
                    ),
                    Some(format!(
                        "a drop-in /etc/systemd/system/sbd.service.d/timeout.conf with \
                         [Service] TimeoutStartSec={}s",
                        d + 30
                    )),
                );
            }
        }
        _ => {
            let now = match delay {
                Some(d) if d > 0 => format!("waits only {d} s at start"),
                _ => "is off".to_string(),
            };
            report.add(
                Level::Note,
                "sbd",
                format!(
                    "SBD_DELAY_START ({}) {now}: a node reset by a fence can rejoin while its \
                     peer still waits fencing-watchdog-timeout ({f} s) for it",
                    at("SBD_DELAY_START")
                ),
                Some(format!(
                    "SBD_DELAY_START=yes (sbd then waits 2 x SBD_WATCHDOG_TIMEOUT) with \
                     SBD_WATCHDOG_TIMEOUT={}",
                    rec.sbd_watchdog_timeout.max(s)
                )),
            );
        }
    }
    timeout
}
