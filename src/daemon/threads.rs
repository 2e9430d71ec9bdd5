//! The daemon's long-lived threads besides the checks (health) and the status thread
//! (status): the feeder, at the highest realtime priority, and the kill-list refresher.

use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::Event;
use crate::feeder::Feeder;
use crate::fence::KillList;
use crate::system::hardening::{self};
use crate::time::{Clock, Stopper};
use crate::Failure;

/// Starts the feeder; it hands itself back when it ends, and says so on `events`.
pub(super) fn start_feeder(
    feeder: Feeder,
    clock: Arc<dyn Clock>,
    stop: Arc<Stopper>,
    events: Sender<Event>,
) -> Result<JoinHandle<Feeder>, Failure> {
    crate::system::threads::spawn("feeder", move || {
        // Published, not logged: the status thread logs it, so the first tick never
        // waits on stderr.
        let mut feeder = feeder;
        feeder
            .shared
            .set_realtime(hardening::set_realtime(hardening::FEEDER_PRIORITY));
        let exit = feeder.run(clock.as_ref(), &stop);
        let _ = events.send(Event::FeederDone(exit));
        feeder
    })
    .map_err(|e| Failure::runtime(format!("cannot start the feeder thread: {e}")))
}

/// The kill list's pidfds are refreshed every interval, but not more often than this.
const KILL_LIST_REFRESH_MIN: Duration = Duration::from_secs(5);

/// Keeps the kill list's pidfds fresh while the node is healthy (none without a kill list).
pub(super) fn start_kill_list_refresher(
    kill: Arc<KillList>,
    stop: Arc<Stopper>,
    every: Duration,
) -> Result<(), Failure> {
    if kill.is_empty() {
        return Ok(());
    }
    crate::system::threads::spawn("kill-list", move || {
        // A refresh reads the held processes, and walks /proc only when one is gone or an
        // entry holds none; the fence scans afresh anyway, so a process started since the
        // last walk is still killed.
        let every = every.max(KILL_LIST_REFRESH_MIN);
        kill.refresh();
        while !stop.sleep(every) {
            kill.refresh();
        }
    })
    .map(drop)
    .map_err(|e| Failure::runtime(format!("cannot start the kill-list thread: {e}")))
}
