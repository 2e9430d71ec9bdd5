//! READY=1 and the rejoin delay: on a boot after one that ended armed, READY=1 (which lets
//! the units ordered after wdfeed start) waits for `rejoin-delay` while wdfeed arms and pets;
//! SIGUSR2 (`wdfeed rejoin-now`) ends the wait. A fenced wdfeed never sends READY=1.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use super::{Event, Options};
use crate::config::{bound, Config};
use crate::device::sysfs;
use crate::fence::record::{self, FenceRecord, Found};
use crate::fence::Latch;
use crate::rejoin::{budget, evidence, hold, Rejoin, StartUp};
use crate::system::notify::Notifier;
use crate::time::Clock;

/// How often the log says how long READY=1 still waits.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The rejoin delay and holds of this start. A dry run reads the records and the kernel
/// command line too, and holds READY=1 as a real run would, but writes nothing and waits no
/// delay (it never armed, so no peer waits for it).
pub(super) fn start_rejoin(
    config: &Config,
    opts: &Options,
    record: Option<&(Arc<FenceRecord>, Found)>,
    now: Duration,
) -> Rejoin {
    let boot_id = match record {
        Some((rec, _)) => rec.boot_id().to_string(),
        None => record::read_boot_id(&opts.root).unwrap_or_else(|e| {
            tracing::warn!("{e}: holds and the fence budget of this boot cannot be told apart from a restart's");
            String::new()
        }),
    };
    let kernel_hold = hold::kernel_word(&opts.root).unwrap_or_else(|e| {
        tracing::warn!("{e}: the `{}` word cannot be seen", hold::WORD);
        false
    });
    let paths: Vec<_> = config.devices.iter().map(|d| d.path.clone()).collect();
    let identities = sysfs::identities(&opts.root, paths.iter().map(|p| p.as_path()));
    Rejoin::start(
        opts.state_dir.clone(),
        opts.runtime_dir.clone(),
        StartUp {
            boot_id: &boot_id,
            configured: config.rejoin_delay,
            current_bound: bound::compute(config, &identities, None).total,
            now,
            causes: evidence::causes(&opts.root, &paths),
            budget: config.rejoin_budget,
            kernel_hold,
            now_unix: budget::now_unix(),
            dry_run: opts.dry_run,
        },
    )
    .recording_dumps(config.fence.crashdump.as_ref().map(|c| c.dir.clone()))
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
        if self.sent {
            return Some(events.recv().map_err(drop));
        }
        let now = self.clock.now();
        // Fenced before READY=1: READY=1 never comes, and the start job must not time out
        // either: systemd would kill wdfeed, and the close pings the device once more (a
        // later reset than B), or stops a driver without magic close.
        let fenced = self.latch.is_closed();
        let left = self.rejoin.shared.left(now);
        let held = self.rejoin.shared.held();
        if !fenced && left.is_none() && held.is_none() {
            self.send_ready();
            return None;
        }
        if self
            .last_report
            .is_none_or(|t| now.saturating_sub(t) >= REPORT_EVERY)
        {
            self.last_report = Some(now);
            // Each report gives systemd three more report periods to wait for READY=1: a
            // delay longer than the unit's TimeoutStartSec= must not get wdfeed killed.
            self.notifier.send(&format!(
                "EXTEND_TIMEOUT_USEC={}",
                (REPORT_EVERY * 3).as_micros()
            ));
            match left {
                _ if fenced => tracing::warn!(
                    "fenced before READY=1: READY=1 never comes; the start job is kept alive until the hardware resets the node"
                ),
                _ if held.is_some() => {
                    let (by, why) = held.unwrap_or((crate::rejoin::hold::HoldBy::Budget, ""));
                    tracing::warn!(by = by.word(), "holding READY=1 until `wdfeed rejoin-now` ({why}): armed and petting")
                }
                Some(left) => tracing::info!(
                    wait_left_s = format!("{:.1}", left.as_secs_f64()),
                    "holding READY=1 for the rejoin delay: armed and petting; `wdfeed rejoin-now` ends the wait"
                ),
                None => {}
            }
        }
        let wait = match left {
            Some(l) if !fenced && held.is_none() => l.min(REPORT_EVERY),
            _ => REPORT_EVERY,
        };
        match events.recv_timeout(wait) {
            Ok(e) => Some(Ok(e)),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Err(())),
        }
    }

    /// SIGUSR2 (`wdfeed rejoin-now`).
    pub(super) fn rejoin_now(&mut self) {
        let held = self.rejoin.shared.held().map(|(by, _)| by);
        if self.rejoin.release_now(self.clock.now()) {
            match held {
                Some(by) => tracing::warn!(
                    by = by.word(),
                    "SIGUSR2 (wdfeed rejoin-now): READY=1 is no longer held, on the operator's word{}",
                    if by == crate::rejoin::hold::HoldBy::Budget {
                        "; the row of fences is cleared"
                    } else {
                        ""
                    }
                ),
                None => tracing::warn!(
                    "SIGUSR2 (wdfeed rejoin-now): the rejoin delay ends now, on the operator's word"
                ),
            }
        } else {
            tracing::warn!(
                "SIGUSR2 (wdfeed rejoin-now) ignored: no rejoin delay or hold in progress"
            );
        }
    }

    fn send_ready(&mut self) {
        self.sent = true;
        self.notifier.send("READY=1");
        let delay = self.rejoin.shared.delay;
        if self.rejoin.shared.hold.is_some() {
            tracing::info!("READY=1 sent: released by the operator");
        } else if delay.is_zero() {
            tracing::info!("READY=1 sent");
        } else {
            tracing::info!(
                rejoin_delay_s = delay.as_secs_f64(),
                "READY=1 sent: the rejoin delay is over"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;
    use std::path::Path;
    use std::sync::mpsc;

    use nix::sys::signal::Signal;

    use super::*;
    use crate::time::FakeClock;

    const BOOT_1: &str = "11111111-4f50-6172-8394-a5b6c7d8e9f0";
    const BOOT_2: &str = "22222222-4f50-6172-8394-a5b6c7d8e9f0";

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// A second boot after one that ended armed: a delay of `delay` from `now` = 0.
    fn waiting(delay: u64) -> (Rejoin, [tempfile::TempDir; 3]) {
        let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
        let start = |run: &Path, boot: &str| {
            Rejoin::start(
                dirs[0].path().to_path_buf(),
                run.to_path_buf(),
                StartUp {
                    boot_id: boot,
                    configured: Some(secs(delay)),
                    current_bound: secs(9),
                    now: Duration::ZERO,
                    causes: vec![],
                    budget: crate::rejoin::budget::DEFAULT,
                    kernel_hold: false,
                    now_unix: 1_781_814_664,
                    dry_run: false,
                },
            )
        };
        start(dirs[1].path(), BOOT_1).armed(secs(9));
        let r = start(dirs[2].path(), BOOT_2);
        assert_eq!(r.shared.left(Duration::ZERO), Some(secs(delay)));
        (r, dirs)
    }

    fn listener(dir: &Path) -> (UnixDatagram, Notifier) {
        let path = dir.join("notify");
        let l = UnixDatagram::bind(&path).unwrap();
        l.set_nonblocking(true).unwrap();
        (l, Notifier::connected_to(&path))
    }

    fn received(l: &UnixDatagram) -> Vec<String> {
        let mut got = vec![];
        let mut buf = [0u8; 128];
        while let Ok(n) = l.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        got
    }

    #[test]
    fn ready_waits_for_the_delay_and_extends_the_start_timeout_meanwhile() {
        let (rejoin, dirs) = waiting(20);
        let (l, notifier) = listener(dirs[0].path());
        let clock = FakeClock::new(Duration::ZERO);
        let latch = Latch::new();
        let (tx, rx) = mpsc::channel();
        let mut gate = Gate::new(&rejoin, &notifier, &clock, &latch);
        // An event that is already there comes back at once, and READY=1 is still held.
        tx.send(Event::Signal(Signal::SIGHUP)).unwrap();
        assert!(matches!(
            gate.next_event(&rx),
            Some(Ok(Event::Signal(Signal::SIGHUP)))
        ));
        assert_eq!(received(&l), ["EXTEND_TIMEOUT_USEC=30000000"]);
        // At the end of the delay READY=1 goes, once.
        clock.set(secs(20));
        assert!(gate.next_event(&rx).is_none());
        assert_eq!(received(&l), ["READY=1"]);
        tx.send(Event::Signal(Signal::SIGHUP)).unwrap();
        assert!(gate.next_event(&rx).is_some());
        assert!(received(&l).is_empty(), "READY=1 is sent only once");
    }

    #[test]
    fn a_fenced_wdfeed_never_sends_ready_and_keeps_extending_the_start_timeout() {
        let (rejoin, dirs) = waiting(20);
        let (l, notifier) = listener(dirs[0].path());
        let clock = FakeClock::new(secs(5));
        let latch = Latch::new();
        latch.close();
        let (tx, rx) = mpsc::channel();
        let mut gate = Gate::new(&rejoin, &notifier, &clock, &latch);
        tx.send(Event::Signal(Signal::SIGTERM)).unwrap();
        assert!(gate.next_event(&rx).is_some());
        assert_eq!(received(&l), ["EXTEND_TIMEOUT_USEC=30000000"]);
        // Long after the delay: still no READY=1, and the start job is still extended.
        for t in [60, 70, 80] {
            clock.set(secs(t));
            tx.send(Event::Signal(Signal::SIGHUP)).unwrap();
            assert!(gate.next_event(&rx).is_some());
            assert_eq!(received(&l), ["EXTEND_TIMEOUT_USEC=30000000"], "at {t} s");
        }
    }

    #[test]
    fn rejoin_now_sends_ready_at_once() {
        let (rejoin, dirs) = waiting(300);
        let (l, notifier) = listener(dirs[0].path());
        let clock = FakeClock::new(secs(1));
        let latch = Latch::new();
        let (_tx, rx) = mpsc::channel::<Event>();
        let mut gate = Gate::new(&rejoin, &notifier, &clock, &latch);
        gate.rejoin_now();
        assert!(gate.next_event(&rx).is_none());
        assert_eq!(received(&l), ["READY=1"]);
    }
}
