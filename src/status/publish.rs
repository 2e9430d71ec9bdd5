//! The status thread: every interval, the state to the status file and, when its summary
//! changed, to systemd as STATUS=. Off the pet path: a stuck /run stalls only this thread.

use std::sync::Arc;
use std::thread;

use super::{write, Reporter};
use crate::system::hardening::THREAD_STACK;
use crate::time::Stopper;

/// Starts the status thread; it removes the status file when `stop` is stopped.
pub fn start(reporter: Reporter, stop: Arc<Stopper>) -> std::io::Result<()> {
    thread::Builder::new()
        .name("status".into())
        .stack_size(THREAD_STACK)
        .spawn(move || publish(&reporter, &stop))
        .map(drop)
}

fn publish(reporter: &Reporter, stop: &Stopper) {
    let mut warned = false;
    let mut last_summary = String::new();
    loop {
        reporter.hand_over();
        let s = reporter.collect();
        let summary = s.summary();
        if summary != last_summary {
            reporter.notifier.send(&format!("STATUS={summary}"));
            last_summary = summary;
        }
        if let Some(t) = &reporter.textfile {
            t.offer(&s);
        }
        if let Err(e) = write(&reporter.path, &s) {
            if !warned {
                warned = true;
                tracing::warn!(file = %reporter.path.display(), error = %e, "cannot write the status file; `wdfeed status` will not see this daemon (use --status-file)");
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
