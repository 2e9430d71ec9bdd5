//! `wdfeed run`: start-up, the steady state and the exit sequence.
//!
//! Start-up order matters: signals are blocked before any thread exists (one thread waits
//! for them); checks start first and the devices are opened only once every check has
//! passed, so a node that boots unhealthy is never armed by wdfeed (and its cluster stack,
//! ordered after wdfeed, never starts). Everything the fence path needs is opened before the
//! first pet.
//!
//! The parts: [`signals`] (the signal thread, SIGHUP), [`startup`] (checks, the wait until
//! healthy), [`arm`] (devices in, the bound, devices out), [`threads`] (feeder, kill list),
//! [`control`] (operator requests: fence now, pause, resume; root only) and [`pause`] (the
//! maintenance pause's bookkeeping).

mod arm;
pub(crate) mod control;
mod held;
mod pause;
mod ready;
mod signals;
mod startup;
mod threads;

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::signal::Signal;

pub(crate) use pause::PauseBook;
pub use signals::prepare_process;

use crate::config::{self, Config};
use crate::device::DeviceError;
use crate::feeder::{Exit, Feeder, Timing};
use crate::fence::{
    Fence, FenceReason, Fencer, HandoverFile, Isolator, KernelLog, KillList, Latch, Operator, Plan,
};
use crate::health::lease::LeaseTable;
use crate::health::runner::{CheckHandle, Runner};
use crate::status::{self, Reporter};
use crate::system::hardening;
use crate::system::notify::{self, Notifier};
use crate::system::Root;
use crate::time::{deadline, micros, BootClock, Clock, Stopper};
use crate::Failure;

/// What `wdfeed run` was asked to do.
pub struct Options {
    pub root: Root,
    pub config: Option<PathBuf>,
    pub dry_run: bool,
    /// Where the status thread keeps the state `wdfeed status` reads.
    pub status_file: PathBuf,
    /// wdfeed's runtime directory (a tmpfs): the fence record of this boot.
    pub runtime_dir: PathBuf,
    /// The persistent state directory (host state, not under the root): the state record.
    pub state_dir: PathBuf,
}

enum Event {
    Signal(Signal),
    FeederDone(Exit),
}

/// The sleeps to cut short on the way out. The feeder sleeps on a Stopper of its own: a
/// lock it shared with the non-realtime threads (status, kill-list refresher) could be held
/// by one of them, preempted under load, when the feeder wakes (priority inversion:
/// measured as 30-40 ms late wake-ups).
#[derive(Default)]
struct Stoppers {
    feeder: Arc<Stopper>,
    others: Arc<Stopper>,
    /// The status thread's: a check that revokes its lease nudges it.
    status: Arc<Stopper>,
}

impl Stoppers {
    fn stop(&self) {
        self.feeder.stop();
        self.others.stop();
        self.status.stop();
    }
}

/// The kill list with each entry's `user` resolved (it reads `/etc/passwd` under the root,
/// within the start-up deadline).
fn resolve_kill_list(config: &Config, root: &Root) -> Result<Arc<KillList>, Failure> {
    let (entries, root) = (config.fence.kill.clone(), root.clone());
    deadline::within("kill-list", deadline::STARTUP_DEADLINE, move || {
        KillList::resolve(&entries, &root)
    })
    .map_err(|e| {
        format!(
            "resolving the users of fence.kill {e}: reading /etc/passwd hangs; write numeric \
             uids in fence.kill or repair the file, and start wdfeed again"
        )
    })
    .and_then(|r| r)
    .map(Arc::new)
    .map_err(|e| Failure::runtime(format!("{e}; nothing was armed")))
}

/// Runs the daemon until SIGTERM/SIGINT, or until a device is lost.
pub fn run(opts: Options) -> Result<(), Failure> {
    if crate::fence::crashdump::in_dump_kernel(&opts.root) {
        return Err(Failure::runtime(
            "this is a dump kernel (/proc/vmcore exists): wdfeed arms nothing here, so that the hardware watchdog a crashdump fence left running resets a dump that hangs; the unit's ConditionPathExists=!/proc/vmcore keeps it from starting here".into(),
        ));
    }
    let config = load(&opts)?;
    // Every interface to isolate must exist before anything starts: nothing is armed.
    let isolator = Isolator::prepare(&config.fence.isolate).map_err(Failure::runtime)?;
    // A crash kernel must be loaded, and sysrq open, before anything starts.
    let crash = prepare_crashdump(&config, &opts)?;
    let handover = prepare_handover(&config, opts.dry_run)?;
    hardening::lock_memory();
    hardening::raise_fd_limit();
    hardening::protect_from_oom(&opts.root, deadline::STARTUP_DEADLINE);
    let kill = resolve_kill_list(&config, &opts.root)?;

    let (events_tx, events) = mpsc::channel();
    signals::start_signal_thread(events_tx.clone())?;
    let record = held::open_record(&opts, deadline::STARTUP_DEADLINE)?;
    if let Some((rec, found)) = &record {
        if !found.may_arm() {
            held::hold(found, rec, &config, &opts, &events);
            return Ok(());
        }
    }

    let nowayout = arm::note_device_states(&config, &opts.root, deadline::STARTUP_DEADLINE)?;
    let clock: Arc<dyn Clock> = Arc::new(BootClock);
    let boot_id = record.as_ref().map(|(rec, _)| rec.boot_id().to_string());
    let rejoin = Arc::new(ready::start_rejoin(
        &config,
        &opts,
        record.as_ref(),
        clock.now(),
    ));
    let stoppers = Stoppers::default();
    let (runner, leases) =
        startup::start_checks(&config, &opts.root, &clock, Arc::clone(&stoppers.status))?;
    if !startup::wait_until_healthy(&leases, &runner, clock.as_ref(), &events) {
        tracing::info!("stopped before arming; no device was opened");
        return Ok(());
    }

    // Everything the fence path needs is ready before the first pet. The kill list's first
    // walk of /proc is its refresher's, at once after arming: the first pet waits only for
    // what the first round of checks needs, and a fence before that walk still kills every
    // named process through the last scan after it.
    let kernel_log = KernelLog::prepare(&opts.root, opts.dry_run);
    let (devices, bound) = arm::arm_and_state_bound(&config, &opts, &nowayout)?;
    let stay_armed: Vec<bool> = devices.iter().map(|d| d.stays_armed_on_close()).collect();
    let stops_on_close: Vec<String> = devices
        .iter()
        .filter(|d| !d.stays_armed_on_close())
        .map(|d| d.path().display().to_string())
        .collect();
    let bound_total = bound.total;
    // Once armed, a check that fails with its tolerance used up revokes its
    // lease at once: the feeder fences at its next tick, not when the lease runs out.
    leases.allow_revocation();
    // What operators ask reaches the feeder here; a pause of this boot is taken up again.
    let operator = Arc::new(Operator::default());
    let pause = Arc::new(PauseBook::new(
        Arc::clone(&operator),
        Arc::clone(&leases),
        runner.handles.clone(),
        config.max_pause,
        &opts.runtime_dir,
        boot_id.or_else(|| crate::fence::record::read_boot_id(&opts.root).ok()),
    ));
    pause.restore(clock.now());

    let notifier = Arc::new(Notifier::from_env());
    warn_if_systemd_watchdog_is_short(&config);
    threads::start_kill_list_refresher(
        Arc::clone(&kill),
        Arc::clone(&stoppers.others),
        config.interval,
    )?;
    let plan = Plan {
        mode: config.fence.mode,
        dry_run: opts.dry_run,
        bound: bound.seconds(),
    };
    let fencer = Arc::new(
        Fencer::new(plan, kill, kernel_log, runner.handles.clone())
            .with_isolation(isolator)
            .with_record(record.map(|(rec, _)| rec))
            .with_handover(handover.clone())
            .with_crashdump(crash)
            .with_wake(Arc::clone(&stoppers.status))
            .with_operator(Arc::clone(&operator)),
    );
    let latch = Arc::new(Latch::new());
    let feeder = Feeder::new(
        devices,
        Arc::clone(&leases),
        Arc::clone(&latch),
        Arc::clone(&fencer) as Arc<dyn Fence>,
        Arc::clone(&notifier),
        Timing {
            interval: config.interval,
            stall_threshold: config.fence.stall_threshold,
        },
    )
    .with_operator(Arc::clone(&operator));
    // Off the pet path: a missing or read-only directory there is a warning, never a fence.
    let textfile = match &config.metrics_textfile {
        Some(p) => Some(status::Textfile::start(p.clone()).map_err(|e| {
            Failure::runtime(format!("cannot start the metrics textfile thread: {e}"))
        })?),
        None => None,
    };
    let reporter = Reporter {
        path: opts.status_file.clone(),
        dry_run: opts.dry_run,
        interval: config.interval,
        bound,
        stay_armed: (!opts.dry_run).then_some(stay_armed),
        checks: runner.handles.clone(),
        leases: Arc::clone(&leases),
        feeder: Arc::clone(&feeder.shared),
        fencer: Arc::clone(&fencer),
        notifier: Arc::clone(&notifier),
        clock: Arc::clone(&clock),
        latch: Arc::clone(&latch),
        handover: handover.clone(),
        textfile,
        rejoin: Arc::clone(&rejoin),
        pause: Some(Arc::clone(&pause)),
    };
    let feeder_thread = threads::start_feeder(
        feeder,
        Arc::clone(&clock),
        Arc::clone(&stoppers.feeder),
        events_tx,
    )?;
    // After the feeder runs, not before its first tick: the state record is a synced write
    // on the state directory's disk, which a slow disk holds for seconds.
    rejoin.armed(bound_total);
    let status_thread = status::start(reporter, Arc::clone(&stoppers.status))
        .map_err(|e| Failure::runtime(format!("cannot start the status thread: {e}")))?;
    // Operator requests once the feeder runs: a fence asked now is one the feeder can do.
    let control = control::Control::start(
        &opts.runtime_dir,
        control::Served {
            operator: Arc::clone(&operator),
            pause: Arc::clone(&pause),
            latch: Arc::clone(&latch),
            fencer: Arc::clone(&fencer),
            feeder_wake: Arc::clone(&stoppers.feeder),
            clock: Arc::clone(&clock),
            dry_run: opts.dry_run,
            interval: config.interval,
        },
        Arc::clone(&stoppers.others),
    );

    let mut gate = ready::Gate::new(rejoin.as_ref(), &notifier, clock.as_ref(), &latch);
    let watch = Watch {
        config: &config,
        opts: &opts,
        latch: &latch,
        leases: &leases,
        checks: &runner.handles,
        clock: clock.as_ref(),
        stops_on_close: &stops_on_close,
        operator: &operator,
    };
    let exit = steady(&events, &watch, &stoppers, &mut gate);
    stoppers.stop();
    if let Some(c) = &control {
        c.remove();
    }
    status_thread.wait_stopped(Duration::from_secs(1));
    let mut feeder = join_feeder(feeder_thread)?;
    // A stop is obeyed only while every lease is valid; one that fell due in between fences
    // here rather than disarm a node that is not healthy.
    if matches!(exit, Exit::Stopped) {
        fence_if_unhealthy_at_stop(&watch, fencer.as_ref(), feeder.devices_mut());
    }
    fencer.report();
    // A disarming exit hands the service over for good; keep-armed leaves the file as it is.
    if let Some(h) = &handover {
        if config.on_exit == config::OnExit::Disarm || latch.is_closed() {
            let _ = h.seal();
        }
    }
    let fenced = latch.is_closed();
    let disarmed = finish(exit, feeder, runner, &notifier, &config, opts.dry_run)?;
    if disarmed {
        rejoin.stopped_cleanly(bound_total);
    } else if !fenced {
        rejoin.stopped_armed(bound_total);
    }
    Ok(())
}

/// What the main loop watches while it waits for signals.
struct Watch<'a> {
    config: &'a Config,
    opts: &'a Options,
    latch: &'a Latch,
    leases: &'a LeaseTable,
    checks: &'a [Arc<CheckHandle>],
    clock: &'a dyn Clock,
    /// Armed devices that any close stops (no magic close): a fenced wdfeed must not exit.
    stops_on_close: &'a [String],
    /// What operators asked: a pause changes what a refused stop says.
    operator: &'a Operator,
}

impl Watch<'_> {
    /// The first check without a valid lease now, with why, if any.
    fn unhealthy(&self) -> Option<(usize, String, String)> {
        let now = self.clock.now();
        let index = self.leases.first_expired(now)?;
        let (name, why) = match self.checks.get(index) {
            Some(h) => (h.name.clone(), h.why_expired(now)),
            None => (format!("check {index}"), "no lease".into()),
        };
        Some((index, name, why))
    }
}

/// At a stop obeyed while healthy: if a lease fell due since, fence now (the feeder has
/// stopped), so the exit leaves every device armed and records the fence.
fn fence_if_unhealthy_at_stop(
    watch: &Watch,
    fencer: &dyn Fence,
    devices: &mut [Box<dyn crate::device::Armed>],
) {
    if watch.latch.is_closed() {
        return;
    }
    if let Some((index, name, why)) = watch.unhealthy() {
        if watch.operator.paused_at(watch.clock.now()) {
            // The operator's pause holds for the exit too: no check fences while it runs.
            tracing::warn!(check = %name, evidence = %why, "a check failed while stopping during a maintenance pause: not fenced (the pause); the devices are left as on-exit says");
            return;
        }
        tracing::warn!(check = %name, evidence = %why, "a check failed while stopping: fencing instead of disarming");
        if watch.latch.close() {
            fencer.fence(&FenceReason::Check { index }, watch.clock.now());
            fencer.with_devices(devices);
        }
    }
}

/// `mode: crashdump`: a loaded crash kernel, and the files the crash step uses, opened now;
/// none in the other modes.
fn prepare_crashdump(
    config: &Config,
    opts: &Options,
) -> Result<Option<crate::fence::Crashdump>, Failure> {
    let Some(c) = &config.fence.crashdump else {
        return Ok(None);
    };
    let prepared = crate::fence::crashdump::Sysrq::prepare(&opts.root, opts.dry_run)
        .map_err(|e| Failure::runtime(format!("{e}; nothing was armed")))?;
    tracing::info!(
        timeout_s = c.timeout.as_secs(),
        dumps = %c.dir.display(),
        "crashdump: a crash kernel is loaded; a fence sets every device's timeout to the crashdump-timeout, pets once and crashes into it"
    );
    let paths = config.devices.iter().map(|d| d.path.clone()).collect();
    Ok(Some(crate::fence::Crashdump::new(
        c.timeout,
        prepared,
        paths,
        opts.dry_run,
    )))
}

/// Creates `fence.handover-file` saying `1` (no all-pass round yet); none in a dry run,
/// which must not make the HA engine give the service away.
fn prepare_handover(config: &Config, dry_run: bool) -> Result<Option<Arc<HandoverFile>>, Failure> {
    let Some(path) = &config.fence.handover_file else {
        return Ok(None);
    };
    if dry_run {
        tracing::info!(file = %path.display(), "dry run: would keep the handover file");
        return Ok(None);
    }
    HandoverFile::prepare(path).map(|h| Some(Arc::new(h))).map_err(|e| {
        Failure::runtime(format!(
            "fence.handover-file: cannot create {}: {e}; give a path on tmpfs whose directory exists (e.g. /run/wdfeed/handover with RuntimeDirectory=wdfeed)",
            path.display()
        ))
    })
}

/// Reads the config and says which one is used.
fn load(opts: &Options) -> Result<Config, Failure> {
    let loaded = config::load(opts.config.as_deref()).map_err(Failure::config)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(config = %loaded.origin.name(), dry_run = opts.dry_run, root = %opts.root.base().display(), "starting");
    Ok(loaded.config)
}

fn warn_if_systemd_watchdog_is_short(config: &Config) {
    if let Some(w) = notify::watchdog_interval() {
        if w <= config.interval * 2 {
            tracing::warn!(watchdog_sec = w.as_secs_f64(), interval_s = config.interval.as_secs_f64(), "systemd's WatchdogSec= is under twice the interval: systemd may kill a healthy wdfeed; raise it");
        }
    }
}

/// The steady state: signals in, until a stop that is obeyed or the feeder ends.
fn steady(
    events: &Receiver<Event>,
    watch: &Watch,
    stoppers: &Stoppers,
    gate: &mut ready::Gate,
) -> Exit {
    loop {
        match gate.next_event(events) {
            None => {}
            Some(Ok(Event::Signal(Signal::SIGUSR2))) => gate.rejoin_now(),
            Some(Ok(Event::Signal(Signal::SIGHUP))) => {
                signals::reload(watch.config, watch.opts.config.as_deref())
            }
            Some(Ok(Event::Signal(Signal::SIGUSR1))) if !watch.latch.is_closed() => {
                tracing::warn!("SIGUSR1 ignored: it only ends a fenced wdfeed (wdfeed stop --fenced); stop this one with SIGTERM")
            }
            Some(Ok(Event::Signal(Signal::SIGUSR1))) if !watch.stops_on_close.is_empty() => {
                tracing::warn!(devices = %watch.stops_on_close.join(", "), "SIGUSR1 (wdfeed stop --fenced) refused: these devices have no magic close, so the close at exit would stop them and the node would never reset; wdfeed stays until the hardware resets the node")
            }
            Some(Ok(Event::Signal(Signal::SIGUSR1))) => {
                tracing::warn!("SIGUSR1 (wdfeed stop --fenced): leaving every device armed; the hardware resets the node");
                stoppers.stop();
                return Exit::Stopped;
            }
            Some(Ok(Event::Signal(sig))) => match stop_refusal(watch) {
                Some(why) => tracing::warn!(signal = %sig, "{why}"),
                None => {
                    tracing::info!(signal = %sig, "stopping");
                    stoppers.stop();
                    return Exit::Stopped;
                }
            },
            Some(Ok(Event::FeederDone(exit))) => return exit,
            Some(Err(())) => return Exit::Stopped,
        }
    }
}

/// Why SIGTERM or SIGINT does not stop wdfeed now, if it does not. After a real fence it
/// never does: wdfeed holds the devices unfed until the hardware resets the node, because
/// a restart (systemd's `Restart=`, an operator's `systemctl restart`) would start a
/// process that pets again as soon as its checks pass. Nor while a check holds no valid
/// lease: the node is not healthy, and a stop now would disarm it instead of fencing it;
/// the feeder fences at its next tick. A dry run fences nothing and stops as asked.
fn stop_refusal(watch: &Watch) -> Option<String> {
    if watch.opts.dry_run {
        return None;
    }
    if watch.latch.is_closed() {
        return Some("fenced: not stopping (a restarted wdfeed could pet a node that must reset); the hardware resets the node".into());
    }
    let paused = watch.operator.paused_at(watch.clock.now());
    watch.unhealthy().map(|(_, name, why)| {
        if paused {
            format!("not stopping: check {name} holds no valid lease ({why}); the node is not healthy, so wdfeed does not disarm it; a maintenance pause is in progress: wdfeed fences when it ends unless the check recovers")
        } else {
            format!("not stopping: check {name} holds no valid lease ({why}); the node is not healthy, so wdfeed fences at its next tick instead of disarming")
        }
    })
}

/// The exit sequence: the feeder is joined, its lateness reported, and the devices left as
/// the fence state and `on-exit` say. True if every device was disarmed (a clean stop).
fn join_feeder(feeder_thread: JoinHandle<Feeder>) -> Result<Feeder, Failure> {
    feeder_thread
        .join()
        .map_err(|_| Failure::runtime("the feeder thread died".into()))
}

fn finish(
    exit: Exit,
    feeder: Feeder,
    runner: Runner,
    notifier: &Notifier,
    config: &Config,
    dry_run: bool,
) -> Result<bool, Failure> {
    let lateness = &feeder.shared.lateness;
    tracing::info!(
        wakeups = lateness.count(),
        p99_us = micros(lateness.quantile_upper(0.99)),
        max_us = micros(lateness.max()),
        "feeder wake-up lateness"
    );
    notifier.send("STOPPING=1");
    let fenced = feeder.is_fenced();
    let devices = feeder.into_devices();
    drop(runner);
    match exit {
        Exit::DeviceLost { index, errno } => {
            // The other devices stay armed: with a watchdog gone, a reset is the safe outcome.
            let path = devices
                .get(index)
                .map_or_else(|| std::path::PathBuf::from("?"), |d| d.path().to_path_buf());
            Err(Failure::device(DeviceError::new(
                &path,
                "pet",
                Some(errno),
                "the device went away (driver unloaded?); wdfeed stops and leaves every other device armed",
            )))
        }
        Exit::Stopped => Ok(arm::leave(devices, fenced, config.on_exit, dry_run)),
    }
}

#[cfg(test)]
mod tests;
