//! `fence.mode: crashdump` through the binary, against fixture roots: what `validate` says,
//! the start-up refusal without a crash kernel, and a dry run that would crash. No test here
//! opens a device or writes the host's sysrq-trigger.

mod util;

use std::time::Duration;

use nix::libc::SIGTERM;
use util::*;

fn crashdump_config() -> String {
    fast_config("").replace(
        "fence:\n",
        "fence:\n  mode: crashdump\n  crashdump-timeout: 40s\n",
    )
}

#[test]
fn validate_prints_the_crashdump_term_and_the_advice_from_the_larger_bound() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.yaml");
    std::fs::write(&p, crashdump_config()).unwrap();
    let o = run(&[
        "--root",
        dir.path().to_str().unwrap(),
        "validate",
        p.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    // detection (1s + 2s) + interval 1s + 40s for a device not identified
    assert!(out.contains("fence bound: 44.0 s\n"), "{out}");
    assert!(
        out.contains("crashdump: the fence pets once with crashdump-timeout 40s"),
        "{out}"
    );
    assert!(out.contains("fencing-watchdog-timeout=44s"), "{out}");
}

#[test]
fn validate_names_a_crashdump_timeout_below_the_device_timeout_and_one_without_a_unit() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.yaml");
    std::fs::write(&p, crashdump_config().replace("40s", "8s")).unwrap();
    let o = run(&["validate", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let file = p.display().to_string();
    assert!(
        stderr(&o).contains(&format!(
            "{file}:7:3: `fence.crashdump-timeout`: 8s is not longer than the timeout 10s of devices[0]"
        )),
        "{}",
        stderr(&o)
    );
    std::fs::write(&p, crashdump_config().replace("40s", "40")).unwrap();
    let o = run(&["validate", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!(
            "{file}:7:22: `fence.crashdump-timeout`: `40` has no unit: write `40s`"
        )),
        "{}",
        stderr(&o)
    );
}

#[test]
fn run_refuses_crashdump_without_a_loaded_crash_kernel_and_arms_nothing() {
    let fx = FixtureRoot::new();
    fx.write("sys/kernel/kexec_crash_loaded", "0\n");
    let cfg = fx.write("w.yaml", &crashdump_config());
    // Not a dry run: the refusal comes before any device is opened.
    let mut d = fx.daemon(&cfg, false);
    assert_eq!(
        d.wait(Duration::from_secs(20)),
        Some(1),
        "{}",
        d.transcript()
    );
    let text = d.transcript();
    assert!(
        text.contains("no crash kernel is loaded (/sys/kernel/kexec_crash_loaded is 0)"),
        "{text}"
    );
    assert!(text.contains("apt install kdump-tools"), "{text}");
    assert!(text.contains("nothing was armed"), "{text}");
    assert!(!text.contains("armed fence_bound_s"), "{text}");
}

#[test]
fn a_dry_run_in_crashdump_mode_says_it_would_crash() {
    let fx = FixtureRoot::new();
    fx.write("sys/kernel/kexec_crash_loaded", "1\n");
    let cfg = fx.write("w.yaml", &crashdump_config());
    let mut d = fx.daemon(&cfg, true);
    let armed = d
        .wait_for("would arm", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    assert!(armed.contains("fence_bound_s=44.0"), "{armed}");
    fx.write("proc/1/mountinfo", MOUNTINFO_RO);
    let fence = d
        .wait_for("would fence", Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    assert!(fence.contains("mode=crashdump"), "{fence}");
    let crash = d
        .wait_for("would crash", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    assert!(
        crash.contains("every device's timeout to 40s (read back), one pet, then sysrq c"),
        "{crash}"
    );
    // An unloaded crash kernel is news for the log, fenced or not.
    fx.write("sys/kernel/kexec_crash_loaded", "0\n");
    d.signal(SIGTERM);
    assert_eq!(
        d.wait(Duration::from_secs(10)),
        Some(0),
        "{}",
        d.transcript()
    );
}

#[test]
fn the_status_thread_says_when_the_crash_kernel_is_unloaded() {
    let fx = FixtureRoot::new();
    fx.write("sys/kernel/kexec_crash_loaded", "1\n");
    let cfg = fx.write("w.yaml", &crashdump_config());
    let mut d = fx.daemon(&cfg, true);
    d.wait_for("would pet", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    // Rewritten in place, as sysfs changes under an open descriptor.
    std::fs::write(fx.path().join("sys/kernel/kexec_crash_loaded"), "0\n").unwrap();
    d.wait_for("the crash kernel was unloaded", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    std::fs::write(fx.path().join("sys/kernel/kexec_crash_loaded"), "1\n").unwrap();
    d.wait_for("a crash kernel is loaded again", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    d.signal(SIGTERM);
    assert_eq!(
        d.wait(Duration::from_secs(10)),
        Some(0),
        "{}",
        d.transcript()
    );
}

#[test]
fn run_arms_nothing_in_a_dump_kernel() {
    let fx = FixtureRoot::new();
    fx.write("proc/vmcore", "");
    let cfg = fx.write("w.yaml", &fast_config(""));
    let mut d = fx.daemon(&cfg, false);
    assert_eq!(
        d.wait(Duration::from_secs(20)),
        Some(1),
        "{}",
        d.transcript()
    );
    let text = d.transcript();
    assert!(
        text.contains("this is a dump kernel (/proc/vmcore exists): wdfeed arms nothing here"),
        "{text}"
    );
}

#[test]
fn info_prints_the_crashdump_term_with_the_drivers_reset_time() {
    let fx = FixtureRoot::new();
    for (attr, v) in [
        ("identity", "iTCO_wdt"),
        ("state", "active"),
        ("timeout", "10"),
        ("bootstatus", "0"),
        ("nowayout", "0"),
        ("options", "0x8180"),
    ] {
        fx.write(
            &format!("sys/class/watchdog/watchdog0/{attr}"),
            &format!("{v}\n"),
        );
    }
    let cfg = fx.write("w.yaml", &crashdump_config());
    let o = run(&[
        "--root",
        &fx.root_arg(),
        "info",
        "-c",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    // detection (every 1s + deadline 2s) + interval 1s + iTCO's two expiries of the
    // crashdump timeout in 0.6 s ticks (floor(40 / 0.6) x 0.6 = 39.6 s, twice: 79.2 s)
    assert!(out.contains("fence bound: 83.2 s"), "{out}");
    assert!(
        out.contains("/dev/watchdog0 resets a dump kernel that hangs 79.2s after that pet"),
        "{out}"
    );
    assert!(out.contains("fencing-watchdog-timeout=84s"), "{out}");
}

#[test]
fn the_doctor_holds_heartbeats_deadtime_to_the_bound_with_the_dump() {
    let n = util::doctor::Node::new();
    n.write(
        "watchdog.yaml",
        &util::doctor::CONFIG.replace(
            "fence:\n",
            "fence:\n  mode: crashdump\n  crashdump-timeout: 40s\n",
        ),
    );
    // heartbeat's default deadtime of 30 s was enough for B = 13 s in `mode: watchdog`;
    // with the dump, B = detection 3 s + interval 1 s + i6300esb's crashdump timeout 40 s.
    n.write("etc/ha.d/ha.cf", "keepalive 1\n");
    let out = stdout(&n.doctor());
    assert!(
        out.contains(
            "warn  heartbeat: deadtime 30s (heartbeat's default) is not longer than wdfeed's \
             fence bound 44.0 s"
        ),
        "{out}"
    );
}
