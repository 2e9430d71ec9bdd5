//! The device policy: program a watchdog as the config asks, trusting nothing the driver
//! says about itself. Option flags are read but never relied on (ipmi_watchdog reports
//! options=0 yet supports SETTIMEOUT, KEEPALIVE and magic close): every operation is tried,
//! read back, and given a fallback.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;

use super::io::WatchdogIo;
use crate::units::format_duration;

/// Something a device would not do, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceError {
    pub path: PathBuf,
    /// What was being done: `open`, `set the timeout of`, `pet`, `disarm`...
    pub action: &'static str,
    pub errno: Option<Errno>,
    pub detail: String,
}

impl DeviceError {
    pub fn new(
        path: &Path,
        action: &'static str,
        errno: Option<Errno>,
        detail: impl Into<String>,
    ) -> Self {
        DeviceError {
            path: path.to_path_buf(),
            action,
            errno,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot {} watchdog {}", self.action, self.path.display())?;
        if let Some(e) = self.errno {
            write!(f, ": {}", e.desc())?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for DeviceError {}

/// What the config asks of one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub timeout: Duration,
    pub pretimeout: Option<Duration>,
    /// The shortest timeout the rest of the config can live with (three pets per timeout).
    pub min_timeout: Duration,
}

/// The largest timeout every driver takes as it is (ipmi_watchdog wraps larger values).
pub const MAX_TIMEOUT_SECS: i32 = 6553;

/// A programmed, armed watchdog.
pub struct Watchdog<I: WatchdogIo> {
    path: PathBuf,
    io: I,
    pub identity: String,
    /// The option bits GETSUPPORT reported (WDIOF_*).
    pub options: u32,
    /// The timeout the driver really runs with (read back after setting it).
    pub timeout: Duration,
    /// GETBOOTSTATUS before the first pet, where the driver answers it.
    pub bootstatus: Option<u32>,
    /// True when KEEPALIVE is not supported and the device is petted by write(2).
    pub pets_by_write: bool,
    /// Closing it without the magic `V` leaves it counting down ([`stays_armed_on_close`]).
    pub stays_armed_on_close: bool,
    /// Things the operator should hear about (fallbacks taken), logged by the caller.
    pub notes: Vec<String>,
}

impl<I: WatchdogIo> Watchdog<I> {
    /// Programs an open device: identity, boot status, timeout (set, read back, checked),
    /// pretimeout, and a first pet that also picks how to pet (ioctl, else write).
    pub fn program(path: &Path, mut io: I, want: &Request) -> Result<Self, DeviceError> {
        let err = |action, errno, detail: String| DeviceError::new(path, action, errno, detail);
        let info = io.get_support().map_err(|e| {
            let detail = match e {
                Errno::ENOTTY | Errno::EINVAL => "it does not answer WDIOC_GETSUPPORT: this is not a watchdog device (see `wdfeed info`)".into(),
                Errno::ENODEV | Errno::ENXIO => "the device went away (driver unloaded?)".into(),
                _ => String::new(),
            };
            err("identify", Some(e), detail)
        })?;
        let mut notes = Vec::new();
        // A mask of WDIOF_* bits: the same 32 bits, read unsigned.
        let bootstatus = io
            .get_bootstatus()
            .ok()
            .map(|b| u32::from_ne_bytes(b.to_ne_bytes()));
        let granted = set_timeout(&mut io, want, &mut notes)
            .map_err(|(errno, detail)| err("set the timeout of", errno, detail))?;
        let timeout = check_granted(granted, want, &mut notes)
            .map_err(|detail| err("set the timeout of", None, detail))?;
        if let Some(pre) = want.pretimeout {
            let secs = i32::try_from(pre.as_secs()).unwrap_or(i32::MAX);
            if let Err(e) = io.set_pretimeout(secs) {
                notes.push(format!("pretimeout {secs}s not set: {}", e.desc()));
            }
        }

        let identity = info.identity();
        let mut dog = Watchdog {
            path: path.to_path_buf(),
            io,
            stays_armed_on_close: stays_armed_on_close(info.options, &identity),
            options: info.options,
            identity,
            timeout,
            bootstatus,
            pets_by_write: false,
            notes,
        };
        dog.pet().map_err(|e| err("pet", Some(e), String::new()))?;
        if dog.pets_by_write {
            dog.notes
                .push("WDIOC_KEEPALIVE not supported: petting by write()".into());
        }
        Ok(dog)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One pet: KEEPALIVE, or write(2) once the driver has shown it lacks the ioctl.
    /// Allocates nothing.
    pub fn pet(&mut self) -> Result<(), Errno> {
        if !self.pets_by_write {
            match self.io.keepalive() {
                Ok(()) => return Ok(()),
                Err(Errno::ENOTTY) | Err(Errno::EOPNOTSUPP) | Err(Errno::EINVAL) => {
                    self.pets_by_write = true;
                }
                Err(e) => return Err(e),
            }
        }
        self.io.write(b"\0")
    }

    /// Sets the timeout to `timeout` (clamped as at arming) and reads back what the driver
    /// runs with (GETTIMEOUT, else the value SETTIMEOUT wrote back); the armed timeout in
    /// [`Watchdog::timeout`] stays as it was. Allocates nothing: the fence's crash step
    /// calls it.
    pub fn retime(&mut self, timeout: Duration) -> Result<Duration, Errno> {
        let asked = i32::try_from(timeout.as_secs())
            .unwrap_or(i32::MAX)
            .min(MAX_TIMEOUT_SECS);
        let written_back = self.io.set_timeout(asked)?;
        let granted = self.io.get_timeout().unwrap_or(written_back);
        u64::try_from(granted)
            .ok()
            .filter(|&g| g > 0)
            .map(Duration::from_secs)
            .ok_or(Errno::EINVAL)
    }

    /// Writes the magic `V` and closes: the watchdog stops, unless the driver was built or
    /// loaded with nowayout (then it fires anyway).
    pub fn disarm(mut self) -> Result<(), DeviceError> {
        self.io
            .write(b"V")
            .map_err(|e| DeviceError::new(&self.path, "disarm", Some(e), "the device stays armed"))
    }
}

/// The identity ipmi_watchdog gives: its own misc device, whose close pings the BMC instead
/// of stopping it unless the magic `V` came first, although GETSUPPORT reports options 0.
pub const IPMI_IDENTITY: &str = "IPMI";

/// Whether closing the device without the magic `V` leaves it counting down. The watchdog
/// core (`watchdog_release()`) stops the timer on any close when the driver lacks
/// WDIOF_MAGICCLOSE: then a wdfeed that exits after a fence (SIGKILL, an abort) would leave
/// the node running forever. ipmi_watchdog is not under the core and never stops on an
/// unexpected close. (A driver with `nowayout` never stops either; sysfs tells that, and
/// the caller adds it.)
pub fn stays_armed_on_close(options: u32, identity: &str) -> bool {
    options & crate::device::flags::WDIOF_MAGICCLOSE != 0 || identity == IPMI_IDENTITY
}

/// Sets the timeout (clamped to what every driver takes) and reads back what the driver
/// runs with: the granted seconds, or the errno and what to do.
fn set_timeout<I: WatchdogIo>(
    io: &mut I,
    want: &Request,
    notes: &mut Vec<String>,
) -> Result<i32, (Option<Errno>, String)> {
    let asked = i32::try_from(want.timeout.as_secs()).unwrap_or(i32::MAX);
    let clamped = asked.min(MAX_TIMEOUT_SECS);
    if clamped != asked {
        notes.push(format!(
            "timeout clamped from {asked}s to {clamped}s (IPMI BMCs wrap larger values)"
        ));
    }
    match io.set_timeout(clamped) {
        Ok(written_back) => Ok(io.get_timeout().unwrap_or(written_back)),
        Err(Errno::EINVAL) => Err((
            Some(Errno::EINVAL),
            format!("the driver refuses {clamped}s; `wdfeed info` shows its min/max timeout: pick a timeout in that range"),
        )),
        Err(Errno::ENOTTY) | Err(Errno::EOPNOTSUPP) => match io.get_timeout() {
            Ok(t) => {
                notes.push(format!("the driver cannot change its timeout; it keeps {t}s"));
                Ok(t)
            }
            Err(e) => Err((
                Some(e),
                "the driver can neither set nor report its timeout, so no fence bound can be stated; set it with the driver's module option and use a driver that reports it".into(),
            )),
        },
        Err(e) => Err((Some(e), String::new())),
    }
}

/// The granted timeout, if the rest of the config can live with it.
fn check_granted(
    granted: i32,
    want: &Request,
    notes: &mut Vec<String>,
) -> Result<Duration, String> {
    if granted <= 0 {
        return Err(format!("the driver reports a timeout of {granted}s"));
    }
    let timeout = Duration::from_secs(granted.unsigned_abs().into());
    if timeout != want.timeout {
        notes.push(format!(
            "asked for a {}s timeout, the driver granted {}s",
            want.timeout.as_secs(),
            granted
        ));
    }
    if timeout < want.min_timeout {
        return Err(format!(
            "the driver granted {}, but the config needs at least {} (three pets per timeout): raise the interval's margin or pick a timeout the driver keeps",
            format_duration(timeout),
            format_duration(want.min_timeout)
        ));
    }
    Ok(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::fake::{info, Call, FakeIo, Script};

    fn req(timeout: u64) -> Request {
        Request {
            timeout: Duration::from_secs(timeout),
            pretimeout: None,
            min_timeout: Duration::from_secs(3),
        }
    }

    fn program(script: Script, want: &Request) -> (Result<Watchdog<FakeIo>, DeviceError>, FakeIo) {
        let io = FakeIo::new(script);
        (
            Watchdog::program(Path::new("/dev/watchdog0"), io.clone(), want),
            io,
        )
    }

    #[test]
    fn a_well_behaved_driver_is_set_read_back_and_petted_once() {
        let (dog, io) = program(Script::default(), &req(10));
        let dog = dog.unwrap();
        assert_eq!(dog.timeout, Duration::from_secs(10));
        assert_eq!(dog.identity, "Fake Watchdog");
        assert!(!dog.pets_by_write);
        assert_eq!(
            io.calls(),
            vec![
                Call::GetSupport,
                Call::GetBootstatus,
                Call::SetTimeout(10),
                Call::GetTimeout,
                Call::Keepalive
            ]
        );
    }

    #[test]
    fn a_driver_without_magic_close_is_known_to_stop_on_close() {
        // The watchdog core stops such a driver on any close: a fenced wdfeed must not exit.
        let no_magic = Script {
            support: Ok(info("Fake No-Magic", 0x8080)),
            ..Script::default()
        };
        assert!(!program(no_magic, &req(10)).0.unwrap().stays_armed_on_close);
        assert!(
            program(Script::default(), &req(10))
                .0
                .unwrap()
                .stays_armed_on_close
        );
        // ipmi_watchdog says options 0, but its own close pings instead of stopping.
        let ipmi = Script {
            support: Ok(info("IPMI", 0)),
            ..Script::default()
        };
        assert!(program(ipmi, &req(10)).0.unwrap().stays_armed_on_close);
    }

    #[test]
    fn the_timeout_read_back_wins_over_the_request() {
        // iTCO_wdt style rounding: asked 10, the driver keeps 9.
        let script = Script {
            get_timeout: Some(Ok(9)),
            ..Script::default()
        };
        let (dog, _) = program(script, &req(10));
        let dog = dog.unwrap();
        assert_eq!(dog.timeout, Duration::from_secs(9));
        assert!(
            dog.notes.iter().any(|n| n.contains("granted 9s")),
            "{:?}",
            dog.notes
        );
    }

    #[test]
    fn a_granted_timeout_that_breaks_the_config_is_refused() {
        let script = Script {
            set_timeout: Some(Ok(2)),
            get_timeout: Some(Err(Errno::ENOTTY)),
            ..Script::default()
        };
        let (dog, io) = program(script, &req(10));
        let e = dog.err().unwrap();
        assert!(e.to_string().contains("granted 2s"), "{e}");
        assert_eq!(io.pets(), 0, "a refused device must not be petted");
    }

    #[test]
    fn ipmi_like_drivers_work_through_fallbacks() {
        // options=0, GETBOOTSTATUS ENOTTY, KEEPALIVE not supported.
        let script = Script {
            support: Ok(info("IPMI", 0)),
            bootstatus: Err(Errno::ENOTTY),
            keepalive: Err(Errno::EOPNOTSUPP),
            ..Script::default()
        };
        let (dog, io) = program(script, &req(10));
        let mut dog = dog.unwrap();
        assert_eq!(dog.bootstatus, None);
        assert!(dog.pets_by_write);
        dog.pet().unwrap();
        let calls = io.calls();
        assert_eq!(
            calls.iter().filter(|c| **c == Call::Keepalive).count(),
            1,
            "keepalive tried once, then write: {calls:?}"
        );
        assert_eq!(
            calls.iter().filter(|c| **c == Call::Write(vec![0])).count(),
            2
        );
    }

    #[test]
    fn timeouts_over_what_ipmi_takes_are_clamped() {
        let (dog, io) = program(Script::default(), &req(7000));
        assert!(io.calls().contains(&Call::SetTimeout(MAX_TIMEOUT_SECS)));
        assert!(dog.unwrap().notes.iter().any(|n| n.contains("clamped")));
    }

    #[test]
    fn a_driver_that_cannot_set_its_timeout_keeps_the_one_it_reports() {
        let script = Script {
            set_timeout: Some(Err(Errno::ENOTTY)),
            get_timeout: Some(Ok(60)),
            ..Script::default()
        };
        let (dog, _) = program(script, &req(10));
        assert_eq!(dog.unwrap().timeout, Duration::from_secs(60));
    }

    #[test]
    fn a_refused_timeout_says_where_to_look() {
        let script = Script {
            set_timeout: Some(Err(Errno::EINVAL)),
            ..Script::default()
        };
        let e = program(script, &req(1000)).0.err().unwrap();
        assert!(e.to_string().contains("min/max timeout"), "{e}");
    }

    #[test]
    fn a_file_that_is_no_watchdog_is_named_as_such() {
        let script = Script {
            support: Err(Errno::ENOTTY),
            ..Script::default()
        };
        let e = program(script, &req(10)).0.err().unwrap();
        assert!(e.to_string().contains("not a watchdog device"), "{e}");
    }

    #[test]
    fn disarm_writes_the_magic_v() {
        let (dog, io) = program(Script::default(), &req(10));
        dog.unwrap().disarm().unwrap();
        assert_eq!(io.calls().last(), Some(&Call::Write(b"V".to_vec())));
    }

    #[test]
    fn dropping_an_armed_device_never_writes_v() {
        let (dog, io) = program(Script::default(), &req(10));
        drop(dog);
        assert!(!io.calls().contains(&Call::Write(b"V".to_vec())));
    }

    #[test]
    fn a_vanished_device_is_reported_by_pet() {
        let (dog, io) = program(Script::default(), &req(10));
        let mut dog = dog.unwrap();
        io.script.lock().unwrap().keepalive = Err(Errno::ENODEV);
        assert_eq!(dog.pet(), Err(Errno::ENODEV));
    }
}
