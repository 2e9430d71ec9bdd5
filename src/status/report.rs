//! What the status thread reads, and the [`Status`] it makes of it. Every read is lock-free
//! or a `try_lock`: the status thread never waits on the feeder, the fence or a check.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::textfile::Textfile;
use super::{
    secs, BudgetStatus, CheckStatus, DeviceStatus, EndedBoot, FenceStatus, HoldStatus,
    LatenessBucket, LatenessStatus, PreviousBootStatus, RejoinStatus, Status,
};
use crate::config::bound::Bound;
use crate::feeder::FeederShared;
use crate::fence::Fencer;
use crate::health::lease::LeaseTable;
use crate::health::runner::CheckHandle;
use crate::system::notify::Notifier;
use crate::time::{micros, Clock};

/// Everything the status thread reads; none of it is the feeder's to wait on.
pub struct Reporter {
    pub path: PathBuf,
    pub dry_run: bool,
    pub interval: Duration,
    pub bound: Bound,
    /// Per device, whether a close without the magic `V` leaves it armed (none in a dry run).
    pub stay_armed: Option<Vec<bool>>,
    pub checks: Vec<Arc<CheckHandle>>,
    pub leases: Arc<LeaseTable>,
    pub feeder: Arc<FeederShared>,
    pub fencer: Arc<Fencer>,
    pub notifier: Arc<Notifier>,
    pub clock: Arc<dyn Clock>,
    pub latch: Arc<crate::fence::Latch>,
    /// `fence.handover-file`, kept by this thread (none in a dry run).
    pub handover: Option<Arc<crate::fence::HandoverFile>>,
    /// The node_exporter textfile writer, when `metrics.textfile` is set.
    pub textfile: Option<Arc<Textfile>>,
    /// The rejoin delay and holds: how long READY=1 still waits; and the state record, which
    /// says `fenced` once the fence has acted.
    pub rejoin: Arc<crate::rejoin::Rejoin>,
    /// The maintenance pause (none in a run without operator requests).
    pub pause: Option<Arc<crate::daemon::PauseBook>>,
}

/// What the status thread has already logged of the feeder and the fence.
#[derive(Default)]
pub struct Logged {
    realtime: bool,
    petting: bool,
    pet_failures: Vec<u64>,
    notify_dropped: u64,
    fence_recorded: bool,
}

impl Reporter {
    /// Logs what the feeder and the fence published since the last round: the feeder logs
    /// nothing itself (a log that blocks must never delay a pet or a fence).
    pub fn log_news(&self, logged: &mut Logged) {
        if let Some(p) = &self.pause {
            p.expire_if_free(self.clock.now());
        }
        let f = &self.feeder;
        if !logged.realtime {
            if let Some(r) = f.realtime() {
                logged.realtime = true;
                match r {
                    Ok(()) => tracing::info!(
                        priority = crate::system::hardening::FEEDER_PRIORITY,
                        "feeder thread started"
                    ),
                    Err(e) => crate::system::hardening::log_realtime_refused("feeder", e),
                }
            }
        }
        if !logged.petting && f.is_petting() && !self.latch.is_closed() {
            logged.petting = true;
            if self.dry_run {
                tracing::info!(
                    interval_ms = crate::time::millis(self.interval),
                    "would pet: every check holds a valid lease"
                );
            } else {
                tracing::info!(
                    interval_ms = crate::time::millis(self.interval),
                    devices = self.bound.devices.len(),
                    "petting"
                );
            }
        }
        logged.pet_failures.resize(self.bound.devices.len(), 0);
        for (i, d) in self.bound.devices.iter().enumerate() {
            let (n, errno) = f.pet_failures(i);
            if n > logged.pet_failures[i] {
                let error = errno.map_or("unknown", |e| e.desc());
                tracing::warn!(device = %d.path.display(), error, failures = n, "pet failed: the device did not take it (not counted as a pet)");
                logged.pet_failures[i] = n;
            }
        }
        let dropped = self.notifier.dropped();
        if dropped > logged.notify_dropped {
            if logged.notify_dropped == 0 {
                tracing::warn!(dropped, "the service manager does not read its notify socket (queue full): notifications are dropped, never waited for");
            }
            logged.notify_dropped = dropped;
        }
        self.fencer.report();
        self.fencer.watch();
        if !logged.fence_recorded {
            if let Some((check, evidence)) = self.fencer.fenced_by() {
                logged.fence_recorded = true;
                self.rejoin.fenced(self.bound.total, &check, &evidence);
            }
        }
    }

    /// Keeps the handover file: `1` once fenced (for good) or while any lease is not valid
    /// (a revoked lease included), else `0`.
    pub fn hand_over(&self) {
        let Some(h) = &self.handover else { return };
        let fenced = self.feeder_fenced();
        let r = if fenced {
            h.seal()
        } else {
            h.set(self.leases.first_expired(self.clock.now()).is_some())
        };
        if let Err(e) = r {
            tracing::warn!(file = %h.path().display(), error = %e, "cannot write the handover file");
        }
    }

    /// How often the status file and the textfile are rewritten when nothing changed: ten
    /// intervals, at most a minute (at least one interval).
    pub fn refresh(&self) -> Duration {
        (self.interval * 10)
            .min(Duration::from_secs(60))
            .max(self.interval)
    }

    fn feeder_fenced(&self) -> bool {
        self.latch.is_closed()
    }

    pub fn collect(&self) -> Status {
        let now = self.clock.now();
        let age = |t: Duration| secs(now.saturating_sub(t));
        let last_pet = self.feeder.last_pet();
        let fence = self
            .fencer
            .fenced_by()
            .map(|(check, evidence)| FenceStatus { check, evidence });
        let shared = &self.rejoin.shared;
        let rejoin = shared.left(now).map(|left| RejoinStatus {
            wait_left_s: secs(left),
            delay_s: secs(shared.delay),
            cause: shared.cause.clone(),
        });
        let hold = shared.held().map(|(by, why)| HoldStatus {
            by: by.word().into(),
            why: why.into(),
        });
        let state = match (&fence, &hold, self.dry_run, &rejoin) {
            (Some(_), _, _, _) => "fenced",
            (None, Some(_), _, _) => "rejoin-hold",
            (None, None, true, _) => "dry-run",
            (None, None, false, Some(_)) => "rejoin-wait",
            (None, None, false, None) => "armed",
        };
        let l = &self.feeder.lateness;
        Status {
            pid: std::process::id(),
            start_time: super::liveness::own_start_time(),
            written_at_s: secs(now),
            refresh_s: Some(secs(self.refresh())),
            interval_s: secs(self.interval),
            dry_run: self.dry_run,
            state: state.into(),
            fence,
            bound_s: secs(self.bound.total),
            last_pet_age_s: last_pet.map(age),
            devices: self.devices(now, last_pet),
            checks: self.checks(now),
            lateness: LatenessStatus {
                wakeups: l.count(),
                p50_us: micros(l.quantile_upper(0.5)),
                p99_us: micros(l.quantile_upper(0.99)),
                p999_us: micros(l.quantile_upper(0.999)),
                max_us: micros(l.max()),
                sum_s: l.sum().as_secs_f64(),
                buckets: l
                    .cumulative()
                    .into_iter()
                    .map(|(le_us, count)| LatenessBucket { le_us, count })
                    .collect(),
            },
            version: env!("CARGO_PKG_VERSION").into(),
            textfile: self.textfile.as_ref().map(|t| t.status()),
            rejoin,
            previous_boot: shared.previous_dump.as_ref().map(|d| PreviousBootStatus {
                cause: d.describe(),
                dump: d.path.clone(),
                dump_bytes: d.bytes,
                complete: d.complete,
                fenced: d.fence.as_ref().map(|f| f.mode.clone()),
            }),
            hold,
            pause: self.pause.as_ref().and_then(|p| p.status(now)),
            budget: shared.budget.map(|b| BudgetStatus {
                fences: b.fences,
                within_s: secs(b.within),
                recent: shared
                    .row
                    .iter()
                    .map(|e| EndedBoot {
                        at: e.at,
                        boot: e.boot.clone(),
                        what: e.what.clone(),
                    })
                    .collect(),
            }),
        }
    }

    fn checks(&self, now: Duration) -> Vec<CheckStatus> {
        self.checks
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let last = h.peek().ok().flatten();
                CheckStatus {
                    name: h.name.clone(),
                    healthy: last.as_ref().map(|l| l.passed()),
                    evidence: last.as_ref().map(|l| l.verdict.evidence.clone()),
                    elapsed_ms: last
                        .as_ref()
                        .map(|l| (l.elapsed.as_secs_f64() * 1e6).round() / 1e3),
                    lease_left_s: self
                        .leases
                        .expiry(i)
                        .map(|e| secs(e.saturating_sub(now)) - secs(now.saturating_sub(e))),
                    last_run_age_s: last
                        .as_ref()
                        .map(|l| secs(now.saturating_sub(l.finished_at))),
                    consecutive_failures: last.as_ref().map_or(0, |l| l.consecutive_failures),
                    when: h.when.clone(),
                    idle: last.as_ref().is_some_and(|l| l.verdict.idle),
                }
            })
            .collect()
    }

    fn devices(&self, now: Duration, last_pet: Option<Duration>) -> Vec<DeviceStatus> {
        self.bound
            .devices
            .iter()
            .enumerate()
            .map(|(i, d)| DeviceStatus {
                path: d.path.clone(),
                identity: d.identity.clone(),
                timeout_s: secs(d.timeout),
                time_left_s: match (self.dry_run, last_pet) {
                    (false, Some(p)) => {
                        Some(secs(d.reset_after.saturating_sub(now.saturating_sub(p))))
                    }
                    _ => None,
                },
                pets_total: self.feeder.pets(i),
                pet_failures_total: self.feeder.pet_failures(i).0,
                last_pet_error: self.feeder.pet_failures(i).1.map(|e| e.desc().to_string()),
                stays_armed_on_close: self.stay_armed.as_ref().and_then(|v| v.get(i).copied()),
            })
            .collect()
    }
}
