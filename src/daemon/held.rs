//! The fence record at start-up: opened before anything is armed, and, where it says this
//! boot was fenced (or is damaged), the held state: a wdfeed that never arms or pets, ignores
//! SIGTERM and SIGINT like a fenced one, keeps `wdfeed status` and STATUS= saying why, and
//! leaves only on SIGUSR1 (`wdfeed stop --fenced`). The record stays: the boot is still
//! fenced.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::{Event, Options};
use crate::config::Config;
use crate::fence::record::{self, FenceRecord, Found};
use crate::status::{self, FenceStatus, LatenessStatus, Status};
use crate::system::notify::Notifier;
use crate::time::{deadline, BootClock, Clock};
use crate::Failure;

/// Opens the record of this boot (none in a dry run: it fences nothing). A runtime directory
/// that is not memory-backed, or a boot id that cannot be read, stops wdfeed before it arms;
/// so does a read that does not end within `limit`.
pub(super) fn open_record(
    opts: &Options,
    limit: Duration,
) -> Result<Option<(Arc<FenceRecord>, Found)>, Failure> {
    if opts.dry_run {
        tracing::info!("dry run: the fence record is neither read nor written");
        return Ok(None);
    }
    let (root, dir) = (opts.root.clone(), opts.runtime_dir.clone());
    let (rec, found) = deadline::within("fence-record", limit, move || {
        let boot = record::read_boot_id(&root)?;
        FenceRecord::open(&dir, &boot)
    })
    .map_err(|e| {
        refuse(format!(
            "reading the boot id (/proc/sys/kernel/random/boot_id) and the fence record in {} {e}: \
             one of them hangs. Find it (cat /proc/<wdfeed pid>/task/*/stack) and start wdfeed again",
            opts.runtime_dir.display()
        ))
    })?
    .map_err(refuse)?;
    let line = found.describe(rec.path());
    if found.may_arm() {
        tracing::info!("{line}");
    } else {
        tracing::error!("{line}");
    }
    Ok(Some((Arc::new(rec), found)))
}

fn refuse(e: String) -> Failure {
    Failure::runtime(format!("{e}; nothing was armed"))
}

/// How often the held state extends the start job's timeout.
const EXTEND_EVERY: Duration = Duration::from_secs(10);

/// The held state: returns when the operator releases it (SIGUSR1).
pub(super) fn hold(
    found: &Found,
    rec: &FenceRecord,
    config: &Config,
    opts: &Options,
    events: &Receiver<Event>,
) {
    let line = found.describe(rec.path());
    let notifier = Notifier::from_env();
    notifier.send(&format!("STATUS=FENCED: {line}"));
    let every = config.interval.max(Duration::from_millis(100));
    let mut extended: Option<Duration> = None;
    loop {
        notifier.watchdog();
        // READY=1 never comes from a held wdfeed: keep the start job from timing out (a
        // manager kill and a restart would only come back here).
        let now = BootClock.now();
        if extended.is_none_or(|t| now.saturating_sub(t) >= EXTEND_EVERY) {
            extended = Some(now);
            notifier.send(&format!(
                "EXTEND_TIMEOUT_USEC={}",
                (EXTEND_EVERY * 3).as_micros()
            ));
        }
        write_status(&line, every, opts);
        match events.recv_timeout(every) {
            Ok(Event::Signal(Signal::SIGUSR1)) => {
                tracing::warn!("SIGUSR1 (wdfeed stop --fenced): leaving; the fence record stays, so every wdfeed started in this boot waits for the reset");
                let _ = std::fs::remove_file(&opts.status_file);
                return;
            }
            Ok(Event::Signal(Signal::SIGHUP)) => {
                tracing::warn!(
                    "SIGHUP: fenced earlier in this boot; no config is used until the reset"
                )
            }
            Ok(Event::Signal(sig)) => {
                tracing::warn!(signal = %sig, "fenced: not stopping ({line}); `wdfeed stop --fenced` ends this process, the reset ends the fence")
            }
            Ok(Event::FeederDone(_)) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn write_status(line: &str, every: Duration, opts: &Options) {
    let s = Status {
        pid: std::process::id(),
        start_time: status::liveness::own_start_time(),
        written_at_s: status::secs(BootClock.now()),
        refresh_s: None,
        interval_s: status::secs(every),
        dry_run: false,
        state: "fenced-earlier".into(),
        fence: Some(FenceStatus {
            check: "fence record".into(),
            evidence: line.to_string(),
        }),
        bound_s: 0.0,
        last_pet_age_s: None,
        devices: vec![],
        checks: vec![],
        lateness: LatenessStatus::default(),
        version: env!("CARGO_PKG_VERSION").into(),
        textfile: None,
        rejoin: None,
        previous_boot: None,
        hold: None,
        pause: None,
        budget: None,
    };
    if let Err(e) = status::write(&opts.status_file, &s) {
        tracing::debug!(error = %e, "cannot write the status file");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::Root;
    use std::os::unix::fs::OpenOptionsExt;

    #[test]
    fn a_boot_id_read_that_hangs_stops_start_up_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let random = dir.path().join("proc/sys/kernel/random");
        std::fs::create_dir_all(&random).unwrap();
        let fifo = random.join("boot_id");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let run = tempfile::tempdir().unwrap();
        let opts = Options {
            root: Root::at(dir.path()),
            config: None,
            dry_run: false,
            status_file: run.path().join("status"),
            runtime_dir: run.path().to_path_buf(),
            state_dir: run.path().join("state"),
        };
        let e = open_record(&opts, Duration::from_millis(200))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("boot_id")
                && e.contains("did not end within 0.2 s")
                && e.contains("nothing was armed"),
            "{e}"
        );
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo);
    }
}
