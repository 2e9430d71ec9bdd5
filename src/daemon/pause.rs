//! The maintenance pause (`wdfeed pause --for D --reason R`, `wdfeed resume`): while it
//! lasts, a check without a valid lease does not fence; checks keep running and reporting,
//! the devices stay armed and petted, and the freeze guard still fences. It ends by itself
//! at its end on CLOCK_BOOTTIME.
//!
//! The feeder reads only the end, one atomic word in [`Operator`]. Here is the rest, off the
//! pet path: who asked and why (for `status`, the metrics and the log), revocation stopped
//! for the pause (so a check that fails during it only lets its lease run out, and one that
//! recovers renews it), and the pause kept on tmpfs (the runtime directory, beside the fence
//! record) so that a restarted wdfeed neither extends nor drops it; a reboot ends it.
//!
//! ```text
//! wdfeed pause 1
//! boot <boot id>
//! since <seconds since boot>
//! until <seconds since boot>
//! uid <uid>
//! pid <pid>
//! reason <text>
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::fence::operator::{check_reason, MAX_MAX_PAUSE};
use crate::fence::Operator;
use crate::health::lease::LeaseTable;
use crate::health::runner::CheckHandle;
use crate::status::PauseStatus;
use crate::system::io::{read_capped, write_atomically, Durability, Links, ReadError};
use crate::units::format_duration;

/// The file's name in the runtime directory.
pub const FILE_NAME: &str = "pause";
const MAGIC: &str = "wdfeed pause 1";

/// One pause: who asked, why, and when it ends.
#[derive(Clone, Debug, PartialEq)]
pub struct Pause {
    /// When it began, on CLOCK_BOOTTIME.
    pub since: Duration,
    /// When it ends, on CLOCK_BOOTTIME.
    pub until: Duration,
    pub uid: u32,
    pub pid: i32,
    pub reason: String,
}

impl Pause {
    fn to_text(&self, boot_id: &str) -> String {
        format!(
            "{MAGIC}\nboot {boot_id}\nsince {:.3}\nuntil {:.3}\nuid {}\npid {}\nreason {}\n",
            self.since.as_secs_f64(),
            self.until.as_secs_f64(),
            self.uid,
            self.pid,
            self.reason
        )
    }

    /// The pause in `text` if it is of `boot_id`; `Ok(None)` for another boot's.
    fn parse(text: &str, boot_id: &str) -> Result<Option<Pause>, String> {
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return Err(format!("the first line is not `{MAGIC}`"));
        }
        let mut field = |key: &str| {
            lines
                .next()
                .and_then(|l| l.strip_prefix(key))
                .and_then(|l| l.strip_prefix(' '))
                .ok_or_else(|| format!("no `{key}` line where expected"))
        };
        if field("boot")? != boot_id {
            return Ok(None);
        }
        let secs = |v: &str, key: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("`{key}` is not a number of seconds"))
        };
        let since = secs(field("since")?, "since")?;
        let until = secs(field("until")?, "until")?;
        let uid = field("uid")?
            .parse()
            .map_err(|_| "`uid` is not a number".to_string())?;
        let pid = field("pid")?
            .parse()
            .map_err(|_| "`pid` is not a number".to_string())?;
        let reason = field("reason")?.to_string();
        check_reason(&reason)?;
        Ok(Some(Pause {
            since,
            until,
            uid,
            pid,
            reason,
        }))
    }
}

/// Why a pause was refused.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// The request itself is wrong (duration, reason): nothing changes.
    Bad(String),
    /// The daemon's state forbids it now: nothing changes.
    Refused(String),
}

/// The pause bookkeeping, shared by the control thread (which starts and ends pauses) and
/// the status thread (which shows them). The feeder never touches it.
pub struct PauseBook {
    operator: Arc<Operator>,
    leases: Arc<LeaseTable>,
    checks: Vec<Arc<CheckHandle>>,
    max: Duration,
    /// The file on tmpfs and the boot it is of; none when the boot id is unknown.
    file: Option<(PathBuf, String)>,
    current: Mutex<Option<Pause>>,
}

impl PauseBook {
    pub fn new(
        operator: Arc<Operator>,
        leases: Arc<LeaseTable>,
        checks: Vec<Arc<CheckHandle>>,
        max: Duration,
        runtime_dir: &Path,
        boot_id: Option<String>,
    ) -> Self {
        PauseBook {
            operator,
            leases,
            checks,
            max,
            file: boot_id.map(|b| (runtime_dir.join(FILE_NAME), b)),
            current: Mutex::new(None),
        }
    }

    /// After arming: takes up a pause of this boot that a previous wdfeed started, with its
    /// end unchanged. A pause that ended meanwhile is removed.
    pub fn restore(&self, now: Duration) {
        let Some((path, boot)) = &self.file else {
            return;
        };
        let text = match read_capped(path, 4096, Links::Refuse) {
            Err(ReadError::NotFound) => return,
            Err(e) => {
                tracing::warn!(file = %path.display(), "cannot read the pause of this boot ({e:?}): no pause; removed");
                let _ = fs::remove_file(path);
                return;
            }
            Ok(t) => t,
        };
        match Pause::parse(&text, boot) {
            Ok(Some(p)) if p.until > now => {
                self.leases.suspend_revocation();
                self.operator.set_pause_until(p.until);
                tracing::warn!(
                    uid = p.uid,
                    reason = %p.reason,
                    left_s = format!("{:.1}", (p.until - now).as_secs_f64()),
                    file = %path.display(),
                    "maintenance pause of this boot taken up again: failing checks do not fence until it ends (its end is unchanged by the restart)"
                );
                *self.lock() = Some(p);
            }
            Ok(Some(_)) => {
                tracing::info!(file = %path.display(), "the pause of this boot ended while wdfeed was stopped");
                let _ = fs::remove_file(path);
            }
            Ok(None) => {
                let _ = fs::remove_file(path);
            }
            Err(why) => {
                tracing::warn!(file = %path.display(), "the pause file of this boot is damaged ({why}): no pause; removed");
                let _ = fs::remove_file(path);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Pause>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds the bookkeeping's lock, as the control or status thread would (tests: the
    /// feeder and the fence must not wait for it).
    #[cfg(test)]
    pub fn lock_for_test(&self) -> std::sync::MutexGuard<'_, Option<Pause>> {
        self.lock()
    }

    /// Starts (or replaces) a pause of `length` from `now`, for `uid`/`pid` and `reason`.
    /// Refused when a check holds no valid lease already: the node is unhealthy now, and a
    /// pause does not hide a failure that already happened (the feeder fences at its next
    /// tick).
    pub fn start(
        &self,
        now: Duration,
        length: Duration,
        uid: u32,
        pid: i32,
        reason: &str,
    ) -> Result<Pause, Refusal> {
        if length.is_zero() {
            return Err(Refusal::Bad(
                "a pause of 0 ends before it starts: give how long, e.g. --for 10m".into(),
            ));
        }
        if length > self.max {
            return Err(Refusal::Bad(format!(
                "{} is over max-pause ({}): ask for at most that, or raise max-pause in the config (at most {})",
                format_duration(length),
                format_duration(self.max),
                format_duration(MAX_MAX_PAUSE)
            )));
        }
        check_reason(reason).map_err(Refusal::Bad)?;
        let mut current = self.lock();
        let was_paused = self.operator.paused_at(now);
        // Stop revocation first, then look: a check that fails from here on only lets its
        // lease run out; one that had already failed is seen below.
        self.leases.suspend_revocation();
        if let Some(index) = self.leases.first_expired(now) {
            if !was_paused {
                self.leases.allow_revocation();
                let (name, why) = self
                    .checks
                    .get(index)
                    .map(|h| (h.name.clone(), h.why_expired(now)))
                    .unwrap_or_else(|| (format!("check {index}"), "no lease".into()));
                return Err(Refusal::Refused(format!(
                    "check {name} holds no valid lease ({why}): the node is unhealthy now, and a pause does not hide a failure that already happened; wdfeed fences at its next tick"
                )));
            }
        }
        let pause = Pause {
            since: current
                .as_ref()
                .filter(|_| was_paused)
                .map_or(now, |p| p.since),
            until: now + length,
            uid,
            pid,
            reason: reason.to_string(),
        };
        self.operator.set_pause_until(pause.until);
        if let Some((path, boot)) = &self.file {
            let text = pause.to_text(boot);
            if let Err(e) = write_atomically(path, text.as_bytes(), 0o600, Durability::Unsynced) {
                tracing::warn!(file = %path.display(), "cannot keep the pause on tmpfs: {e}; a restart of wdfeed would drop it");
            }
        }
        tracing::warn!(
            uid,
            pid,
            reason = %pause.reason,
            for_s = length.as_secs_f64(),
            "{}: failing checks do not fence until it ends (`wdfeed resume` ends it); the freeze guard still fences, the devices stay armed and petted",
            if was_paused { "maintenance pause replaced" } else { "maintenance pause" }
        );
        *current = Some(pause.clone());
        Ok(pause)
    }

    /// Ends the pause now (`wdfeed resume`); the pause that was, if any.
    pub fn resume(&self, now: Duration, uid: u32, pid: i32) -> Option<Pause> {
        let mut current = self.lock();
        let ended = current.take().filter(|_| self.operator.paused_at(now));
        if ended.is_some() {
            self.operator.set_pause_until(now);
            self.end();
            tracing::warn!(
                uid,
                pid,
                "maintenance pause ended (wdfeed resume): a check without a valid lease fences at the next tick"
            );
        }
        ended
    }

    /// The control thread's round: ends a pause whose time ran out (the feeder stopped
    /// honouring it at its end already). The next end to look at, if a pause lasts.
    pub fn expire(&self, now: Duration) -> Option<Duration> {
        self.expire_held(self.lock(), now)
    }

    /// The same from the status thread, which never waits: the round is skipped while the
    /// control thread holds the bookkeeping. So a pause ends (and revocation comes back)
    /// even if the control thread is not running.
    pub fn expire_if_free(&self, now: Duration) {
        if let Ok(current) = self.current.try_lock() {
            self.expire_held(current, now);
        }
    }

    fn expire_held(
        &self,
        mut current: std::sync::MutexGuard<'_, Option<Pause>>,
        now: Duration,
    ) -> Option<Duration> {
        let p = current.as_ref()?;
        if self.operator.paused_at(now) {
            return Some(p.until);
        }
        let ended = current.take()?;
        self.end();
        let failing: Vec<String> = (0..self.checks.len())
            .filter(|&i| self.leases.expiry(i).is_none_or(|e| e <= now))
            .filter_map(|i| self.checks.get(i).map(|h| h.name.clone()))
            .collect();
        if failing.is_empty() {
            tracing::warn!(uid = ended.uid, reason = %ended.reason, "maintenance pause ended: its time ran out; every check holds a valid lease");
        } else {
            tracing::warn!(uid = ended.uid, reason = %ended.reason, failing = %failing.join(", "), "maintenance pause ended: its time ran out, and a check still holds no valid lease: wdfeed fences");
        }
        None
    }

    /// Revocation back on, the file gone.
    fn end(&self) {
        self.leases.allow_revocation();
        if let Some((path, _)) = &self.file {
            let _ = fs::remove_file(path);
        }
    }

    /// The pause in progress at `now`, for the status file; `None` when there is none or the
    /// control thread holds the bookkeeping this very moment (the status thread never waits).
    pub fn status(&self, now: Duration) -> Option<PauseStatus> {
        let until = self.operator.pause_end(now)?;
        let p = self.current.try_lock().ok()?.clone()?;
        Some(PauseStatus {
            uid: p.uid,
            pid: p.pid,
            reason: p.reason,
            since_s: crate::status::secs(p.since),
            left_s: crate::status::secs(until.saturating_sub(now)),
        })
    }
}

#[cfg(test)]
#[path = "pause_tests.rs"]
mod tests;
