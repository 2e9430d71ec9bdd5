//! Signals: blocked in every thread before any exists, and taken by one thread of their own
//! that turns them into events for the daemon's main loop. SIGHUP re-reads the config;
//! SIGUSR1 (`wdfeed stop --fenced`) ends a fenced wdfeed, and nothing else; SIGUSR2
//! (`wdfeed rejoin-now`) ends a rejoin delay in progress.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::thread;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};

use super::Event;
use crate::config::{self, Config};
use crate::system::hardening::{self};
use crate::Failure;

/// The signals the daemon handles on a thread of its own.
fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        set.add(s);
    }
    set
}

/// What must happen before the process starts any thread (the log writer included): the
/// handled signals are blocked, so every thread inherits the mask and only the signal
/// thread receives them; and glibc is held to one malloc arena, so mlockall locks little.
pub fn prepare_process() -> Result<(), String> {
    hardening::limit_malloc_arenas();
    handled_signals()
        .thread_block()
        .map_err(|e| format!("cannot block signals: {}", e.desc()))
}

pub(super) fn start_signal_thread(tx: Sender<Event>) -> Result<(), Failure> {
    let set = handled_signals();
    crate::system::threads::spawn("signals", move || loop {
        match set.wait() {
            Ok(sig) => {
                if tx.send(Event::Signal(sig)).is_err() {
                    return;
                }
            }
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    })
    .map(drop)
    .map_err(|e| Failure::runtime(format!("cannot start the signal thread: {e}")))
}

/// A re-read under way: a second SIGHUP meanwhile is refused, so a hanging file costs one
/// thread, not one per signal.
static RELOADING: AtomicBool = AtomicBool::new(false);

/// The re-read's stack: the YAML parsers recurse once per nesting level (up to 64), as the
/// first load does on the main thread's 8 MiB; the small stack of the long-lived threads
/// leaves no margin for that. The thread lives only for one re-read.
const RELOAD_STACK: usize = 1024 * 1024;

/// SIGHUP: re-read the config, on a thread of its own, so that a file that hangs (a FIFO, a
/// dead network mount) never blocks the main loop that obeys SIGTERM. An invalid config is
/// rejected with its error and the running config stays; a valid one that differs is applied
/// at the next start (a live swap of devices or checks under an armed watchdog is a risk
/// wdfeed does not take).
pub(super) fn reload(running: &Config, path: Option<&Path>) {
    if RELOADING.swap(true, Ordering::SeqCst) {
        tracing::warn!("SIGHUP ignored: the previous re-read of the config has not ended (does the config path hang?)");
        return;
    }
    let running = running.clone();
    let path: Option<PathBuf> = path.map(Path::to_path_buf);
    let spawned = crate::system::threads::spawn_with_stack("reload", RELOAD_STACK, move || {
        reread(&running, path.as_deref());
        RELOADING.store(false, Ordering::SeqCst);
    });
    if let Err(e) = spawned {
        RELOADING.store(false, Ordering::SeqCst);
        tracing::error!(error = %e, "SIGHUP: cannot start a thread to re-read the config; the running config stays");
    }
}

fn reread(running: &Config, path: Option<&Path>) {
    match config::load(path) {
        Err(e) => tracing::error!(error = %e, "SIGHUP: new config rejected; the running config stays"),
        Ok(l) if &l.config == running => tracing::info!("SIGHUP: config unchanged"),
        Ok(_) => tracing::warn!("SIGHUP: the new config is valid and takes effect at the next start (restart wdfeed; with on-exit: keep-armed the watchdog stays armed across the restart)"),
    }
}
