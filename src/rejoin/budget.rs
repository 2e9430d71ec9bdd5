//! The fence budget: a fault that survives the reset (a dead disk the boot still mounts, a
//! bad config) fences the node again and again, and each time it rejoins, the cluster flaps.
//! When a boot starts after `rejoin-budget.fences` boots in a row that ended armed (a fence's
//! reset, a crash, a power loss; the state record knows) within `rejoin-budget.within`,
//! READY=1 is held until an operator says `wdfeed rejoin-now`. wdfeed arms and pets
//! meanwhile: the node is up and reachable, only kept out of the cluster.
//!
//! The boots are kept as `ended` lines of the state record, with the wall-clock time of the
//! fence when the fenced wdfeed could record it (`fenced`), else the time the next boot
//! found the record (`armed`: a reset before the write, a crash, a power loss). A boot that
//! stopped cleanly ends the row; so does `rejoin-now` on a held boot (the operator has seen
//! those fences). Wall-clock times, because the window spans boots: a clock that jumps back
//! makes more boots count (the safe side), and entries in the future count.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::state::{Previous, RunState};
use crate::health::cut_text;

/// How many `ended` lines the record keeps at most (the newest).
pub const MAX_KEPT: usize = MAX_FENCES as usize;
/// The longest `what` of a line, in bytes.
const WHAT_CAP: usize = 160;

/// `rejoin-budget` of the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Hold READY=1 on the boot after this many boots that ended armed in a row within
    /// `within`; 0 turns the budget off.
    pub fences: u32,
    pub within: Duration,
}

/// The default: three in an hour. A fault that survives the reset loops every fence bound
/// plus a boot (minutes), so three take a quarter of an hour at most; three unrelated
/// faults on one node within an hour are worth a human look anyway; and a held node costs
/// little (it is up, armed and reachable; only the units ordered after wdfeed wait).
pub const DEFAULT: Budget = Budget {
    fences: 3,
    within: Duration::from_secs(3600),
};

/// The most `fences` may be: the record keeps as many boots, no more.
pub const MAX_FENCES: u32 = 16;

/// One boot that ended armed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// Seconds since the epoch: the fence's time (`fenced`), or when the next boot found
    /// the record (`armed`).
    pub at: u64,
    /// The boot id.
    pub boot: String,
    /// What ended it, one line.
    pub what: String,
}

impl Ended {
    pub fn new(at: u64, boot: &str, what: &str) -> Self {
        let clean: String = what
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        Ended {
            at,
            boot: boot.to_string(),
            what: cut_text(clean.trim(), WHAT_CAP).to_string(),
        }
    }

    pub fn to_line(&self) -> String {
        format!("ended {} {} {}", self.at, self.boot, self.what)
    }

    pub fn from_line(line: &str) -> Result<Self, String> {
        let mut parts = line.splitn(4, ' ');
        let bad = || {
            format!(
                "an `ended` line is malformed: {:?}",
                cut_text(line, 60).to_string()
            )
        };
        if parts.next() != Some("ended") {
            return Err(bad());
        }
        let at = parts
            .next()
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or_else(bad)?;
        let boot = parts.next().filter(|b| is_boot_id(b)).ok_or_else(bad)?;
        Ok(Ended::new(at, boot, parts.next().unwrap_or("")))
    }

    /// `2026-06-18 20:31:04 UTC (what)`.
    pub fn describe(&self) -> String {
        format!("{} ({})", utc(self.at), self.what)
    }
}

fn is_boot_id(b: &str) -> bool {
    b.len() == 36 && b.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// Seconds since the epoch now (0 if the clock is before it).
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The row of boots that ended armed as this boot starts: the record's, plus the previous
/// boot if it ended armed and is not in it yet (a reset came before the `fenced` write);
/// emptied by a clean stop; the ones older than `within` dropped; at most [`MAX_KEPT`].
/// `None` when the previous boot is this one (a restart: the row is as recorded) or unknown.
pub fn row_at_start(
    previous: &Previous,
    boot_id: &str,
    now: u64,
    within: Duration,
    cause: Option<&str>,
) -> Vec<Ended> {
    let Previous::Record(r) = previous else {
        return Vec::new();
    };
    let mut row = r.ended.clone();
    if r.boot != boot_id {
        match r.state {
            RunState::StoppedCleanly => row.clear(),
            RunState::Armed if !row.iter().any(|e| e.boot == r.boot) => {
                let what = match cause {
                    Some(c) => format!("ended armed, no clean stop; found at the next start; {c}"),
                    None => "ended armed, no clean stop (a reset, a crash or a power loss); found at the next start".into(),
                };
                row.push(Ended::new(now, &r.boot, &what));
            }
            _ => {}
        }
    }
    recent(&mut row, now, within);
    row
}

/// Drops the entries older than `within` before `now`, and all but the newest [`MAX_KEPT`].
pub fn recent(row: &mut Vec<Ended>, now: u64, within: Duration) {
    let oldest = now.saturating_sub(within.as_secs());
    row.retain(|e| e.at >= oldest);
    if row.len() > MAX_KEPT {
        row.drain(..row.len() - MAX_KEPT);
    }
}

/// Whether the row spends the budget: as many boots in it as the budget allows fences.
pub fn spent(row: &[Ended], budget: Budget) -> bool {
    budget.fences > 0 && row.len() >= budget.fences as usize
}

/// `YYYY-MM-DD HH:MM:SS UTC` for seconds since the epoch (the civil calendar from days,
/// after Howard Hinnant's algorithm).
pub fn utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rejoin::state::StateRecord;

    const THIS: &str = "33333333-4f50-6172-8394-a5b6c7d8e9f0";
    const PREV: &str = "22222222-4f50-6172-8394-a5b6c7d8e9f0";
    const OLD: &str = "11111111-4f50-6172-8394-a5b6c7d8e9f0";
    const HOUR: Duration = Duration::from_secs(3600);

    fn record(state: RunState, ended: Vec<Ended>) -> Previous {
        Previous::Record(StateRecord {
            boot: PREV.into(),
            state,
            bound: Duration::from_secs(9),
            rejoin_delay: Duration::from_secs(9),
            ended,
            dumps: None,
        })
    }

    #[test]
    fn utc_dates_are_right_across_leap_years() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_765_139_465), "2025-12-07 20:31:05 UTC");
        assert_eq!(utc(1_781_814_664), "2026-06-18 20:31:04 UTC");
    }

    #[test]
    fn a_line_reads_back_and_a_bad_one_is_named() {
        let e = Ended::new(
            1_781_814_664,
            PREV,
            "fenced: process heartbeat:\nstopped (T)",
        );
        assert_eq!(e.what, "fenced: process heartbeat: stopped (T)");
        assert_eq!(Ended::from_line(&e.to_line()).unwrap(), e);
        for bad in ["ended x y z", "ended 12 nobootid what", "ended"] {
            assert!(
                Ended::from_line(bad).unwrap_err().contains("malformed"),
                "{bad}"
            );
        }
        let long = Ended::new(1, PREV, &"é".repeat(200));
        assert!(long.what.len() <= WHAT_CAP);
    }

    #[test]
    fn a_reset_before_the_fenced_write_is_added_once_and_a_clean_stop_ends_the_row() {
        let now = 10_000;
        let earlier = Ended::new(now - 600, OLD, "fenced: writable /: read-only");
        let row = row_at_start(
            &record(RunState::Armed, vec![earlier.clone()]),
            THIS,
            now,
            HOUR,
            None,
        );
        assert_eq!(row.len(), 2);
        assert_eq!(row[1].boot, PREV);
        assert_eq!(row[1].at, now);
        assert!(
            row[1].what.contains("found at the next start"),
            "{}",
            row[1].what
        );
        // fenced: the fenced wdfeed wrote its own line
        let own = Ended::new(now - 60, PREV, "fenced: operator");
        let row = row_at_start(
            &record(RunState::Fenced, vec![earlier.clone(), own.clone()]),
            THIS,
            now,
            HOUR,
            None,
        );
        assert_eq!(row, vec![earlier.clone(), own]);
        let row = row_at_start(
            &record(RunState::StoppedCleanly, vec![earlier.clone()]),
            THIS,
            now,
            HOUR,
            None,
        );
        assert!(row.is_empty(), "a clean stop ends the row");
        // a restart in the same boot adds nothing
        let mut same = record(RunState::Armed, vec![earlier.clone()]);
        if let Previous::Record(r) = &mut same {
            r.boot = THIS.into();
        }
        assert_eq!(row_at_start(&same, THIS, now, HOUR, None), vec![earlier]);
        assert!(row_at_start(&Previous::NoRecord, THIS, now, HOUR, None).is_empty());
    }

    #[test]
    fn only_the_window_counts_and_the_future_counts_too() {
        let mut row = vec![
            Ended::new(1000, OLD, "a"),
            Ended::new(6000, OLD, "b"),
            Ended::new(9000, PREV, "c"),
            Ended::new(20_000, PREV, "clock went back"),
        ];
        recent(&mut row, 10_000, HOUR);
        let ats: Vec<u64> = row.iter().map(|e| e.at).collect();
        assert_eq!(ats, [9000, 20_000]);
        assert!(!spent(&row, DEFAULT));
        row.push(Ended::new(9500, PREV, "d"));
        assert!(spent(&row, DEFAULT), "three within the hour");
        assert!(
            !spent(
                &row,
                Budget {
                    fences: 0,
                    within: HOUR
                }
            ),
            "0 is off"
        );
    }
}
