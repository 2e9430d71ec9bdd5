//! The status thread: every interval (and when a check or the fence rings it), the handover
//! file, the log lines of what the feeder and the fence did, the state to the status file
//! and the metrics textfile when it changed (or its refresh period passed: see
//! [`super::Status::changed_from`]) and, when its summary changed, to systemd as STATUS=. Off
//! the pet path: a stuck /run or a blocked log stalls only this thread.

use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Duration;

use super::report::Logged;
use super::{write, Reporter};
use crate::time::Stopper;

/// The running status thread, to wait for its last act (removing the status file) at exit.
pub struct StatusThread {
    done: Receiver<()>,
}

impl StatusThread {
    /// Waits at most `max` for the thread to finish after its stopper was stopped: a status
    /// file on a stuck /run must not hold up the exit.
    pub fn wait_stopped(&self, max: Duration) {
        let _ = self.done.recv_timeout(max);
    }
}

/// Starts the status thread; it removes the status file when `stop` is stopped.
pub fn start(reporter: Reporter, stop: Arc<Stopper>) -> std::io::Result<StatusThread> {
    let (tx, done) = mpsc::channel();
    crate::system::threads::spawn("status", move || {
        publish(&reporter, &stop);
        let _ = tx.send(());
    })?;
    Ok(StatusThread { done })
}

fn publish(reporter: &Reporter, stop: &Stopper) {
    let mut warned = false;
    let mut last_summary = String::new();
    let mut logged = Logged::default();
    let mut written: Option<super::Status> = None;
    let refresh = reporter.refresh().as_secs_f64();
    loop {
        reporter.hand_over();
        reporter.log_news(&mut logged);
        let s = reporter.collect();
        let summary = s.summary();
        if summary != last_summary {
            reporter.notifier.send(&format!("STATUS={summary}"));
            last_summary = summary;
        }
        let due = written
            .as_ref()
            .is_none_or(|w| s.changed_from(w) || s.written_at_s - w.written_at_s >= refresh);
        if due {
            if let Some(t) = &reporter.textfile {
                t.offer(&s);
            }
            match write(&reporter.path, &s) {
                Ok(()) => written = Some(s),
                Err(e) if !warned => {
                    warned = true;
                    tracing::warn!(file = %reporter.path.display(), error = %e, "cannot write the status file; `wdfeed status` will not see this daemon (use --status-file)");
                }
                Err(_) => {}
            }
        }
        if stop.sleep(reporter.interval) {
            let _ = std::fs::remove_file(&reporter.path);
            if let Some(t) = &reporter.textfile {
                t.stop();
            }
            return;
        }
    }
}
