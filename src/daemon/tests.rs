//! The stop rules of the main loop: what SIGTERM, SIGINT and SIGUSR1 do in each state.

use std::sync::mpsc;
use std::sync::Mutex;

use super::*;
use crate::rejoin::Rejoin;
use crate::time::FakeClock;

const S: fn(u64) -> Duration = Duration::from_secs;

struct Rig {
    config: Config,
    opts: Options,
    latch: Latch,
    leases: LeaseTable,
    checks: Vec<Arc<CheckHandle>>,
    clock: FakeClock,
    stops_on_close: Vec<String>,
    operator: Operator,
}

fn rig(dry_run: bool) -> Rig {
    let config = config::parse(
        "devices: [{path: /dev/watchdog0, timeout: 30s}]\n",
        "t.yaml",
    )
    .unwrap();
    let dir = std::env::temp_dir();
    let handle =
        CheckHandle::failed_for_test("process heartbeat", "heartbeat pid 7 stopped (T)", S(99));
    let leases = LeaseTable::new(1);
    leases.renew(0, S(1000));
    leases.allow_revocation();
    Rig {
        config,
        opts: Options {
            root: Root::host(),
            config: None,
            dry_run,
            status_file: dir.join("wdfeed-test-status.json"),
            runtime_dir: dir.clone(),
            state_dir: dir,
        },
        latch: Latch::new(),
        leases,
        checks: vec![handle],
        clock: FakeClock::new(S(100)),
        stops_on_close: vec![],
        operator: Operator::default(),
    }
}

impl Rig {
    fn watch(&self) -> Watch<'_> {
        Watch {
            config: &self.config,
            opts: &self.opts,
            latch: &self.latch,
            leases: &self.leases,
            checks: &self.checks,
            clock: &self.clock,
            stops_on_close: &self.stops_on_close,
            operator: &self.operator,
        }
    }
}

#[derive(Default)]
struct Recording(Mutex<Vec<FenceReason>>, Mutex<usize>);

impl Fence for Recording {
    fn fence(&self, reason: &FenceReason, _now: Duration) {
        self.0.lock().unwrap().push(reason.clone());
    }
    fn with_devices(&self, _devices: &mut [Box<dyn crate::device::Armed>]) {
        *self.1.lock().unwrap() += 1;
    }
}

#[test]
fn a_stop_is_obeyed_only_while_every_lease_is_valid() {
    let r = rig(false);
    assert_eq!(stop_refusal(&r.watch()), None, "healthy: stop");
    // A check failed with its tolerance used up: the lease is revoked, the fence is due at
    // the feeder's next tick. A stop now would disarm a node that is not healthy.
    r.leases.revoke(0);
    let why = stop_refusal(&r.watch()).expect("must refuse");
    assert!(
        why.contains("not stopping: check process heartbeat holds no valid lease (heartbeat pid 7 stopped (T))"),
        "{why}"
    );
    r.latch.close();
    let why = stop_refusal(&r.watch()).expect("must refuse");
    assert!(why.starts_with("fenced: not stopping"), "{why}");
}

#[test]
fn a_lease_that_runs_out_refuses_a_stop_too() {
    let r = rig(false);
    r.clock.set(S(1001));
    assert!(stop_refusal(&r.watch()).is_some());
}

#[test]
fn a_dry_run_stops_as_asked() {
    let r = rig(true);
    r.leases.revoke(0);
    assert_eq!(stop_refusal(&r.watch()), None);
}

#[test]
fn a_lease_that_falls_due_during_a_stop_in_a_pause_does_not_fence() {
    let r = rig(false);
    r.operator.set_pause_until(S(3000));
    r.leases.revoke(0);
    let fence = Recording::default();
    fence_if_unhealthy_at_stop(&r.watch(), &fence, &mut []);
    assert!(
        fence.0.lock().unwrap().is_empty(),
        "the pause holds for the exit too"
    );
    assert!(!r.latch.is_closed());
}

#[test]
fn a_lease_that_fell_due_during_the_stop_fences_instead_of_disarming() {
    let r = rig(false);
    let fence = Recording::default();
    fence_if_unhealthy_at_stop(&r.watch(), &fence, &mut []);
    assert!(fence.0.lock().unwrap().is_empty(), "healthy: no fence");
    assert!(!r.latch.is_closed());
    r.leases.revoke(0);
    fence_if_unhealthy_at_stop(&r.watch(), &fence, &mut []);
    fence_if_unhealthy_at_stop(&r.watch(), &fence, &mut []);
    assert_eq!(
        *fence.0.lock().unwrap(),
        vec![FenceReason::Check { index: 0 }]
    );
    assert_eq!(
        *fence.1.lock().unwrap(),
        1,
        "the devices' step (crashdump) follows the fence, once"
    );
    assert!(
        r.latch.is_closed(),
        "latched: the exit leaves every device armed"
    );
}

/// The main loop with `signals` queued, then the feeder's end: how it ended.
fn steady_with(r: &Rig, signals: &[Signal]) -> (Exit, bool) {
    let (tx, rx) = mpsc::channel();
    for s in signals {
        tx.send(Event::Signal(*s)).unwrap();
    }
    tx.send(Event::FeederDone(Exit::DeviceLost {
        index: 7,
        errno: nix::errno::Errno::ENODEV,
    }))
    .unwrap();
    let stoppers = Stoppers::default();
    let rejoin = Rejoin::none();
    let notifier = Notifier::default();
    let mut gate = ready::Gate::new(&rejoin, &notifier, &r.clock, &r.latch);
    let exit = steady(&rx, &r.watch(), &stoppers, &mut gate);
    (exit, stoppers.feeder.sleep(Duration::ZERO))
}

#[test]
fn stop_fenced_is_refused_while_a_device_has_no_magic_close() {
    let mut r = rig(false);
    r.latch.close();
    r.stops_on_close = vec!["/dev/watchdog1".into()];
    let (exit, stopped) = steady_with(&r, &[Signal::SIGUSR1, Signal::SIGTERM]);
    assert!(
        matches!(exit, Exit::DeviceLost { .. }),
        "never left on its own: {exit:?}"
    );
    assert!(!stopped);
    // With magic close everywhere, SIGUSR1 ends a fenced wdfeed.
    r.stops_on_close.clear();
    let (exit, stopped) = steady_with(&r, &[Signal::SIGUSR1]);
    assert_eq!(exit, Exit::Stopped);
    assert!(stopped);
}

#[test]
fn sigterm_right_after_a_revocation_does_not_stop() {
    let r = rig(false);
    r.leases.revoke(0);
    let (exit, stopped) = steady_with(&r, &[Signal::SIGTERM, Signal::SIGINT]);
    assert!(matches!(exit, Exit::DeviceLost { .. }), "{exit:?}");
    assert!(!stopped, "the feeder was not stopped");
}

#[test]
fn a_stop_during_a_pause_with_a_failing_check_is_refused_and_says_the_pause_ends_in_a_fence() {
    let r = rig(false);
    // the lease (until 1000 s) ran out during the pause, which lasts until 3000 s
    r.clock.set(S(2000));
    r.operator.set_pause_until(S(3000));
    let why = stop_refusal(&r.watch()).expect("refused");
    assert!(
        why.starts_with("not stopping: check process heartbeat holds no valid lease"),
        "{why}"
    );
    assert!(
        why.contains("a maintenance pause is in progress: wdfeed fences when it ends"),
        "{why}"
    );
    let (exit, stopped) = steady_with(&r, &[Signal::SIGTERM]);
    assert!(matches!(exit, Exit::DeviceLost { .. }), "{exit:?}");
    assert!(!stopped);
}
