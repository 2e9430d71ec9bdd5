//! The persistent state record (/var/lib/wdfeed/state by default): what the last wdfeed of
//! this host was doing, so that the next boot knows whether the previous one ended with a
//! device armed. Written at start-up, at arming, at a stop, at `rejoin-now` of a spent fence
//! budget, and once after a fence (from the status thread, never on the fence path, without
//! waiting), atomically (a temporary file renamed over it, both synced), and always on a
//! short-lived thread the daemon waits for only so long: a hung disk delays nothing. Writes
//! land in the order they were asked for.
//!
//! The format, small text:
//!
//! ```text
//! wdfeed state 1
//! boot <boot id>
//! state started | armed | stopped-cleanly | stopped-armed | fenced
//! bound <seconds>
//! rejoin-delay <seconds>
//! ended <seconds since the epoch> <boot id> <what>     (0 or more: the fence budget's)
//! dumps <directory>          (fence.mode crashdump: where the dump kernel saves)
//! ```
//!
//! `fenced` is written after a fence, off the fence path and without waiting for it (a
//! status-thread round later); a reset that comes first leaves `armed`. The `ended` lines are
//! the boots that ended armed in a row ([`super::budget`]); readers before them stop at
//! `rejoin-delay`.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::budget::Ended;

/// The state directory unless `--state-dir` says otherwise (the unit's StateDirectory=wdfeed).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/wdfeed";
/// The record's file name in the state directory.
pub const FILE_NAME: &str = "state";
const MAGIC: &str = "wdfeed state 1";
/// A record is under 200 bytes plus its `ended` lines (at most
/// [`super::budget::MAX_KEPT`], each under 260); anything much larger is not one.
const MAX_BYTES: u64 = 8192;
/// How long the daemon waits for a read or write of the record before it goes on without.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// What the wdfeed of the recorded boot was doing when it last wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Running, no device armed yet.
    Started,
    /// At least one device armed: a reset, crash or power loss leaves this.
    Armed,
    /// Stopped and disarmed every device.
    StoppedCleanly,
    /// Stopped on request and left the devices armed (`on-exit: keep-armed`): the next boot
    /// waits the rejoin delay (the device may have reset the node), but this is no fence.
    StoppedArmed,
    /// Fenced (written after the fence, when the disk allowed it).
    Fenced,
}

impl RunState {
    pub fn word(self) -> &'static str {
        match self {
            RunState::Started => "started",
            RunState::Armed => "armed",
            RunState::StoppedCleanly => "stopped-cleanly",
            RunState::StoppedArmed => "stopped-armed",
            RunState::Fenced => "fenced",
        }
    }

    fn from_word(w: &str) -> Option<Self> {
        [
            RunState::Started,
            RunState::Armed,
            RunState::StoppedCleanly,
            RunState::StoppedArmed,
            RunState::Fenced,
        ]
        .into_iter()
        .find(|s| s.word() == w)
    }

    /// Whether the boot ended with a device armed and no clean stop: a reset may follow.
    pub fn ended_armed(self) -> bool {
        matches!(
            self,
            RunState::Armed | RunState::StoppedArmed | RunState::Fenced
        )
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct StateRecord {
    pub boot: String,
    pub state: RunState,
    /// The fence bound B of the config that was running.
    pub bound: Duration,
    /// The rejoin delay that config asked for (its `rejoin-delay`, else its B).
    pub rejoin_delay: Duration,
    /// The boots that ended armed in a row, oldest first (the fence budget's).
    pub ended: Vec<Ended>,
    /// `fence.mode: crashdump`: where that config's dumps go, for the next boot to look.
    pub dumps: Option<PathBuf>,
}

impl StateRecord {
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{MAGIC}\nboot {}\nstate {}\nbound {:.3}\nrejoin-delay {:.3}\n",
            self.boot,
            self.state.word(),
            self.bound.as_secs_f64(),
            self.rejoin_delay.as_secs_f64()
        );
        for e in &self.ended {
            text.push_str(&e.to_line());
            text.push('\n');
        }
        if let Some(d) = &self.dumps {
            text.push_str(&format!("dumps {}\n", d.display()));
        }
        text
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return Err(format!("the first line is not `{MAGIC}` (a foreign file?)"));
        }
        let mut field = |key: &str| {
            lines
                .next()
                .and_then(|l| l.strip_prefix(key))
                .and_then(|l| l.strip_prefix(' '))
                .ok_or_else(|| format!("no `{key}` line where expected (truncated?)"))
        };
        let boot = field("boot")?.to_string();
        if boot.len() != 36 || !boot.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err("the `boot` line holds no boot id".into());
        }
        let word = field("state")?;
        let state = RunState::from_word(word).ok_or_else(|| {
            format!(
                "unknown state `{}`",
                word.chars().take(20).collect::<String>()
            )
        })?;
        let secs = |v: &str, key: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e7)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("`{key}` is not a number of seconds"))
        };
        let bound = secs(field("bound")?, "bound")?;
        let rejoin_delay = secs(field("rejoin-delay")?, "rejoin-delay")?;
        let mut ended = Vec::new();
        let mut dumps = None;
        for line in lines {
            if line.starts_with("ended ") {
                ended.push(Ended::from_line(line)?);
            } else if let Some(d) = line.strip_prefix("dumps ") {
                // Absent from records of configs without crashdump (and of older versions).
                dumps = Some(PathBuf::from(d)).filter(|p| p.is_absolute());
            }
        }
        Ok(StateRecord {
            boot,
            state,
            bound,
            rejoin_delay,
            ended,
            dumps,
        })
    }
}

/// What the state directory held at start-up.
#[derive(Clone, Debug, PartialEq)]
pub enum Previous {
    /// No state directory: wdfeed never ran here with it (or it was removed).
    NoDirectory,
    /// The directory is there, the record is not: the first start with it.
    NoRecord,
    Record(StateRecord),
    /// Unreadable, truncated or foreign.
    Damaged {
        why: String,
    },
    /// The read did not finish within [`IO_TIMEOUT`] (a hung disk).
    TimedOut,
}

/// Reads the record in `dir`, waiting at most [`IO_TIMEOUT`].
pub fn read(dir: &Path) -> Previous {
    let dir = dir.to_path_buf();
    bounded("state-read", move || read_now(&dir)).unwrap_or(Previous::TimedOut)
}

fn read_now(dir: &Path) -> Previous {
    use crate::system::io::{read_capped, Links, ReadError};
    if !dir.is_dir() {
        return Previous::NoDirectory;
    }
    let text = match read_capped(&dir.join(FILE_NAME), MAX_BYTES, Links::Refuse) {
        Err(ReadError::NotFound) => return Previous::NoRecord,
        Err(ReadError::Symlink) => return damaged("a symbolic link".into()),
        Err(ReadError::NotRegular) => return damaged("not a regular file".into()),
        Err(ReadError::TooBig(max)) => return damaged(format!("over {max} bytes")),
        Err(ReadError::Io(e)) => return damaged(format!("unreadable: {e}")),
        Ok(t) => t,
    };
    match StateRecord::parse(&text) {
        Ok(r) => Previous::Record(r),
        Err(why) => damaged(why),
    }
}

fn damaged(why: String) -> Previous {
    Previous::Damaged { why }
}

/// Writes `record` to `dir` atomically, waiting at most [`IO_TIMEOUT`]; says what happened
/// in the log, and never fails the daemon.
pub fn store(dir: &Path, record: &StateRecord, seq: Seq) {
    let path = dir.join(FILE_NAME);
    let text = record.to_text();
    let d = dir.to_path_buf();
    let Seq(seq) = seq;
    match bounded("state-write", move || write_in_order(&d, &text, seq)) {
        Some(Ok(true)) => {
            tracing::debug!(record = %path.display(), state = record.state.word(), "state record written")
        }
        Some(Ok(false)) => {
            tracing::debug!(record = %path.display(), state = record.state.word(), "state record not written: a later one was")
        }
        Some(Err(e)) => tracing::warn!(
            record = %path.display(),
            state = record.state.word(),
            "cannot write the state record: {e}; the next boot cannot tell whether this one ended armed (give a writable --state-dir; the unit's StateDirectory=wdfeed makes /var/lib/wdfeed)"
        ),
        None => tracing::warn!(
            record = %path.display(),
            state = record.state.word(),
            "the state record write did not finish within {} s (a hung disk?): wdfeed goes on; the record may still say the previous state",
            IO_TIMEOUT.as_secs()
        ),
    }
}

/// Writes `record` to `dir` on a thread of its own, without waiting for it: after a fence,
/// from the status thread, on a node whose disk may hang. The thread logs what happened.
pub fn store_detached(dir: &Path, record: &StateRecord, seq: Seq) {
    let (d, text, state) = (dir.to_path_buf(), record.to_text(), record.state.word());
    let Seq(seq) = seq;
    let spawned = crate::system::threads::spawn("state-write", move || {
        match write_in_order(&d, &text, seq) {
            Ok(true) => {
                tracing::info!(record = %path_in(&d).display(), state, "state record written")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(record = %path_in(&d).display(), state, "cannot write the state record: {e}")
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the state-write thread: {e}");
    }
}

/// The order writes were asked in: each writer thread takes a number when it is asked.
static ASKED: AtomicU64 = AtomicU64::new(1);
/// Per state directory, the number of the last write done; one writer at a time.
static WRITTEN: Mutex<Vec<(PathBuf, u64)>> = Mutex::new(Vec::new());

/// A write's place in the order writes were asked in (taken by the caller while it holds
/// whatever decides what the record says, so the order of the numbers is the order of the
/// decisions).
pub struct Seq(u64);

pub fn next_seq() -> Seq {
    Seq(ASKED.fetch_add(1, Ordering::SeqCst))
}

/// Writes `text` unless a write asked for later was done already (false then): the writer
/// threads may run in any order, and the record must end as the last one asked says (an
/// `armed` that was still on its way must not overwrite the `fenced` written after it).
fn write_in_order(dir: &Path, text: &str, seq: u64) -> io::Result<bool> {
    let mut written = WRITTEN.lock().unwrap_or_else(|e| e.into_inner());
    let slot = match written.iter().position(|(d, _)| d == dir) {
        Some(i) => i,
        None => {
            written.push((dir.to_path_buf(), 0));
            written.len() - 1
        }
    };
    if written[slot].1 > seq {
        return Ok(false);
    }
    write_now(dir, text)?;
    written[slot].1 = seq;
    Ok(true)
}

fn write_now(dir: &Path, text: &str) -> io::Result<()> {
    use crate::system::io::{write_atomically, Durability};
    write_atomically(
        &dir.join(FILE_NAME),
        text.as_bytes(),
        0o644,
        Durability::Synced,
    )
}

/// Runs `job` under [`IO_TIMEOUT`]; `None` if it did not finish (the thread is left to
/// finish or hang on its own).
pub(super) fn bounded<T: Send + 'static>(
    name: &str,
    job: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    match crate::time::deadline::within(name, IO_TIMEOUT, job) {
        Ok(t) => Some(t),
        Err(crate::time::deadline::Overrun::NoThread(e)) => {
            tracing::warn!("cannot start the {name} thread: {e}");
            None
        }
        Err(crate::time::deadline::Overrun::TimedOut(_)) => None,
    }
}

/// The record's path in `dir`, for messages.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}
