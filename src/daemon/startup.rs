//! Start-up before arming: the checks start, and wdfeed waits until every one has passed
//! once. A node that boots unhealthy is never armed by wdfeed.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::Event;
use crate::config::Config;
use crate::health::lease::LeaseTable;
use crate::health::runner::{NamedCheck, Runner};
use crate::system::hardening::{self, THREAD_STACK};
use crate::system::Root;
use crate::time::{deadline, Clock, Stopper};
use crate::Failure;

/// Builds every check and starts its thread; check `i` renews lease `i`.
pub(super) fn start_checks(
    config: &Config,
    root: &Root,
    clock: &Arc<dyn Clock>,
    wake: Arc<Stopper>,
) -> Result<(Runner, Arc<LeaseTable>), Failure> {
    let checks = build_checks(config, root)?;
    let leases = Arc::new(LeaseTable::new(checks.len()));
    let runner = Runner::start(
        checks,
        Arc::clone(&leases),
        Arc::clone(clock),
        THREAD_STACK,
        Some(hardening::CHECK_PRIORITY),
        Some(wake),
    )
    .map_err(|e| Failure::runtime(format!("cannot start the check threads: {e}")))?;
    Ok((runner, leases))
}

/// Prepares every check within [`deadline::STARTUP_DEADLINE`] (they read /proc/1/mountinfo,
/// /sys and open probes): a read that hangs there ends start-up with an error, before
/// anything is armed, instead of a daemon stuck before it can obey SIGTERM.
fn build_checks(config: &Config, root: &Root) -> Result<Vec<NamedCheck>, Failure> {
    let (config, root) = (config.clone(), root.clone());
    deadline::within("prepare", deadline::STARTUP_DEADLINE, move || {
        build_checks_now(&config, &root)
    })
    .map_err(|e| {
        Failure::runtime(format!(
            "preparing the checks {e}: a read of /proc or /sys (such as /proc/1/mountinfo) or \
             a probe hangs; nothing was armed. Find the hanging file \
             (cat /proc/<wdfeed pid>/task/*/stack) and start wdfeed again"
        ))
    })?
}

fn build_checks_now(config: &Config, root: &Root) -> Result<Vec<NamedCheck>, Failure> {
    config
        .checks
        .iter()
        .map(|c| {
            let check = c
                .build(root)
                .map_err(|e| Failure::runtime(format!("cannot prepare check `{}`: {e}", c.name)))?;
            Ok((c.name.clone(), c.schedule, check))
        })
        .collect()
}

/// How often start-up looks at the leases: a lease renewed by a first pass is seen at most
/// this late, and every millisecond here delays the first pet (measured on the host: exec
/// to arming 57.6 ms with a 50 ms poll).
const HEALTH_POLL: Duration = Duration::from_millis(2);

/// Waits until every check holds a valid lease; false if told to stop first.
pub(super) fn wait_until_healthy(
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
        match events.recv_timeout(HEALTH_POLL) {
            Ok(Event::Signal(Signal::SIGHUP)) => {
                tracing::warn!("SIGHUP before arming: restart wdfeed to use a new config")
            }
            Ok(Event::Signal(Signal::SIGUSR1)) => {
                tracing::warn!("SIGUSR1 ignored: it only ends a fenced wdfeed")
            }
            Ok(Event::Signal(Signal::SIGUSR2)) => {
                tracing::warn!("SIGUSR2 (wdfeed rejoin-now) before arming: ignored; run it again once wdfeed is armed")
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
            report_not_arming(runner);
        }
    }
}

/// Says which checks keep wdfeed from arming.
fn report_not_arming(runner: &Runner) {
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
