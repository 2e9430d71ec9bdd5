//! `wdfeed run`: start-up, the steady state and the exit sequence.
//!
//! Start-up order matters: signals are blocked before any thread exists (one thread waits
//! for them); checks start first and the devices are opened only once every check has
//! passed, so a node that boots unhealthy is never armed by wdfeed (and its cluster stack,
//! ordered after wdfeed, never starts). Everything the fence path needs is opened before the
//! first pet.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};

use crate::bound;
use crate::bound::Bound;
use crate::clock::{BootClock, Clock};
use crate::config::{self, Config, OnExit};
use crate::device::flags::describe_bootstatus;
use crate::device::io::KernelIo;
use crate::device::{open, sysfs, takeover, Armed, DeviceError, Request, Watchdog};
use crate::feeder::FeederShared;
use crate::feeder::{Exit, Feeder, Latch, Stopper, Timing};
use crate::fence::{kernel_reboot, Fence, Fencer, KillList};
use crate::health::lease::LeaseTable;
use crate::health::runner::CheckHandle;
use crate::health::runner::{NamedCheck, Runner};
use crate::status::{self, CheckStatus, DeviceStatus, FenceStatus, LatenessStatus, Status};
use crate::system::hardening::{self, THREAD_STACK};
use crate::system::notify::{self, Notifier};
use crate::system::Root;
use crate::Failure;

/// What `wdfeed run` was asked to do.
pub struct Options {
    pub root: Root,
    pub config: Option<PathBuf>,
    pub dry_run: bool,
    /// Where the status thread keeps the state `wdfeed status` reads.
    pub status_file: PathBuf,
}

enum Event {
    Signal(Signal),
    FeederDone(Exit),
}

/// Runs the daemon until SIGTERM/SIGINT, or until a device is lost.
pub fn run(opts: Options) -> Result<(), Failure> {
    let loaded = config::load(opts.config.as_deref()).map_err(Failure::config)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let config = loaded.config;
    tracing::info!(config = %loaded.origin.name(), dry_run = opts.dry_run, root = %opts.root.base().display(), "starting");

    hardening::lock_memory();
    hardening::protect_from_oom(&opts.root);

    let (events_tx, events) = mpsc::channel();
    start_signal_thread(events_tx.clone())?;

    note_device_states(&config, &opts.root);
    let checks = build_checks(&config, &opts.root)?;
    let leases = Arc::new(LeaseTable::new(checks.len()));
    let clock: Arc<dyn Clock> = Arc::new(BootClock);
    let runner = Runner::start(
        checks,
        Arc::clone(&leases),
        Arc::clone(&clock),
        THREAD_STACK,
        Some(hardening::CHECK_PRIORITY),
    )
    .map_err(|e| Failure::runtime(format!("cannot start the check threads: {e}")))?;

    if !wait_until_healthy(&leases, &runner, clock.as_ref(), &events) {
        tracing::info!("stopped before arming; no device was opened");
        return Ok(());
    }

    // Everything the fence path needs is ready before the first pet.
    let kill = Arc::new(KillList::new(config.fence.kill.clone(), opts.root.clone()));
    kill.refresh();
    let kernel_logs = open_kernel_logs(&opts);

    let (devices, identities, granted) = arm(&config, &opts)?;
    let bound = bound::compute(
        &config,
        &identities,
        (!opts.dry_run).then_some(granted.as_slice()),
    );
    for line in bound.to_string().lines().skip(1) {
        tracing::info!("{}", line.trim());
    }
    if opts.dry_run {
        tracing::info!(fence_bound_s = %bound.seconds(), "dry run: no device opened (would arm)");
    } else {
        tracing::info!(fence_bound_s = %bound.seconds(), devices = devices.len(), "armed");
    }

    let notifier = Arc::new(Notifier::from_env());
    if let Some(w) = notify::watchdog_interval() {
        if w <= config.interval * 2 {
            tracing::warn!(watchdog_sec = w.as_secs_f64(), interval_s = config.interval.as_secs_f64(), "systemd's WatchdogSec= is under twice the interval: systemd may kill a healthy wdfeed; raise it");
        }
    }
    // The feeder sleeps on a Stopper of its own: a lock it shared with the non-realtime
    // threads (status, kill-list refresher) could be held by one of them, preempted under
    // load, when the feeder wakes (priority inversion: measured as 30-40 ms late wake-ups).
    let stopper = Arc::new(Stopper::default());
    let feeder_stopper = Arc::new(Stopper::default());
    start_kill_list_refresher(Arc::clone(&kill), Arc::clone(&stopper), config.interval)?;
    let fencer = Arc::new(Fencer {
        mode: config.fence.mode,
        dry_run: opts.dry_run,
        kill,
        kernel_logs,
        reboot: kernel_reboot(),
        checks: runner.handles.clone(),
        bound: bound.seconds(),
        fenced_by: Mutex::new(None),
    });
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
            dry_run: opts.dry_run,
        },
    );
    let reporter = Reporter {
        path: opts.status_file.clone(),
        dry_run: opts.dry_run,
        interval: config.interval,
        bound: bound.clone(),
        checks: runner.handles.clone(),
        leases: Arc::clone(&leases),
        feeder: Arc::clone(&feeder.shared),
        fencer: Arc::clone(&fencer),
        notifier: Arc::clone(&notifier),
        clock: Arc::clone(&clock),
    };
    let feeder_thread = {
        let clock = Arc::clone(&clock);
        let stopper = Arc::clone(&feeder_stopper);
        let tx = events_tx.clone();
        thread::Builder::new()
            .name("feeder".into())
            .stack_size(THREAD_STACK)
            .spawn(move || {
                hardening::realtime("feeder", hardening::FEEDER_PRIORITY);
                tracing::info!(
                    priority = hardening::FEEDER_PRIORITY,
                    "feeder thread started"
                );
                let mut feeder = feeder;
                let exit = feeder.run(clock.as_ref(), &stopper);
                let _ = tx.send(Event::FeederDone(exit));
                feeder
            })
            .map_err(|e| Failure::runtime(format!("cannot start the feeder thread: {e}")))?
    };
    notifier.send("READY=1");
    start_status_thread(reporter, Arc::clone(&stopper))?;

    let exit = loop {
        match events.recv() {
            Ok(Event::Signal(Signal::SIGHUP)) => reload(&config, opts.config.as_deref()),
            Ok(Event::Signal(sig)) if !obeys_stop(latch.is_closed(), opts.dry_run) => {
                tracing::warn!(signal = %sig, "fenced: not stopping (a restarted wdfeed could pet a node that must reset); the hardware resets the node")
            }
            Ok(Event::Signal(sig)) => {
                tracing::info!(signal = %sig, "stopping");
                feeder_stopper.stop();
                stopper.stop();
                break Exit::Stopped;
            }
            Ok(Event::FeederDone(exit)) => break exit,
            Err(_) => break Exit::Stopped,
        }
    };
    feeder_stopper.stop();
    stopper.stop();
    let feeder = feeder_thread
        .join()
        .map_err(|_| Failure::runtime("the feeder thread died".into()))?;
    let lateness = &feeder.shared.lateness;
    tracing::info!(
        wakeups = lateness.count(),
        p99_us = lateness.quantile_upper(0.99).as_micros() as u64,
        max_us = lateness.max().as_micros() as u64,
        "feeder wake-up lateness"
    );
    notifier.send("STOPPING=1");
    let fenced = feeder.is_fenced();
    let devices = feeder.into_devices();
    drop(runner);
    match exit {
        Exit::DeviceLost { path, errno } => {
            // The other devices stay armed: with a watchdog gone, a reset is the safe outcome.
            Err(Failure::device(DeviceError::new(
                &path,
                "pet",
                Some(errno),
                "the device went away (driver unloaded?); wdfeed stops and leaves every other device armed",
            )))
        }
        Exit::Stopped => {
            leave(devices, fenced, config.on_exit, opts.dry_run);
            Ok(())
        }
    }
}

/// Whether SIGTERM or SIGINT stops wdfeed. After a real fence it does not: wdfeed holds the
/// devices unfed until the hardware resets the node, because a restart (systemd's
/// `Restart=`, an operator's `systemctl restart`) would start a process that pets again as
/// soon as its checks pass. A dry run fences nothing and stops as asked.
fn obeys_stop(fenced: bool, dry_run: bool) -> bool {
    !fenced || dry_run
}

/// The exit sequence: after a fence, never disarm; otherwise as `on-exit` says.
fn leave(devices: Vec<Box<dyn Armed>>, fenced: bool, on_exit: OnExit, dry_run: bool) {
    if dry_run {
        tracing::info!("dry run: nothing to disarm");
        return;
    }
    if fenced {
        tracing::warn!("fenced: leaving every device armed; the hardware resets the node");
        return;
    }
    match on_exit {
        OnExit::Disarm => {
            for d in devices {
                let path = d.path().display().to_string();
                match d.disarm() {
                    Ok(()) => tracing::info!(device = %path, "disarmed"),
                    Err(e) => tracing::error!(error = %e, "disarm failed"),
                }
            }
        }
        OnExit::KeepArmed => {
            for d in &devices {
                tracing::warn!(device = %d.path().display(), "left armed (on-exit: keep-armed): the node resets unless wdfeed is back within the timeout");
            }
        }
    }
}

fn build_checks(config: &Config, root: &Root) -> Result<Vec<NamedCheck>, Failure> {
    config
        .checks
        .iter()
        .map(|c| {
            let check = c
                .settings
                .build(root)
                .map_err(|e| Failure::runtime(format!("cannot prepare check `{}`: {e}", c.name)))?;
            Ok((c.name.clone(), c.schedule, check))
        })
        .collect()
}

/// What sysfs says of each device before wdfeed opens it: a watchdog already running is
/// taken over; one that stops on every close cannot stay armed across a restart.
fn note_device_states(config: &Config, root: &Root) {
    for d in &config.devices {
        let Some(seen) = sysfs::find(root, &d.path) else {
            continue;
        };
        for note in takeover::notes(&seen, config.on_exit) {
            match note {
                takeover::Note::Running => {
                    tracing::info!(device = %d.path.display(), state = "active", "{}", note.text())
                }
                takeover::Note::StopsOnClose => {
                    tracing::warn!(device = %d.path.display(), "{}", note.text())
                }
            }
        }
    }
}

/// Waits until every check holds a valid lease; false if told to stop first.
fn wait_until_healthy(
    leases: &LeaseTable,
    runner: &Runner,
    clock: &dyn Clock,
    events: &Receiver<Event>,
) -> bool {
    let started = Instant::now();
    let mut last_report: Option<Instant> = None;
    let patience = runner
        .handles
        .iter()
        .map(|h| h.schedule.deadline)
        .max()
        .unwrap_or(Duration::ZERO);
    loop {
        if leases.all_valid(clock.now()) {
            return true;
        }
        match events.recv_timeout(Duration::from_millis(50)) {
            Ok(Event::Signal(Signal::SIGHUP)) => {
                tracing::warn!("SIGHUP before arming: restart wdfeed to use a new config")
            }
            Ok(Event::Signal(_)) | Err(RecvTimeoutError::Disconnected) => return false,
            Ok(Event::FeederDone(_)) | Err(RecvTimeoutError::Timeout) => {}
        }
        let due = match last_report {
            None => started.elapsed() > patience,
            Some(t) => t.elapsed() > Duration::from_secs(30),
        };
        if due {
            last_report = Some(Instant::now());
            for (name, last) in runner.snapshot() {
                match last {
                    Some(run) if !run.verdict.healthy => {
                        tracing::warn!(check = %name, evidence = %run.verdict.evidence, "not arming: check failing")
                    }
                    None => {
                        tracing::warn!(check = %name, "not arming: check has not finished a run")
                    }
                    Some(_) => {}
                }
            }
        }
    }
}

type Armament = (Vec<Box<dyn Armed>>, Vec<Option<String>>, Vec<Duration>);

/// Opens and programs every device (or, in a dry run, reads what sysfs says of them). A
/// failure disarms the devices already armed: bad input leaves nothing armed.
fn arm(config: &Config, opts: &Options) -> Result<Armament, Failure> {
    let mut devices: Vec<Box<dyn Armed>> = Vec::new();
    let mut identities = Vec::new();
    let mut granted = Vec::new();
    for d in &config.devices {
        if opts.dry_run {
            identities.push(sysfs::find(&opts.root, &d.path).and_then(|w| w.identity));
            granted.push(d.timeout);
            continue;
        }
        let want = Request {
            timeout: d.timeout,
            pretimeout: d.pretimeout,
            min_timeout: config.interval * 3,
        };
        let programmed = open::open_device(&opts.root, &d.path)
            .and_then(|file| Watchdog::program(&d.path, KernelIo::new(file), &want));
        match programmed {
            Ok(dog) => {
                for note in &dog.notes {
                    tracing::warn!(device = %d.path.display(), "{note}");
                }
                if let Some(b) = dog.bootstatus {
                    tracing::info!(device = %d.path.display(), bootstatus = b, "{}", describe_bootstatus(b));
                }
                tracing::info!(device = %d.path.display(), identity = %dog.identity, timeout_s = dog.timeout.as_secs(), "device programmed");
                identities.push(Some(dog.identity.clone()));
                granted.push(dog.timeout);
                devices.push(Box::new(dog));
            }
            Err(e) => {
                for armed in devices {
                    let _ = armed.disarm();
                }
                return Err(Failure::device(e));
            }
        }
    }
    Ok((devices, identities, granted))
}

fn open_kernel_logs(opts: &Options) -> Vec<Mutex<std::fs::File>> {
    if opts.dry_run || !opts.root.is_host() {
        return Vec::new();
    }
    let mut logs = Vec::new();
    match OpenOptions::new().write(true).open(opts.root.dev("kmsg")) {
        Ok(f) => logs.push(Mutex::new(f)),
        Err(e) => {
            tracing::warn!(error = %e, "cannot open /dev/kmsg: the fence reason will reach stderr only")
        }
    }
    // pstore's message log survives the reset where the platform keeps it.
    if let Ok(f) = OpenOptions::new().write(true).open(opts.root.dev("pmsg0")) {
        tracing::info!("fence reasons also go to pstore (/dev/pmsg0)");
        logs.push(Mutex::new(f));
    }
    logs
}

/// The signals the daemon handles on a thread of its own.
fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
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

fn start_signal_thread(tx: Sender<Event>) -> Result<(), Failure> {
    let set = handled_signals();
    thread::Builder::new()
        .name("signals".into())
        .stack_size(THREAD_STACK)
        .spawn(move || loop {
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

/// The kill list's pidfds are refreshed every interval, but not more often than this.
const KILL_LIST_REFRESH_MIN: Duration = Duration::from_secs(5);

fn start_kill_list_refresher(
    kill: Arc<KillList>,
    stop: Arc<Stopper>,
    every: Duration,
) -> Result<(), Failure> {
    if kill.is_empty() {
        return Ok(());
    }
    thread::Builder::new()
        .name("kill-list".into())
        .stack_size(THREAD_STACK)
        .spawn(move || {
            // A scan reads every process; the fence scans afresh anyway, so a process
            // started since the last refresh is still killed.
            let every = every.max(KILL_LIST_REFRESH_MIN);
            while !stop.sleep(every) {
                kill.refresh();
            }
        })
        .map(drop)
        .map_err(|e| Failure::runtime(format!("cannot start the kill-list thread: {e}")))
}

/// SIGHUP: re-read the config. An invalid one is rejected with its error and the running
/// config stays; a valid one that differs is applied at the next start (a live swap of
/// devices or checks under an armed watchdog is a risk wdfeed does not take).
fn reload(running: &Config, path: Option<&std::path::Path>) {
    match config::load(path) {
        Err(e) => tracing::error!(error = %e, "SIGHUP: new config rejected; the running config stays"),
        Ok(l) if &l.config == running => tracing::info!("SIGHUP: config unchanged"),
        Ok(_) => tracing::warn!("SIGHUP: the new config is valid and takes effect at the next start (restart wdfeed; with on-exit: keep-armed the watchdog stays armed across the restart)"),
    }
}

/// Everything the status thread reads; none of it is the feeder's to wait on.
struct Reporter {
    path: PathBuf,
    dry_run: bool,
    interval: Duration,
    bound: Bound,
    checks: Vec<Arc<CheckHandle>>,
    leases: Arc<LeaseTable>,
    feeder: Arc<FeederShared>,
    fencer: Arc<Fencer>,
    notifier: Arc<Notifier>,
    clock: Arc<dyn Clock>,
}

impl Reporter {
    fn collect(&self) -> Status {
        let now = self.clock.now();
        let age = |t: Duration| status::secs(now.saturating_sub(t));
        let last_pet = self.feeder.last_pet();
        let fence = self
            .fencer
            .fenced_by
            .try_lock()
            .ok()
            .and_then(|f| f.clone())
            .map(|(check, evidence)| FenceStatus { check, evidence });
        let state = match (&fence, self.dry_run) {
            (Some(_), _) => "fenced",
            (None, true) => "dry-run",
            (None, false) => "armed",
        };
        let checks = self
            .checks
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let last = h.last.try_lock().ok().and_then(|l| l.clone());
                CheckStatus {
                    name: h.name.clone(),
                    healthy: last
                        .as_ref()
                        .map(|l| l.verdict.healthy && l.elapsed <= h.schedule.deadline),
                    evidence: last.as_ref().map(|l| l.verdict.evidence.clone()),
                    elapsed_ms: last
                        .as_ref()
                        .map(|l| (l.elapsed.as_secs_f64() * 1e6).round() / 1e3),
                    lease_left_s: self.leases.expiry(i).map(|e| {
                        status::secs(e.saturating_sub(now)) - status::secs(now.saturating_sub(e))
                    }),
                    last_run_age_s: last.as_ref().map(|l| age(l.finished_at)),
                }
            })
            .collect();
        let devices = self
            .bound
            .devices
            .iter()
            .map(|d| DeviceStatus {
                path: d.path.clone(),
                identity: d.identity.clone(),
                timeout_s: status::secs(d.timeout),
                time_left_s: match (self.dry_run, last_pet) {
                    (false, Some(p)) => Some(status::secs(
                        d.reset_after.saturating_sub(now.saturating_sub(p)),
                    )),
                    _ => None,
                },
            })
            .collect();
        let l = &self.feeder.lateness;
        let us = |d: Duration| d.as_micros() as u64;
        Status {
            pid: std::process::id(),
            written_at_s: status::secs(now),
            interval_s: status::secs(self.interval),
            dry_run: self.dry_run,
            state: state.into(),
            fence,
            bound_s: status::secs(self.bound.total),
            last_pet_age_s: last_pet.map(age),
            devices,
            checks,
            lateness: LatenessStatus {
                wakeups: l.count(),
                p50_us: us(l.quantile_upper(0.5)),
                p99_us: us(l.quantile_upper(0.99)),
                p999_us: us(l.quantile_upper(0.999)),
                max_us: us(l.max()),
            },
        }
    }
}

fn start_status_thread(reporter: Reporter, stop: Arc<Stopper>) -> Result<(), Failure> {
    thread::Builder::new()
        .name("status".into())
        .stack_size(THREAD_STACK)
        .spawn(move || {
            let mut warned = false;
            let mut last_summary = String::new();
            loop {
                let s = reporter.collect();
                let summary = s.summary();
                if summary != last_summary {
                    reporter.notifier.send(&format!("STATUS={summary}"));
                    last_summary = summary;
                }
                if let Err(e) = status::write(&reporter.path, &s) {
                    if !warned {
                        warned = true;
                        tracing::warn!(file = %reporter.path.display(), error = %e, "cannot write the status file; `wdfeed status` will not see this daemon (use --status-file)");
                    }
                }
                if stop.sleep(reporter.interval) {
                    let _ = std::fs::remove_file(&reporter.path);
                    return;
                }
            }
        })
        .map(drop)
        .map_err(|e| Failure::runtime(format!("cannot start the status thread: {e}")))
}

#[cfg(test)]
mod tests {
    use super::obeys_stop;

    #[test]
    fn a_fenced_daemon_ignores_stop_signals_unless_dry() {
        assert!(obeys_stop(false, false));
        assert!(!obeys_stop(true, false));
        assert!(obeys_stop(true, true));
        assert!(obeys_stop(false, true));
    }
}
