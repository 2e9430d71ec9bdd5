//! The rejoin delay: a node whose previous boot ended with a device armed and no clean stop
//! (a fence's reset, a crash, a power loss) holds back READY=1, so that the units ordered
//! after wdfeed (the cluster stack) start only once the peer has stopped waiting for it. It
//! arms and pets meanwhile: the node is healthy, only kept out of the cluster.
//!
//! The parts: [`state`] (the persistent record of what the last wdfeed was doing),
//! [`pending`] (the delay in progress, on tmpfs, so a restart neither restarts nor skips
//! it), [`plan`] (the decision, pure), [`evidence`] (what the kernel says of the reset),
//! [`dump`] (the crash dump a boot fenced in `mode: crashdump` left).

pub mod dump;
pub mod evidence;
pub mod pending;
pub mod plan;
pub mod state;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pending::Pending;
use state::{Previous, RunState, StateRecord};

use crate::time::duration_to_nanos;

/// What the status thread reads of the delay.
#[derive(Debug, Default)]
pub struct RejoinShared {
    /// The delay's end on CLOCK_BOOTTIME in nanoseconds; 0: no delay (or released).
    until_ns: AtomicU64,
    pub delay: Duration,
    /// Why it waits, one line.
    pub cause: String,
    /// The dump the previous boot's crash kernel saved (`fence.mode: crashdump`).
    pub previous_dump: Option<dump::SavedDump>,
}

impl RejoinShared {
    /// How long READY=1 still waits; `None` once it may go.
    pub fn left(&self, now: Duration) -> Option<Duration> {
        let until = Duration::from_nanos(self.until_ns.load(Ordering::SeqCst));
        Some(until.saturating_sub(now)).filter(|l| !l.is_zero())
    }

    fn release(&self) {
        self.until_ns.store(0, Ordering::SeqCst);
    }
}

/// The rejoin delay of this run, and the state record it keeps.
pub struct Rejoin {
    /// `None` in a dry run: nothing is read or written.
    state_dir: Option<PathBuf>,
    runtime_dir: PathBuf,
    boot_id: String,
    configured: Option<Duration>,
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
}

impl Rejoin {
    /// No delay and no record (a dry run).
    pub fn none() -> Self {
        Rejoin {
            state_dir: None,
            runtime_dir: PathBuf::new(),
            boot_id: String::new(),
            configured: None,
            dumps: None,
            shared: Arc::default(),
        }
    }

    /// The same, recording `dir` in the state record as where this config's dumps go.
    pub fn recording_dumps(mut self, dir: Option<PathBuf>) -> Self {
        self.dumps = dir;
        self
    }

    /// Start-up: reads the state record and any delay of this boot, decides, logs why,
    /// keeps the delay on tmpfs, and records `started` in this boot.
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
        let previous_dump = match dump::of_previous_boot(&previous, &state_dir, s.boot_id) {
            Some(Ok(found)) => {
                tracing::warn!("{}", found.describe());
                if let Err(e) = dump::keep(&runtime_dir, s.boot_id, &found) {
                    tracing::warn!(dir = %runtime_dir.display(), "cannot keep the previous boot's dump in the runtime directory: {e}; a restart would not name it");
                }
                Some(found)
            }
            Some(Err(line)) => {
                tracing::warn!("{line}");
                None
            }
            // Restarted in this boot: what the first start found.
            None => dump::kept(&runtime_dir, s.boot_id).inspect(|found| {
                tracing::warn!(
                    "{} (found at the first start in this boot)",
                    found.describe()
                )
            }),
        };
        if let (Some(p), true) = (d.wait, d.new) {
            if let Err(e) = pending::write(&runtime_dir, s.boot_id, p) {
                tracing::warn!(file = %pending::path_in(&runtime_dir).display(), "cannot keep the rejoin delay on tmpfs: {e}; a restart during the delay would not see it");
            }
        }
        let rejoin = Rejoin {
            shared: Arc::new(RejoinShared {
                until_ns: AtomicU64::new(d.wait.map_or(0, |p| duration_to_nanos(p.until))),
                delay: d.wait.map_or(Duration::ZERO, |p| p.delay),
                cause,
                previous_dump,
            }),
            state_dir: Some(state_dir),
            runtime_dir,
            boot_id: s.boot_id.to_string(),
            configured: s.configured,
            dumps: None,
        };
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

    fn store(&self, state: RunState, bound: Duration) {
        let Some(dir) = &self.state_dir else { return };
        state::store(
            dir,
            &StateRecord {
                boot: self.boot_id.clone(),
                state,
                bound,
                rejoin_delay: self.configured.unwrap_or(bound),
                dumps: self.dumps.clone(),
            },
        );
    }

    /// `wdfeed rejoin-now`: ends a delay in progress at once (for a restart too); false if
    /// none was.
    pub fn release_now(&self, now: Duration) -> bool {
        if self.shared.left(now).is_none() {
            return false;
        }
        self.shared.release();
        let done = Pending {
            until: now,
            delay: self.shared.delay,
        };
        if let Err(e) = pending::write(&self.runtime_dir, &self.boot_id, done) {
            tracing::warn!(file = %pending::path_in(&self.runtime_dir).display(), "cannot record the end of the rejoin delay: {e}; a restart would wait again");
        }
        true
    }
}

#[cfg(test)]
mod tests;
