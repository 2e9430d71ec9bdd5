//! READY=1 and the rejoin delay: on a boot after one that ended armed, READY=1 (which lets
//! the units ordered after wdfeed start) waits for `rejoin-delay` while wdfeed arms and pets;
//! SIGUSR2 (`wdfeed rejoin-now`) ends the wait. A fenced wdfeed never sends READY=1.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use super::{Event, Options};
use crate::config::{bound, Config};
use crate::device::sysfs;
use crate::fence::record::{FenceRecord, Found};
use crate::fence::Latch;
use crate::rejoin::{evidence, Rejoin, StartUp};
use crate::system::notify::Notifier;
use crate::time::Clock;

/// How often the log says how long READY=1 still waits.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The rejoin delay of this start (none in a dry run, which has no fence record).
pub(super) fn start_rejoin(
    config: &Config,
    opts: &Options,
    record: Option<&(Arc<FenceRecord>, Found)>,
    now: Duration,
) -> Rejoin {
    let Some((rec, _)) = record else {
        return Rejoin::none();
    };
    let paths: Vec<_> = config.devices.iter().map(|d| d.path.clone()).collect();
    let identities = sysfs::identities(&opts.root, paths.iter().map(|p| p.as_path()));
    Rejoin::start(
        opts.state_dir.clone(),
        opts.runtime_dir.clone(),
        StartUp {
            boot_id: rec.boot_id(),
            configured: config.rejoin_delay,
            current_bound: bound::compute(config, &identities, None).total,
            now,
            causes: evidence::causes(&opts.root, &paths),
        },
    )
}

/// Sends READY=1 once the delay is over, and says how long it still waits meanwhile.
pub(super) struct Gate<'a> {
    rejoin: &'a Rejoin,
    notifier: &'a Notifier,
    clock: &'a dyn Clock,
    latch: &'a Latch,
    sent: bool,
    last_report: Option<Duration>,
}

impl<'a> Gate<'a> {
    pub(super) fn new(
        rejoin: &'a Rejoin,
        notifier: &'a Notifier,
        clock: &'a dyn Clock,
        latch: &'a Latch,
    ) -> Self {
        Gate {
            rejoin,
            notifier,
            clock,
            latch,
            sent: false,
            last_report: None,
        }
    }

    /// The next event; `None` when the wait for READY=1 only had to be looked at again,
    /// `Err` when the event channel is gone.
    pub(super) fn next_event(&mut self, events: &Receiver<Event>) -> Option<Result<Event, ()>> {
        if self.sent || self.latch.is_closed() {
            return Some(events.recv().map_err(drop));
        }
        let now = self.clock.now();
        let Some(left) = self.rejoin.shared.left(now) else {
            self.send_ready();
            return None;
        };
        if self
            .last_report
            .is_none_or(|t| now.saturating_sub(t) >= REPORT_EVERY)
        {
            self.last_report = Some(now);
            tracing::info!(
                wait_left_s = format!("{:.1}", left.as_secs_f64()),
                "holding READY=1 for the rejoin delay: armed and petting; `wdfeed rejoin-now` ends the wait"
            );
        }
        match events.recv_timeout(left.min(REPORT_EVERY)) {
            Ok(e) => Some(Ok(e)),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Err(())),
        }
    }

    /// SIGUSR2 (`wdfeed rejoin-now`).
    pub(super) fn rejoin_now(&mut self) {
        if self.rejoin.release_now(self.clock.now()) {
            tracing::warn!(
                "SIGUSR2 (wdfeed rejoin-now): the rejoin delay ends now, on the operator's word"
            );
        } else {
            tracing::warn!("SIGUSR2 (wdfeed rejoin-now) ignored: no rejoin delay in progress");
        }
    }

    fn send_ready(&mut self) {
        self.sent = true;
        self.notifier.send("READY=1");
        let delay = self.rejoin.shared.delay;
        if delay.is_zero() {
            tracing::info!("READY=1 sent");
        } else {
            tracing::info!(
                rejoin_delay_s = delay.as_secs_f64(),
                "READY=1 sent: the rejoin delay is over"
            );
        }
    }
}
