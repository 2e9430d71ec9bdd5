//! The rejoin delay: a node whose previous boot ended with a device armed and no clean stop
//! (a fence's reset, a crash, a power loss) holds back READY=1, so that the units ordered
//! after wdfeed (the cluster stack) start only once the peer has stopped waiting for it. It
//! arms and pets meanwhile: the node is healthy, only kept out of the cluster.
//!
//! Two holds end only on an operator's word (`wdfeed rejoin-now`): the fence budget spent
//! (too many boots in a row ended armed: a reboot loop), and the kernel command-line word
//! `wdfeed.hold`.
//!
//! The parts: [`state`] (the persistent record of what the last wdfeed was doing),
//! [`pending`] (the delay in progress, on tmpfs, so a restart neither restarts nor skips
//! it), [`plan`] (the decision, pure), [`evidence`] (what the kernel says of the reset),
//! [`budget`] (the boots that ended armed in a row), [`hold`] (the holds an operator ends),
//! [`dump`] (the crash dump a boot fenced in `mode: crashdump` left).

pub mod budget;
pub mod dump;
pub mod evidence;
pub mod hold;
pub mod pending;
pub mod plan;
pub mod state;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use budget::{Budget, Ended};
use hold::{HoldBy, Mark};
use pending::Pending;
use state::{Previous, RunState, StateRecord};

/// What the status thread reads of the delay and the holds.
#[derive(Debug, Default)]
pub struct RejoinShared {
    /// The delay's end on CLOCK_BOOTTIME in nanoseconds; 0: no delay (or released).
    until_ns: AtomicU64,
    pub delay: Duration,
    /// Why it waits, one line.
    pub cause: String,
    /// READY=1 is held until an operator releases it.
    held: AtomicBool,
    /// What holds it, and why, one line (set at start-up).
    pub hold: Option<(HoldBy, String)>,
    /// The fence budget of the config.
    pub budget: Option<Budget>,
    /// The boots that ended armed in a row at start-up, oldest first.
    pub row: Vec<Ended>,
    /// The dump the previous boot's crash kernel saved (`fence.mode: crashdump`).
    pub previous_dump: Option<dump::SavedDump>,
}

impl RejoinShared {
    /// How long READY=1 still waits; `None` once it may go.
    pub fn left(&self, now: Duration) -> Option<Duration> {
        let until = Duration::from_nanos(self.until_ns.load(Ordering::SeqCst));
        Some(until.saturating_sub(now)).filter(|l| !l.is_zero())
    }

    /// What holds READY=1 until an operator releases it, if anything does.
    pub fn held(&self) -> Option<(HoldBy, &str)> {
        if !self.held.load(Ordering::SeqCst) {
            return None;
        }
        self.hold.as_ref().map(|(by, why)| (*by, why.as_str()))
    }

    fn release(&self) {
        self.until_ns.store(0, Ordering::SeqCst);
        self.held.store(false, Ordering::SeqCst);
    }
}

/// The rejoin delay of this run, and the state record it keeps.
pub struct Rejoin {
    /// `None` in a dry run: nothing is written.
    state_dir: Option<PathBuf>,
    runtime_dir: PathBuf,
    boot_id: String,
    configured: Option<Duration>,
    /// The boots that ended armed in a row, written with every record.
    row: Mutex<Vec<Ended>>,
    /// Fenced and recorded so: no later write says otherwise.
    fenced: AtomicBool,
    /// Nothing goes to the runtime directory either (a dry run, or no record at all).
    read_only: bool,
    /// The bound of the last record written, in nanoseconds (a release writes it again).
    bound_ns: AtomicU64,
    /// `fence.mode: crashdump`: where dumps go, recorded for the next boot.
    dumps: Option<PathBuf>,
    pub shared: Arc<RejoinShared>,
}

/// What [`Rejoin::start`] reads besides the directories.
pub struct StartUp<'a> {
    pub boot_id: &'a str,
    /// `rejoin-delay` of the running config, when set.
    pub configured: Option<Duration>,
    /// The running config's fence bound before arming (the granted timeouts are not known).
    pub current_bound: Duration,
    pub now: Duration,
    /// What the kernel says of the previous boot's end ([`evidence::causes`]).
    pub causes: Vec<String>,
    /// `rejoin-budget` of the running config.
    pub budget: Budget,
    /// The kernel command line holds [`hold::WORD`].
    pub kernel_hold: bool,
    /// Seconds since the epoch now (the budget's window spans boots).
    pub now_unix: u64,
    /// A dry run: read, decide and hold, but write nothing and wait no delay.
    pub dry_run: bool,
}

impl Rejoin {
    /// No delay, no hold and no record (tests).
    #[cfg(test)]
    pub fn none() -> Self {
        Rejoin {
            state_dir: None,
            runtime_dir: PathBuf::new(),
            boot_id: String::new(),
            configured: None,
            row: Mutex::default(),
            fenced: AtomicBool::new(false),
            read_only: true,
            bound_ns: AtomicU64::new(0),
            dumps: None,
            shared: Arc::default(),
        }
    }

    /// The same, recording `dir` in the state record as where this config's dumps go.
    pub fn recording_dumps(mut self, dir: Option<PathBuf>) -> Self {
        self.dumps = dir;
        self
    }

    /// Start-up: reads the state record, any delay and hold of this boot, decides, logs why,
    /// keeps the delay and the hold on tmpfs, and records `started` in this boot.
    pub fn start(state_dir: PathBuf, runtime_dir: PathBuf, s: StartUp) -> Self {
        let previous = state::read(&state_dir);
        let pend = pending::read(&runtime_dir, s.boot_id);
        let d = plan::decide(&plan::Inputs {
            previous: &previous,
            pending: &pend,
            boot_id: s.boot_id,
            configured: s.configured,
            current_bound: s.current_bound,
            now: s.now,
            state_path: &state::path_in(&state_dir),
            pending_path: &pending::path_in(&runtime_dir),
        });
        if d.warn {
            tracing::warn!("{}", d.line);
        } else {
            tracing::info!("{}", d.line);
        }
        let mut cause = d.line.clone();
        if d.wait.is_some() {
            if s.causes.is_empty() {
                tracing::info!("the kernel names no cause (no watchdog bootstatus CARDRESET, no wdfeed FENCE line in pstore)");
            }
            for c in &s.causes {
                tracing::warn!("previous boot: {c}");
            }
            if let Some(c) = s.causes.first() {
                cause = format!("{cause}; {c}");
            }
        }
        let row = budget::row_at_start(
            &previous,
            s.boot_id,
            s.now_unix,
            s.budget.within,
            s.causes.first().map(String::as_str),
        );
        let hold = decide_hold(&s, &runtime_dir, &previous, &row);
        let previous_dump = previous_dump(&previous, &state_dir, &runtime_dir, &s);
        let mut wait = d.wait;
        if s.dry_run {
            if let Some(p) = wait.take() {
                tracing::info!(
                    delay_s = p.delay.as_secs_f64(),
                    "dry run: a real run would hold READY=1 for the rejoin delay; this one does not"
                );
            }
        } else if let (Some(p), true) = (wait, d.new) {
            if let Err(e) = pending::write(&runtime_dir, s.boot_id, p) {
                tracing::warn!(file = %pending::path_in(&runtime_dir).display(), "cannot keep the rejoin delay on tmpfs: {e}; a restart during the delay would not see it");
            }
        }
        let rejoin = Rejoin {
            shared: Arc::new(RejoinShared {
                until_ns: AtomicU64::new(
                    wait.map_or(0, |p| crate::time::duration_to_nanos(p.until)),
                ),
                delay: wait.map_or(Duration::ZERO, |p| p.delay),
                cause,
                held: AtomicBool::new(hold.is_some()),
                hold,
                budget: Some(s.budget),
                row: row.clone(),
                previous_dump,
            }),
            state_dir: (!s.dry_run).then_some(state_dir),
            runtime_dir,
            boot_id: s.boot_id.to_string(),
            configured: s.configured,
            row: Mutex::new(row),
            fenced: AtomicBool::new(false),
            read_only: s.dry_run,
            bound_ns: AtomicU64::new(0),
            dumps: None,
        };
        if s.dry_run {
            return rejoin;
        }
        if matches!(previous, Previous::TimedOut) {
            // the disk that hung the read would hang the write too: leave it alone
            return Rejoin {
                state_dir: None,
                ..rejoin
            };
        }
        rejoin.store(RunState::Started, s.current_bound);
        rejoin
    }

    /// At arming: a reset from now on must delay the next boot.
    pub fn armed(&self, bound: Duration) {
        self.store(RunState::Armed, bound);
    }

    /// At a clean stop that disarmed every device.
    pub fn stopped_cleanly(&self, bound: Duration) {
        self.store(RunState::StoppedCleanly, bound);
    }

    /// At a stop that left the devices armed (`on-exit: keep-armed`), not fenced.
    pub fn stopped_armed(&self, bound: Duration) {
        self.store(RunState::StoppedArmed, bound);
    }

    /// After a fence (the status thread, once): the record says `fenced`, and the fence
    /// joins the row with its wall-clock time and what fenced, for the next boot's budget.
    /// Never waits: the write runs on a thread of its own, since the disk may be what failed.
    pub fn fenced(&self, bound: Duration, check: &str, evidence: &str) {
        let Some(dir) = &self.state_dir else { return };
        let (record, seq) = {
            let mut row = self.row.lock().unwrap_or_else(|e| e.into_inner());
            if self.fenced.swap(true, Ordering::SeqCst) {
                return;
            }
            let what = format!("fenced: {check}: {evidence}");
            row.push(Ended::new(budget::now_unix(), &self.boot_id, &what));
            // Numbered under the lock that `store` checks `fenced` under: no earlier
            // decision can be written after this one.
            (
                self.record(RunState::Fenced, bound, &row),
                state::next_seq(),
            )
        };
        state::store_detached(dir, &record, seq);
    }

    fn record(&self, state: RunState, bound: Duration, row: &[Ended]) -> StateRecord {
        StateRecord {
            boot: self.boot_id.clone(),
            state,
            bound,
            rejoin_delay: self.configured.unwrap_or(bound),
            ended: row.to_vec(),
            dumps: self.dumps.clone(),
        }
    }

    fn store(&self, state: RunState, bound: Duration) {
        self.bound_ns
            .store(crate::time::duration_to_nanos(bound), Ordering::SeqCst);
        let Some(dir) = &self.state_dir else { return };
        let (record, seq) = {
            let row = self.row.lock().unwrap_or_else(|e| e.into_inner());
            // `fenced` is set under this same lock: once it is, nothing else is written.
            if self.fenced.load(Ordering::SeqCst) {
                return;
            }
            (self.record(state, bound, &row), state::next_seq())
        };
        state::store(dir, &record, seq);
    }

    /// `wdfeed rejoin-now`: ends a delay or hold in progress at once (for a restart too);
    /// false if none was. Releasing a spent fence budget also ends the row of fences (the
    /// operator has looked at them).
    pub fn release_now(&self, now: Duration) -> bool {
        let held = self.shared.held();
        if self.shared.left(now).is_none() && held.is_none() {
            return false;
        }
        self.shared.release();
        if self.read_only {
            return true;
        }
        if self.shared.delay > Duration::ZERO {
            let done = Pending {
                until: now,
                delay: self.shared.delay,
            };
            if let Err(e) = pending::write(&self.runtime_dir, &self.boot_id, done) {
                tracing::warn!(file = %pending::path_in(&self.runtime_dir).display(), "cannot record the end of the rejoin delay: {e}; a restart would wait again");
            }
        }
        if held.is_some() {
            if let Err(e) = hold::write(&self.runtime_dir, &self.boot_id, Mark::Released) {
                tracing::warn!(file = %hold::path_in(&self.runtime_dir).display(), "cannot record the release of the hold: {e}; a restart would hold again");
            }
        }
        if matches!(held, Some((HoldBy::Budget, _))) {
            self.row.lock().unwrap_or_else(|e| e.into_inner()).clear();
            let bound = Duration::from_nanos(self.bound_ns.load(Ordering::SeqCst));
            self.store(RunState::Armed, bound);
        }
        true
    }
}

/// The hold of this start: one kept on tmpfs in this boot (a restart), else the fence budget
/// spent, else the kernel word. Logged with its reason and the times of the fences.
fn decide_hold(
    s: &StartUp,
    runtime_dir: &std::path::Path,
    previous: &Previous,
    row: &[Ended],
) -> Option<(HoldBy, String)> {
    let mark = if s.dry_run {
        Mark::Nothing
    } else {
        hold::read(runtime_dir, s.boot_id)
    };
    let new_boot = matches!(previous, Previous::Record(r) if r.boot != s.boot_id);
    let by = match mark {
        Mark::Released => return None,
        Mark::Held(by) => by,
        Mark::Nothing if new_boot && budget::spent(row, s.budget) => HoldBy::Budget,
        Mark::Nothing if s.kernel_hold => HoldBy::KernelWord,
        Mark::Nothing => return None,
    };
    let why = match by {
        HoldBy::Budget => format!(
            "fence budget spent: {} boots in a row ended armed within {} (rejoin-budget: {} fences), at {}",
            row.len(),
            crate::units::format_duration(s.budget.within),
            s.budget.fences,
            row.iter().map(Ended::describe).collect::<Vec<_>>().join("; ")
        ),
        HoldBy::KernelWord => format!(
            "the kernel command line says `{}`",
            hold::WORD
        ),
    };
    tracing::error!(
        "{why}: READY=1 is held until `wdfeed rejoin-now`{}; wdfeed arms and pets meanwhile (the units ordered after it, the cluster stack, wait)",
        if matches!(mark, Mark::Held(_)) { " (held earlier in this boot)" } else { "" }
    );
    if !s.dry_run && mark == Mark::Nothing {
        if let Err(e) = hold::write(runtime_dir, s.boot_id, Mark::Held(by)) {
            tracing::warn!(file = %hold::path_in(runtime_dir).display(), "cannot keep the hold on tmpfs: {e}; a restart would decide again");
        }
    }
    Some((by, why))
}

#[cfg(test)]
mod tests;

/// The dump the previous boot left (`fence.mode: crashdump`), named in the log; kept on tmpfs
/// (not in a dry run) so that a restart in this boot names it again.
fn previous_dump(
    previous: &Previous,
    state_dir: &std::path::Path,
    runtime_dir: &std::path::Path,
    s: &StartUp,
) -> Option<dump::SavedDump> {
    match dump::of_previous_boot(previous, state_dir, s.boot_id) {
        Some(Ok(found)) => {
            tracing::warn!("{}", found.describe());
            if !s.dry_run {
                if let Err(e) = dump::keep(runtime_dir, s.boot_id, &found) {
                    tracing::warn!(dir = %runtime_dir.display(), "cannot keep the previous boot's dump in the runtime directory: {e}; a restart would not name it");
                }
            }
            Some(found)
        }
        Some(Err(line)) => {
            tracing::warn!("{line}");
            None
        }
        // Restarted in this boot: what the first start found.
        None => dump::kept(runtime_dir, s.boot_id).inspect(|found| {
            tracing::warn!(
                "{} (found at the first start in this boot)",
                found.describe()
            )
        }),
    }
}
