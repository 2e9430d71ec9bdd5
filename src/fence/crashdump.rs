//! `mode: crashdump`: the fence's last step, which crashes the kernel into the loaded crash
//! kernel (kdump) so that the dump kernel saves a dump, while the hardware watchdog stays
//! armed to reset a dump kernel that hangs.
//!
//! Prepared at start-up ([`Sysrq::prepare`]): a crash kernel must be loaded
//! (`/sys/kernel/kexec_crash_loaded` reads 1), that file is kept open, and so is
//! `/proc/sysrq-trigger`, so that the step opens nothing. Each device is shown at arming to
//! take the crashdump timeout and give its own back ([`try_timeout`]).
//!
//! The step ([`Crashdump::run`]) runs on the feeder, which owns the devices, right after the
//! rest of the fence (record, kernel log, isolate, kill, handover): no lock, no allocation, no
//! disk. If the crash kernel is gone it falls back to the watchdog's reset without touching
//! a device. Otherwise every device's timeout is set to the crashdump timeout and read back;
//! a device that refuses it (or runs with another value, which is put back) ends the step:
//! the watchdog's reset follows, within the bound, since the old timeout is shorter. Then
//! every device is petted once and the kernel crashed with sysrq `c`. Each outcome goes to
//! the kernel log at once (the dump keeps it) and into atomics that the status thread logs
//! ([`Crashdump::report`]).

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use nix::errno::Errno;

use super::{KernelLog, Line};
use crate::device::io::WatchdogIo;
use crate::device::{Armed, DeviceError, Watchdog};
use crate::system::Root;
use crate::units::format_duration;

/// What the crash step needs of the kernel.
pub trait CrashKernel: Send + Sync {
    /// Whether a crash kernel is loaded now; the errno if that cannot be read.
    fn loaded(&self) -> Result<bool, Errno>;
    /// Crashes the kernel into the crash kernel; returns only if it did not crash (why).
    fn crash(&self) -> Errno;
}

/// The kernel's own files the fence uses, opened at start-up under the root: its copy of
/// `kexec_crash_loaded`, and `/proc/sysrq-trigger` (none in a dry run).
pub struct Sysrq {
    loaded: File,
    trigger: Option<File>,
}

/// What [`Sysrq::prepare`] opens: the fence's files, and the status thread's own descriptor
/// of `kexec_crash_loaded` (two descriptors, so that neither thread ever waits on the other
/// in the kernel's read of the file).
pub struct Prepared {
    kernel: Sysrq,
    watched: File,
}

/// How to get a crash kernel loaded, for the refusals.
const HOW_TO_LOAD: &str = "load one first: on Debian `apt install kdump-tools`, reserve its memory with `crashkernel=` on the kernel command line (kdump-tools adds it to /etc/default/grub.d/kdump-tools.cfg), reboot, and check that `kdump-config status` says ready to kdump; or use `mode: watchdog` (docs/DEPLOY.md, Crash dumps)";

/// Reads `1` or `0` from a kept `kexec_crash_loaded` with one pread at offset 0 into a
/// buffer on the stack (sysfs builds the text afresh at offset 0). Allocates nothing.
fn read_flag(file: &File) -> Result<bool, Errno> {
    let mut buf = [0u8; 16];
    let n = file
        .read_at(&mut buf, 0)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    match buf[..n].trim_ascii() {
        b"1" => Ok(true),
        b"0" => Ok(false),
        _ => Err(Errno::EINVAL),
    }
}

impl Sysrq {
    /// Opens what the crash needs under `root`, refusing a node with no crash kernel loaded.
    pub fn prepare(root: &Root, dry_run: bool) -> Result<Prepared, String> {
        let flag = root.follow(root.sys("kernel/kexec_crash_loaded"));
        let open_flag = || {
            File::open(&flag).map_err(|e| {
                format!(
                    "fence.mode crashdump: cannot read {}: {e}: this kernel cannot load a crash kernel (it needs CONFIG_KEXEC_CORE and CONFIG_CRASH_DUMP); use `mode: watchdog`",
                    root.node_name(&flag).display()
                )
            })
        };
        let (loaded, watched) = (open_flag()?, open_flag()?);
        match read_flag(&loaded) {
            Ok(true) => {}
            Ok(false) => {
                return Err(format!(
                    "fence.mode crashdump: no crash kernel is loaded ({} is 0), so the fence could not save a dump; {HOW_TO_LOAD}",
                    root.node_name(&flag).display()
                ))
            }
            Err(e) => {
                return Err(format!(
                    "fence.mode crashdump: {} does not read 0 or 1 ({}); {HOW_TO_LOAD}",
                    root.node_name(&flag).display(),
                    e.desc()
                ))
            }
        }
        let trigger = if dry_run {
            None
        } else {
            let path = root.follow(root.proc("sysrq-trigger"));
            let file = OpenOptions::new().write(true).open(&path).map_err(|e| {
                let hint = match e.raw_os_error() {
                    Some(libc::EROFS) => "it is read-only here: the unit's ProtectKernelTunables=yes makes it so; install systemd/crashdump.conf as /etc/systemd/system/wdfeed.service.d/crashdump.conf (docs/DEPLOY.md, Sandboxing)",
                    Some(libc::EACCES) | Some(libc::EPERM) => "run wdfeed as root",
                    Some(libc::ENOENT) => "this kernel has no magic SysRq (CONFIG_MAGIC_SYSRQ); use `mode: watchdog`",
                    _ => "",
                };
                format!(
                    "fence.mode crashdump: cannot open {} for writing: {e}; {hint}; nothing was armed",
                    root.node_name(&path).display()
                )
            })?;
            Some(file)
        };
        Ok(Prepared {
            kernel: Sysrq { loaded, trigger },
            watched,
        })
    }
}

impl CrashKernel for Sysrq {
    fn loaded(&self) -> Result<bool, Errno> {
        read_flag(&self.loaded)
    }

    fn crash(&self) -> Errno {
        match self.trigger.as_ref() {
            // A write of `c` panics the kernel inside write(2): it never returns.
            Some(mut f) => match f.write(b"c") {
                Ok(_) => Errno::EAGAIN,
                Err(e) => Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            },
            None => Errno::EBADF,
        }
    }
}

/// What the step did, once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A dry run: it only says what it would do.
    WouldCrash,
    /// No crash kernel is loaded any more: no device touched, the watchdog resets.
    NotLoaded,
    /// `kexec_crash_loaded` could not be read: treated as not loaded.
    Unreadable(Errno),
    /// Device `device` refused the timeout (errno), or ran with `granted` seconds instead
    /// (put back to its own timeout): the watchdog resets.
    Refused {
        device: usize,
        errno: Option<Errno>,
        granted: Option<u64>,
    },
    /// The crash was attempted; it returned (so it failed) with this errno.
    CrashFailed(Errno),
}

/// The lock-free record of [`Outcome`] and of failed pets, written by the step.
#[derive(Default)]
struct Record {
    /// 0: not run; else the kind of outcome.
    kind: AtomicU8,
    device: AtomicUsize,
    /// 0: none.
    errno: AtomicI32,
    /// 0: none.
    granted: AtomicU64,
    /// Pets after the retime that failed (the crash goes on: the bound holds either way).
    failed_pets: AtomicUsize,
}

const WOULD: u8 = 1;
const NOT_LOADED: u8 = 2;
const UNREADABLE: u8 = 3;
const REFUSED: u8 = 4;
const CRASH_FAILED: u8 = 5;

impl Record {
    fn set(&self, o: Outcome) {
        let (kind, device, errno, granted) = match o {
            Outcome::WouldCrash => (WOULD, 0, None, None),
            Outcome::NotLoaded => (NOT_LOADED, 0, None, None),
            Outcome::Unreadable(e) => (UNREADABLE, 0, Some(e), None),
            Outcome::Refused {
                device,
                errno,
                granted,
            } => (REFUSED, device, errno, granted),
            Outcome::CrashFailed(e) => (CRASH_FAILED, 0, Some(e), None),
        };
        self.device.store(device, Ordering::SeqCst);
        self.errno
            .store(errno.map_or(0, |e| e as i32), Ordering::SeqCst);
        self.granted.store(granted.unwrap_or(0), Ordering::SeqCst);
        self.kind.store(kind, Ordering::SeqCst);
    }

    fn get(&self) -> Option<Outcome> {
        let errno = match self.errno.load(Ordering::SeqCst) {
            0 => None,
            e => Some(Errno::from_raw(e)),
        };
        let some_errno = errno.unwrap_or(Errno::UnknownErrno);
        Some(match self.kind.load(Ordering::SeqCst) {
            WOULD => Outcome::WouldCrash,
            NOT_LOADED => Outcome::NotLoaded,
            UNREADABLE => Outcome::Unreadable(some_errno),
            REFUSED => Outcome::Refused {
                device: self.device.load(Ordering::SeqCst),
                errno,
                granted: Some(self.granted.load(Ordering::SeqCst)).filter(|&g| g != 0),
            },
            CRASH_FAILED => Outcome::CrashFailed(some_errno),
            _ => return None,
        })
    }
}

/// What the status thread last saw of the crash kernel: 0 not yet, 1 loaded, 2 not loaded,
/// 3 unreadable.
const SEEN_LOADED: u8 = 1;
const SEEN_NOT_LOADED: u8 = 2;
const SEEN_UNREADABLE: u8 = 3;

/// The crash step of one daemon.
pub struct Crashdump {
    timeout: Duration,
    kernel: Box<dyn CrashKernel>,
    /// The status thread's descriptor of `kexec_crash_loaded` (none with a fake kernel).
    watched: Option<File>,
    dry_run: bool,
    /// The devices' paths, in the feeder's order, for the report.
    paths: Vec<PathBuf>,
    record: Record,
    seen: AtomicU8,
    /// The outcome was logged.
    logged: AtomicBool,
}

impl Crashdump {
    /// The step with the real kernel files prepared by [`Sysrq::prepare`].
    pub fn new(timeout: Duration, prepared: Prepared, paths: Vec<PathBuf>, dry_run: bool) -> Self {
        Crashdump {
            timeout,
            kernel: Box::new(prepared.kernel),
            watched: Some(prepared.watched),
            dry_run,
            paths,
            record: Record::default(),
            seen: AtomicU8::new(0),
            logged: AtomicBool::new(false),
        }
    }

    /// The step with another kernel (tests).
    #[cfg(test)]
    pub fn with_kernel(
        timeout: Duration,
        kernel: Box<dyn CrashKernel>,
        paths: Vec<PathBuf>,
        dry_run: bool,
    ) -> Self {
        Crashdump {
            timeout,
            kernel,
            watched: None,
            dry_run,
            paths,
            record: Record::default(),
            seen: AtomicU8::new(0),
            logged: AtomicBool::new(false),
        }
    }

    /// What the step did, once it ran.
    pub fn outcome(&self) -> Option<Outcome> {
        self.record.get()
    }

    /// The step, on the thread that owns `devices`, after the rest of the fence. Allocates
    /// nothing, takes no lock, writes only to the kernel (its log, the devices, sysrq).
    pub fn run(&self, devices: &mut [Box<dyn Armed>], log: &KernelLog) {
        if self.dry_run {
            self.record.set(Outcome::WouldCrash);
            return;
        }
        let secs = self.timeout.as_secs();
        let mut line = Line::<320>::default();
        match self.kernel.loaded() {
            Ok(true) => {}
            other => {
                let outcome = match other {
                    Err(e) => Outcome::Unreadable(e),
                    _ => Outcome::NotLoaded,
                };
                let _ = write!(
                    line,
                    "<2>wdfeed: CRASHDUMP no crash kernel is loaded any more (kexec_crash_loaded: {}): no dump; the watchdog resets the node",
                    match other {
                        Err(e) => e.desc(),
                        _ => "0",
                    }
                );
                self.finish(outcome, &mut line, log);
                return;
            }
        }
        for (i, d) in devices.iter_mut().enumerate() {
            let own = d.timeout();
            let (errno, granted) = match d.retime(self.timeout) {
                Ok(t) if t == self.timeout => continue,
                Ok(t) => {
                    // The core pinged it with a value the bound does not know: back to its
                    // own timeout, which the bound does (the ping costs at most one interval).
                    let _ = d.retime(own);
                    (None, Some(t.as_secs()))
                }
                Err(e) => (Some(e), None),
            };
            let _ = write!(
                line,
                "<2>wdfeed: CRASHDUMP {} refused the crashdump-timeout {secs}s (",
                d.path().display()
            );
            match (errno, granted) {
                (Some(e), _) => {
                    let _ = line.write_str(e.desc());
                }
                (_, Some(g)) => {
                    let _ = write!(line, "it runs with {g}s; its own timeout is back");
                }
                _ => {}
            }
            let _ = line.write_str("): no dump; the watchdog resets the node");
            self.finish(
                Outcome::Refused {
                    device: i,
                    errno,
                    granted,
                },
                &mut line,
                log,
            );
            return;
        }
        for d in devices.iter_mut() {
            if d.pet().is_err() {
                self.record.failed_pets.fetch_add(1, Ordering::SeqCst);
            }
        }
        let _ = write!(
            line,
            "<2>wdfeed: CRASHDUMP every device now resets {secs}s after this pet; crashing into the dump kernel (sysrq c)"
        );
        line.end_with_newline();
        log.write(line.as_bytes());
        let e = self.kernel.crash();
        let mut line = Line::<320>::default();
        let _ = write!(
            line,
            "<2>wdfeed: CRASHDUMP the crash did not happen ({}): no dump; the watchdog resets the node within {secs}s",
            e.desc()
        );
        self.finish(Outcome::CrashFailed(e), &mut line, log);
    }

    fn finish<const N: usize>(&self, outcome: Outcome, line: &mut Line<N>, log: &KernelLog) {
        line.end_with_newline();
        log.write(line.as_bytes());
        self.record.set(outcome);
    }

    /// The step's log lines (the status thread's), once it ran.
    pub fn report(&self) -> Vec<String> {
        let t = format_duration(self.timeout);
        let path = |i: usize| {
            self.paths
                .get(i)
                .map_or_else(|| format!("device {i}"), |p| p.display().to_string())
        };
        let mut out = Vec::new();
        match self.outcome() {
            None => {}
            Some(Outcome::WouldCrash) => out.push(format!(
                "would crash: every device's timeout to {t} (read back), one pet, then sysrq c into the loaded crash kernel (dry run: nothing done)"
            )),
            Some(Outcome::NotLoaded) => out.push(
                "crashdump: no crash kernel is loaded any more (/sys/kernel/kexec_crash_loaded is 0): falling back to watchdog, no dump; the devices keep their timeouts and the hardware resets the node within the bound".into(),
            ),
            Some(Outcome::Unreadable(e)) => out.push(format!(
                "crashdump: /sys/kernel/kexec_crash_loaded cannot be read ({}): falling back to watchdog, no dump; the hardware resets the node within the bound",
                e.desc()
            )),
            Some(Outcome::Refused { device, errno, granted }) => out.push(format!(
                "crashdump: {} refused the crashdump-timeout {t} ({}): falling back to watchdog, no dump; the hardware resets the node within the bound (its own timeout is shorter)",
                path(device),
                match (errno, granted) {
                    (Some(e), _) => e.desc().to_string(),
                    (_, Some(g)) => format!("it ran with {g}s, so its own timeout was put back"),
                    _ => "no reason given".into(),
                }
            )),
            Some(Outcome::CrashFailed(e)) => out.push(format!(
                "crashdump: the crash (sysrq c) did not happen ({}): no dump; the devices run with the crashdump-timeout {t} and the hardware resets the node within the bound",
                e.desc()
            )),
        }
        let failed = self.record.failed_pets.load(Ordering::SeqCst);
        if failed > 0 {
            out.push(format!(
                "crashdump: {failed} device(s) refused the pet after the retime (the core pinged them when their timeout changed)"
            ));
        }
        out
    }

    /// Logs [`Crashdump::report`] once the step has run, once (off the feeder).
    pub fn log_outcome_once(&self) {
        if self.outcome().is_none() || self.logged.swap(true, Ordering::SeqCst) {
            return;
        }
        for line in self.report() {
            tracing::error!("{line}");
        }
    }

    /// The status thread, every round: says when the crash kernel goes away or comes back,
    /// since a fence then falls back to the watchdog's reset (no dump). Returns what it
    /// logged.
    pub fn watch(&self) -> Option<&'static str> {
        let file = self.watched.as_ref()?;
        let now = match read_flag(file) {
            Ok(true) => SEEN_LOADED,
            Ok(false) => SEEN_NOT_LOADED,
            Err(_) => SEEN_UNREADABLE,
        };
        let before = self.seen.swap(now, Ordering::SeqCst);
        if before == now || (before == 0 && now == SEEN_LOADED) {
            return None;
        }
        let news = match now {
            SEEN_LOADED => "a crash kernel is loaded again (/sys/kernel/kexec_crash_loaded is 1): a fence saves a dump",
            SEEN_NOT_LOADED => "the crash kernel was unloaded (/sys/kernel/kexec_crash_loaded is 0): a fence now falls back to watchdog (no dump) until one is loaded again (kdump-config load)",
            _ => "/sys/kernel/kexec_crash_loaded cannot be read: a fence would fall back to watchdog (no dump)",
        };
        if now == SEEN_LOADED {
            tracing::info!("{news}");
        } else {
            tracing::warn!("{news}");
        }
        Some(news)
    }
}

/// Whether this kernel is a dump kernel (kdump): `/proc/vmcore` exists only there. wdfeed
/// arms nothing in one, so that the hardware watchdog, left running by the fence, resets a
/// dump that hangs (kdump-tools' dump kernel boots systemd, which would start wdfeed).
pub fn in_dump_kernel(root: &Root) -> bool {
    root.proc("vmcore").exists()
}

/// At arming: shows that `dog` takes `timeout` (set and read back) and gives its own
/// timeout back, so that the fence's retime is known to work; an error says which value
/// to pick. `max` is the driver's max_timeout from sysfs, where it says one.
pub fn try_timeout<I: WatchdogIo>(
    dog: &mut Watchdog<I>,
    timeout: Duration,
    max: Option<u32>,
) -> Result<(), DeviceError> {
    let path = dog.path().to_path_buf();
    let err = |errno, detail: String| {
        DeviceError::new(&path, "set the crashdump-timeout of", errno, detail)
    };
    let limit = max
        .filter(|&m| m > 0)
        .map(|m| format!(" (sysfs says its max_timeout is {m}s)"))
        .unwrap_or_default();
    match dog.retime(timeout) {
        Ok(t) if t == timeout => {}
        Ok(t) => {
            let _ = dog.retime(dog.timeout);
            return Err(err(
                None,
                format!(
                    "asked for {}, the driver runs with {}{limit}: pick a fence.crashdump-timeout the driver keeps; nothing was armed",
                    format_duration(timeout),
                    format_duration(t)
                ),
            ));
        }
        Err(e) => {
            return Err(err(
                Some(e),
                format!(
                    "the driver refuses {}{limit}: lower fence.crashdump-timeout to what it takes (`wdfeed info` shows its range); nothing was armed",
                    format_duration(timeout)
                ),
            ))
        }
    }
    match dog.retime(dog.timeout) {
        Ok(t) if t == dog.timeout => Ok(()),
        other => Err(DeviceError::new(
            &path,
            "set back the timeout of",
            other.as_ref().err().copied(),
            format!(
                "after the crashdump-timeout test the driver does not run with {} again{}; nothing was armed",
                format_duration(dog.timeout),
                other.map(|t| format!(" (it runs with {})", format_duration(t))).unwrap_or_default()
            ),
        )),
    }
}

#[cfg(test)]
mod tests;
