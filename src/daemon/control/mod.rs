//! Operator requests: `wdfeed fence`, `wdfeed pause`, `wdfeed resume`, on a Unix socket in
//! the runtime directory ([`socket`]), in a one-line protocol ([`wire`]), served on a thread
//! of its own, never on the feeder's.
//!
//! Only root may ask: these requests reset the node or stop failures from fencing it, which
//! is root's to decide (like stopping wdfeed). The socket is 0600 in a directory only root
//! can write, and each connection's peer is checked with SO_PEERCRED (what the kernel
//! recorded at connect, not what the peer says); anyone else gets a refusal that says why,
//! and nothing changes. A request older than [`wire::STALE_AFTER`] is dropped.
//!
//! The fence reaches the feeder through [`Operator`] (an atomic request, the reason in a
//! buffer prepared at start-up) and a nudge of the feeder's sleep; the feeder fences at once
//! through the same prepared sequence, with `check=operator`. Serving a request takes no
//! lock the feeder or the fence takes and costs the feeder nothing: a flood of requests only
//! keeps this thread busy.

mod socket;
pub mod wire;

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub use socket::unsafe_dir;
use wire::{Answer, Ask, Request};

use super::pause::{PauseBook, Refusal};
use crate::fence::{Fencer, Latch, Operator};
use crate::time::{Clock, Stopper};
use crate::units::format_duration;

/// How long a connection may take to send its request.
const READ_LIMIT: Duration = Duration::from_millis(200);
/// How long the answer to a fence waits to say "fenced" rather than "asked".
const FENCE_CONFIRM: Duration = Duration::from_millis(200);
/// The longest the thread sleeps between looks at the pause's end and at a stop.
const ROUND: Duration = Duration::from_secs(1);
/// Refused requests are logged once per this period, with a count of the others.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// What serving requests reads and acts on.
pub struct Served {
    pub operator: Arc<Operator>,
    pub pause: Arc<PauseBook>,
    pub latch: Arc<Latch>,
    pub fencer: Arc<Fencer>,
    /// The feeder's sleep: nudged so that an asked fence comes at once, not at the next tick.
    pub feeder_wake: Arc<Stopper>,
    pub clock: Arc<dyn Clock>,
    pub dry_run: bool,
    pub interval: Duration,
}

/// The control thread, for the exit: its socket is removed.
pub struct Control {
    bound: Arc<socket::Bound>,
}

impl Control {
    /// Binds the socket in `runtime_dir` and starts serving on a thread of its own. `None`
    /// (logged) when the socket cannot be made safely: the daemon runs on without operator
    /// requests.
    pub fn start(runtime_dir: &Path, served: Served, stop: Arc<Stopper>) -> Option<Control> {
        let bound = match socket::bind(runtime_dir) {
            Ok(b) => Arc::new(b),
            Err(e) => {
                tracing::warn!("operator requests are off (wdfeed fence, pause, resume): {e}");
                return None;
            }
        };
        let b = Arc::clone(&bound);
        let spawned = crate::system::threads::spawn("control", move || serve(&b, &served, &stop));
        match spawned {
            Ok(_) => {
                tracing::info!(socket = %bound.path.display(), "operator requests (wdfeed fence, pause, resume) served, root only");
                Some(Control { bound })
            }
            Err(e) => {
                tracing::warn!("operator requests are off: cannot start the control thread: {e}");
                bound.remove();
                None
            }
        }
    }

    /// At exit: the socket goes (if it is still this process's).
    pub fn remove(&self) {
        self.bound.remove();
    }
}

/// Refusals seen in the current log period.
#[derive(Default)]
struct Refusals {
    since: Option<Instant>,
    unlogged: u64,
}

impl Refusals {
    /// Logs `line` unless one was logged in this period; then counts it.
    fn note(&mut self, line: &str) {
        let now = Instant::now();
        match self.since {
            Some(t) if now.duration_since(t) < REFUSAL_LOG_EVERY => self.unlogged += 1,
            _ => {
                if self.unlogged > 0 {
                    tracing::warn!(
                        count = self.unlogged,
                        "more operator requests were refused in the last {} s (not logged one by one)",
                        REFUSAL_LOG_EVERY.as_secs()
                    );
                }
                tracing::warn!("{line}");
                self.since = Some(now);
                self.unlogged = 0;
            }
        }
    }
}

fn serve(bound: &socket::Bound, served: &Served, stop: &Stopper) {
    let mut refusals = Refusals::default();
    let mut warned_gone = false;
    loop {
        if stop.sleep(Duration::ZERO) {
            return;
        }
        let now = served.clock.now();
        let wait = served
            .pause
            .expire(now)
            .map_or(ROUND, |end| end.saturating_sub(now).min(ROUND));
        match crate::ffi::poll_readable(bound.listener.as_fd(), wait) {
            Ok(true) => {}
            Ok(false) => {
                if !warned_gone && !bound.in_place() {
                    warned_gone = true;
                    tracing::error!(socket = %bound.path.display(), "the control socket was removed or replaced: operator requests no longer reach this wdfeed (restart it to make the socket again)");
                }
                continue;
            }
            Err(e) => {
                tracing::error!("the control socket failed ({e}): operator requests are off");
                return;
            }
        }
        // Everything waiting, but a bounded number per round so the pause's end is looked at.
        for _ in 0..64 {
            match bound.listener.accept() {
                Ok((stream, _)) => one(stream, served, &mut refusals),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::warn!("accepting an operator request failed: {e}");
                    break;
                }
            }
        }
    }
}

/// Serves one connection: who is it, what does it ask, the answer.
fn one(stream: UnixStream, served: &Served, refusals: &mut Refusals) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(READ_LIMIT));
    let _ = stream.set_write_timeout(Some(READ_LIMIT));
    let (pid, uid, _gid) = match crate::ffi::peer_credentials(stream.as_fd()) {
        Ok(c) => c,
        Err(e) => {
            refusals.note(&format!(
                "operator request refused: the peer's credentials cannot be read ({e})"
            ));
            return;
        }
    };
    let answer = if uid != 0 {
        let why = format!(
            "refused: only root may ask wdfeed to fence, pause or resume (this request came from uid {uid}, pid {pid}): a fence resets this node and a pause lets failures go unfenced, which is root's to decide"
        );
        refusals.note(&format!(
            "operator request from uid {uid} (pid {pid}) refused: only root may ask"
        ));
        Answer::Refused(why)
    } else {
        match read_request(&stream) {
            Err(why) => Answer::Bad(why),
            Ok(req) => {
                let now = served.clock.now();
                let age = now.saturating_sub(req.sent);
                if age > wire::STALE_AFTER {
                    refusals.note(&format!(
                        "operator request `{}` from pid {pid} dropped: sent {:.1} s ago (was wdfeed stopped?)",
                        req.ask.verb(),
                        age.as_secs_f64()
                    ));
                    Answer::Refused(format!(
                        "dropped: the request is {:.1} s old; its command has given up waiting, so nothing was done",
                        age.as_secs_f64()
                    ))
                } else {
                    act(served, req.ask, uid, pid, now)
                }
            }
        }
    };
    let mut w = &stream;
    let _ = w.write_all(answer.to_line().as_bytes());
}

fn read_request(stream: &UnixStream) -> Result<Request, String> {
    let mut line = Vec::with_capacity(wire::MAX_LINE);
    let mut r = BufReader::new(std::io::Read::take(stream, wire::MAX_LINE as u64 + 1));
    r.read_until(b'\n', &mut line).map_err(|e| {
        format!(
            "the request did not come within {} ms: {e}",
            READ_LIMIT.as_millis()
        )
    })?;
    if line.last() != Some(&b'\n') {
        return Err(format!(
            "the request is not one line of at most {} bytes",
            wire::MAX_LINE
        ));
    }
    line.pop();
    let text = std::str::from_utf8(&line).map_err(|_| "the request is not UTF-8".to_string())?;
    Request::parse(text)
}

/// Does what `ask` asks (root's, fresh), and says what came of it.
fn act(served: &Served, ask: Ask, uid: u32, pid: i32, now: Duration) -> Answer {
    match ask {
        Ask::Fence { reason } => fence(served, &reason, uid, pid),
        Ask::Pause { length, reason } => {
            if served.latch.is_closed() || served.operator.fence_asked() {
                return Answer::Refused("fenced: there is nothing to pause".into());
            }
            match served.pause.start(now, length, uid, pid, &reason) {
                Ok(p) => Answer::Ok(format!(
                    "paused for {} (until {:.1} s after boot): failing checks do not fence until then; the freeze guard still fences, the devices stay armed and petted; `wdfeed resume` ends it",
                    format_duration(length),
                    p.until.as_secs_f64()
                )),
                Err(Refusal::Bad(why)) => Answer::Bad(why),
                Err(Refusal::Refused(why)) => Answer::Refused(why),
            }
        }
        Ask::Resume => match served.pause.resume(now, uid, pid) {
            Some(_) => Answer::Ok(
                "pause ended: a check without a valid lease fences at the next tick".into(),
            ),
            None => Answer::Ok("no pause in progress: nothing to end".into()),
        },
    }
}

fn fence(served: &Served, reason: &str, uid: u32, pid: i32) -> Answer {
    if served.latch.is_closed() {
        let by = served
            .fencer
            .fenced_by()
            .map(|(check, evidence)| format!(" by {check}: {evidence}"))
            .unwrap_or_default();
        return Answer::Ok(format!("already fenced{by}"));
    }
    if served.operator.ask_fence(uid, pid, reason) {
        tracing::warn!(uid, pid, %reason, "wdfeed fence: an operator asks to fence this node now");
    }
    served.feeder_wake.nudge();
    let until = Instant::now() + FENCE_CONFIRM;
    while !served.latch.is_closed() && Instant::now() < until {
        thread::sleep(Duration::from_millis(2));
    }
    match (served.latch.is_closed(), served.dry_run) {
        (true, true) => Answer::Ok(
            "dry run: would fence now (check=operator); nothing is killed, no device is open".into(),
        ),
        (true, false) => Answer::Ok(
            "fenced (check=operator): the service links go down, the kill list is killed, and the hardware resets the node".into(),
        ),
        (false, _) => Answer::Ok(format!(
            "fence asked: the feeder fences at its next tick, within {}",
            format_duration(served.interval)
        )),
    }
}

#[cfg(test)]
mod tests;
