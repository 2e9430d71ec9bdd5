//! The crash step with fake devices and a fake or fixture kernel: what it does to each
//! device, when it falls back to the watchdog's reset, what it writes to the kernel log,
//! and that it allocates nothing.

use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use super::*;
use crate::device::fake::{Call, FakeIo, Script};
use crate::device::Request;

const S: fn(u64) -> Duration = Duration::from_secs;

/// A kernel whose crash kernel is loaded or not, and whose crash only counts.
#[derive(Clone, Default)]
struct FakeKernel {
    unloaded: Arc<std::sync::atomic::AtomicBool>,
    crashes: Arc<AtomicUsize>,
}

impl CrashKernel for FakeKernel {
    fn loaded(&self) -> Result<bool, Errno> {
        Ok(!self.unloaded.load(Ordering::SeqCst))
    }
    fn crash(&self) -> Errno {
        self.crashes.fetch_add(1, Ordering::SeqCst);
        Errno::EAGAIN
    }
}

fn device(path: &str, timeout: u64, script: Script) -> (Box<dyn Armed>, FakeIo) {
    let io = FakeIo::new(script);
    let want = Request {
        timeout: S(timeout),
        pretimeout: None,
        min_timeout: S(3),
    };
    let dog = Watchdog::program(Path::new(path), io.clone(), &want).unwrap();
    io.calls.lock().unwrap().clear();
    (Box::new(dog), io)
}

fn step(kernel: &FakeKernel) -> Crashdump {
    Crashdump::with_kernel(
        S(60),
        Box::new(kernel.clone()),
        vec!["/dev/watchdog0".into(), "/dev/watchdog1".into()],
        false,
    )
}

fn kmsg() -> (tempfile::NamedTempFile, KernelLog) {
    let f = tempfile::NamedTempFile::new().unwrap();
    let log = KernelLog::to_file(f.reopen().unwrap());
    (f, log)
}

#[test]
fn every_device_takes_the_crashdump_timeout_and_one_pet_then_the_kernel_crashes() {
    let kernel = FakeKernel::default();
    let (d0, io0) = device("/dev/watchdog0", 10, Script::default());
    let (d1, io1) = device("/dev/watchdog1", 20, Script::default());
    let mut devices = vec![d0, d1];
    let (f, log) = kmsg();
    let c = step(&kernel);
    c.run(&mut devices, &log);
    for io in [&io0, &io1] {
        assert_eq!(
            io.calls(),
            vec![Call::SetTimeout(60), Call::GetTimeout, Call::Keepalive]
        );
    }
    assert_eq!(kernel.crashes.load(Ordering::SeqCst), 1);
    let text = std::fs::read_to_string(f.path()).unwrap();
    assert!(
        text.starts_with("<2>wdfeed: CRASHDUMP every device now resets 60s after this pet; crashing into the dump kernel (sysrq c)\n"),
        "{text}"
    );
    // The fake returns from its crash: the step says the crash did not happen.
    assert_eq!(c.outcome(), Some(Outcome::CrashFailed(Errno::EAGAIN)));
    assert!(text.contains("the crash did not happen"), "{text}");
    assert!(
        c.report()[0].contains("the devices run with the crashdump-timeout 1m"),
        "{:?}",
        c.report()
    );
}

#[test]
fn a_crash_kernel_unloaded_since_start_up_falls_back_to_the_watchdog_touching_no_device() {
    let kernel = FakeKernel::default();
    kernel.unloaded.store(true, Ordering::SeqCst);
    let (d0, io0) = device("/dev/watchdog0", 10, Script::default());
    let mut devices = vec![d0];
    let (f, log) = kmsg();
    let c = step(&kernel);
    c.run(&mut devices, &log);
    assert!(io0.calls().is_empty(), "{:?}", io0.calls());
    assert_eq!(kernel.crashes.load(Ordering::SeqCst), 0);
    assert_eq!(c.outcome(), Some(Outcome::NotLoaded));
    let text = std::fs::read_to_string(f.path()).unwrap();
    assert!(
        text.starts_with("<2>wdfeed: CRASHDUMP no crash kernel is loaded any more"),
        "{text}"
    );
    let report = c.report().join("\n");
    assert!(
        report.contains("falling back to watchdog, no dump"),
        "{report}"
    );
}

#[test]
fn a_device_that_refuses_the_timeout_falls_back_to_the_watchdog_and_nothing_is_petted() {
    let kernel = FakeKernel::default();
    let (d0, io0) = device("/dev/watchdog0", 10, Script::default());
    let (d1, io1) = device("/dev/watchdog1", 10, Script::default());
    io1.script.lock().unwrap().set_timeout = Some(Err(Errno::EINVAL));
    let mut devices = vec![d0, d1];
    let (f, log) = kmsg();
    let c = step(&kernel);
    c.run(&mut devices, &log);
    // The second keeps counting from its last pet: its reset comes within the bound.
    assert_eq!(io1.calls(), vec![Call::SetTimeout(60)]);
    assert_eq!(io0.calls(), vec![Call::SetTimeout(60), Call::GetTimeout]);
    assert_eq!(kernel.crashes.load(Ordering::SeqCst), 0);
    assert_eq!(
        c.outcome(),
        Some(Outcome::Refused {
            device: 1,
            errno: Some(Errno::EINVAL),
            granted: None
        })
    );
    let text = std::fs::read_to_string(f.path()).unwrap();
    assert!(
        text.starts_with("<2>wdfeed: CRASHDUMP /dev/watchdog1 refused the crashdump-timeout 60s (Invalid argument): no dump"),
        "{text}"
    );
    let report = c.report().join("\n");
    assert!(
        report.contains("/dev/watchdog1 refused the crashdump-timeout 1m (Invalid argument): falling back to watchdog"),
        "{report}"
    );
}

#[test]
fn a_device_that_runs_with_another_timeout_gets_its_own_back() {
    let kernel = FakeKernel::default();
    let other = Script {
        get_timeout: Some(Ok(45)),
        ..Script::default()
    };
    let io = FakeIo::new(other);
    let want = Request {
        timeout: S(45),
        pretimeout: None,
        min_timeout: S(3),
    };
    let dog = Watchdog::program(Path::new("/dev/watchdog0"), io.clone(), &want).unwrap();
    io.calls.lock().unwrap().clear();
    let mut devices: Vec<Box<dyn Armed>> = vec![Box::new(dog)];
    let (_f, log) = kmsg();
    let c = step(&kernel);
    c.run(&mut devices, &log);
    assert_eq!(
        io.calls(),
        vec![
            Call::SetTimeout(60),
            Call::GetTimeout,
            Call::SetTimeout(45),
            Call::GetTimeout
        ]
    );
    assert_eq!(kernel.crashes.load(Ordering::SeqCst), 0);
    assert_eq!(
        c.outcome(),
        Some(Outcome::Refused {
            device: 0,
            errno: None,
            granted: Some(45)
        })
    );
}

#[test]
fn a_dry_run_only_says_it_would_crash() {
    let kernel = FakeKernel::default();
    let c = Crashdump::with_kernel(S(60), Box::new(kernel.clone()), vec![], true);
    let (f, log) = kmsg();
    c.run(&mut [], &log);
    assert_eq!(kernel.crashes.load(Ordering::SeqCst), 0);
    assert_eq!(std::fs::read_to_string(f.path()).unwrap(), "");
    assert!(
        c.report()[0].starts_with("would crash:"),
        "{:?}",
        c.report()
    );
}

/// A fixture root with `sys/kernel/kexec_crash_loaded` saying `loaded` and a plain file
/// standing for `proc/sysrq-trigger`.
fn fixture(loaded: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sys/kernel")).unwrap();
    std::fs::create_dir_all(dir.path().join("proc")).unwrap();
    std::fs::write(dir.path().join("sys/kernel/kexec_crash_loaded"), loaded).unwrap();
    std::fs::write(dir.path().join("proc/sysrq-trigger"), "").unwrap();
    dir
}

#[test]
fn start_up_refuses_a_node_without_a_crash_kernel_and_says_how_to_load_one() {
    let dir = fixture("0\n");
    let e = Sysrq::prepare(&Root::at(dir.path()), false).err().unwrap();
    assert!(
        e.contains("no crash kernel is loaded (/sys/kernel/kexec_crash_loaded is 0)"),
        "{e}"
    );
    assert!(
        e.contains("kdump-tools") && e.contains("crashkernel="),
        "{e}"
    );
    std::fs::remove_file(dir.path().join("sys/kernel/kexec_crash_loaded")).unwrap();
    let e = Sysrq::prepare(&Root::at(dir.path()), true).err().unwrap();
    assert!(e.contains("cannot load a crash kernel"), "{e}");
    let dir = fixture("1\n");
    std::fs::remove_file(dir.path().join("proc/sysrq-trigger")).unwrap();
    let e = Sysrq::prepare(&Root::at(dir.path()), false).err().unwrap();
    assert!(e.contains("no magic SysRq"), "{e}");
    // A dry run opens no sysrq-trigger.
    assert!(Sysrq::prepare(&Root::at(dir.path()), true).is_ok());
}

#[test]
fn the_real_kernel_files_are_read_and_written_as_prepared() {
    let dir = fixture("1\n");
    let prepared = Sysrq::prepare(&Root::at(dir.path()), false).unwrap();
    let (d0, io0) = device("/dev/watchdog0", 10, Script::default());
    let mut devices = vec![d0];
    let (_f, log) = kmsg();
    let c = Crashdump::new(S(60), prepared, vec!["/dev/watchdog0".into()], false);
    assert_eq!(c.watch(), None, "loaded at start-up: nothing to say");
    // Unloaded later (same file, rewritten in place): the status thread says so once, and
    // the step falls back without touching the device.
    std::fs::write(dir.path().join("sys/kernel/kexec_crash_loaded"), "0\n").unwrap();
    assert!(c.watch().unwrap().contains("unloaded"));
    assert_eq!(c.watch(), None, "said once");
    std::fs::write(dir.path().join("sys/kernel/kexec_crash_loaded"), "1\n").unwrap();
    assert!(c.watch().unwrap().contains("loaded again"));
    c.run(&mut devices, &log);
    // The fixture's sysrq-trigger is a plain file: the `c` lands there, nothing crashes.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("proc/sysrq-trigger")).unwrap(),
        "c"
    );
    assert_eq!(
        io0.calls(),
        vec![Call::SetTimeout(60), Call::GetTimeout, Call::Keepalive]
    );
    assert_eq!(c.outcome(), Some(Outcome::CrashFailed(Errno::EAGAIN)));
}

#[test]
fn the_step_allocates_nothing() {
    let dir = fixture("1\n");
    let prepared = Sysrq::prepare(&Root::at(dir.path()), false).unwrap();
    let (d0, io0) = device("/dev/watchdog0", 10, Script::default());
    let (d1, io1) = device("/dev/watchdog1", 10, Script::default());
    // The fake records each call: room for them now, so its log does not count.
    io0.calls.lock().unwrap().reserve(64);
    io1.calls.lock().unwrap().reserve(64);
    let mut devices = vec![d0, d1];
    let (f, log) = kmsg();
    let c = Crashdump::new(S(60), prepared, vec![], false);
    let ((), n) = crate::ffi::alloc_count::allocations(|| c.run(&mut devices, &log));
    assert_eq!(n, 0, "the crash step allocated");
    assert!(std::fs::read_to_string(f.path())
        .unwrap()
        .contains("CRASHDUMP every device"));
    // And each fallback: a device that refuses, a crash kernel gone.
    let again = fixture("1\n");
    let c = Crashdump::new(
        S(60),
        Sysrq::prepare(&Root::at(again.path()), false).unwrap(),
        vec![],
        false,
    );
    io1.script.lock().unwrap().set_timeout = Some(Err(Errno::EINVAL));
    let ((), n) = crate::ffi::alloc_count::allocations(|| c.run(&mut devices, &log));
    assert_eq!(n, 0, "the refused step allocated");
    assert!(matches!(
        c.outcome(),
        Some(Outcome::Refused { device: 1, .. })
    ));
    std::fs::write(again.path().join("sys/kernel/kexec_crash_loaded"), "0\n").unwrap();
    let c = Crashdump::new(
        S(60),
        Sysrq::prepare(&Root::at(fixture("1\n").path()), false).unwrap(),
        vec![],
        false,
    );
    let gone = fixture("1\n");
    let c2 = Crashdump::new(
        S(60),
        Sysrq::prepare(&Root::at(gone.path()), false).unwrap(),
        vec![],
        false,
    );
    drop(c);
    std::fs::write(gone.path().join("sys/kernel/kexec_crash_loaded"), "0\n").unwrap();
    let ((), n) = crate::ffi::alloc_count::allocations(|| c2.run(&mut devices, &log));
    assert_eq!(n, 0, "the unloaded step allocated");
    assert_eq!(c2.outcome(), Some(Outcome::NotLoaded));
}

#[test]
fn arming_shows_the_device_takes_the_crashdump_timeout_and_gives_its_own_back() {
    let io = FakeIo::new(Script::default());
    let want = Request {
        timeout: S(10),
        pretimeout: None,
        min_timeout: S(3),
    };
    let mut dog = Watchdog::program(Path::new("/dev/watchdog0"), io.clone(), &want).unwrap();
    io.calls.lock().unwrap().clear();
    try_timeout(&mut dog, S(60), Some(2046)).unwrap();
    assert_eq!(
        io.calls(),
        vec![
            Call::SetTimeout(60),
            Call::GetTimeout,
            Call::SetTimeout(10),
            Call::GetTimeout
        ]
    );
    io.script.lock().unwrap().set_timeout = Some(Err(Errno::EINVAL));
    let e = try_timeout(&mut dog, S(3000), Some(2046))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("cannot set the crashdump-timeout of watchdog /dev/watchdog0: Invalid argument: the driver refuses 50m (sysfs says its max_timeout is 2046s)"),
        "{e}"
    );
    assert!(e.contains("nothing was armed"), "{e}");
    io.script.lock().unwrap().set_timeout = None;
    io.script.lock().unwrap().get_timeout = Some(Ok(30));
    let e = try_timeout(&mut dog, S(60), None).unwrap_err().to_string();
    assert!(e.contains("asked for 1m, the driver runs with 30s"), "{e}");
}
