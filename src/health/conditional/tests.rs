use std::cell::Cell;
use std::net::IpAddr;

use super::*;
use crate::health::checks::parse_settings;
use crate::health::condition::AddressSource;

const S: fn(u64) -> Duration = Duration::from_secs;

/// A node whose memory check passes with `available` kB and whose /srv may be mounted.
fn node(available_kb: u64, srv_mounted: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc/1")).unwrap();
    set(dir.path(), available_kb, srv_mounted);
    dir
}

fn set(base: &std::path::Path, available_kb: u64, srv_mounted: bool) {
    std::fs::write(
        base.join("proc/meminfo"),
        format!("MemTotal: 4000000 kB\nMemAvailable: {available_kb} kB\n"),
    )
    .unwrap();
    let mut mi = String::from("27 1 254:1 / / rw - ext4 /dev/vda1 rw\n");
    if srv_mounted {
        mi.push_str("40 27 254:16 / /srv rw - ext4 /dev/vdb rw\n");
    }
    std::fs::write(base.join("proc/1/mountinfo"), mi).unwrap();
}

fn memory_check() -> CheckSettings {
    parse_settings(
        "memory",
        serde_yaml::from_str("min-available: 1000000kB").unwrap(),
    )
    .unwrap()
}

#[test]
fn idle_while_unmounted_watched_while_mounted_idle_again_after_unmount() {
    let dir = node(500, false);
    let root = Root::at(dir.path());
    let mut c = Conditional::new(Condition::Mounted("/srv".into()), memory_check(), &root);
    assert_eq!(c.condition().as_deref(), Some("mounted /srv"));
    // Idle: healthy (the lease is held) though memory is short, and it says why.
    let v = c.run(S(1));
    assert_eq!(v, Verdict::idle("/srv is not mounted"));
    assert!(c.active.is_none());
    // Mounted: the check runs, on what is there now.
    set(dir.path(), 500, true);
    let v = c.run(S(2));
    assert!(!v.healthy && !v.idle, "{v:?}");
    assert!(v.evidence.contains("below min-available"), "{v:?}");
    set(dir.path(), 2_000_000, true);
    let v = c.run(S(3));
    assert!(v.healthy && !v.idle, "{v:?}");
    assert!(c.active.is_some());
    // Unmounted again: idle, and the check is dropped.
    set(dir.path(), 500, false);
    assert!(c.run(S(4)).idle);
    assert!(c.active.is_none());
}

thread_local! {
    static READS: Cell<u32> = const { Cell::new(0) };
}

/// The address is held at the first reading of each run pair and gone at the second: the
/// address was removed during the run.
fn held_then_gone() -> Result<Vec<(String, IpAddr, bool)>, String> {
    let n = READS.with(|r| {
        r.set(r.get() + 1);
        r.get()
    });
    let addr: IpAddr = "192.0.2.10".parse().unwrap();
    Ok(if n % 2 == 1 {
        vec![("eth0".into(), addr, true)]
    } else {
        vec![]
    })
}

fn always_held() -> Result<Vec<(String, IpAddr, bool)>, String> {
    Ok(vec![("eth0".into(), "192.0.2.10".parse().unwrap(), true)])
}

fn unreadable() -> Result<Vec<(String, IpAddr, bool)>, String> {
    Err("cannot list the interfaces' addresses: EPERM".into())
}

fn with(source: AddressSource, root: &Root) -> Conditional {
    let cond = Condition::Address("192.0.2.10".parse().unwrap());
    Conditional::watching(
        ConditionWatch::with_addresses(cond, root, source),
        memory_check(),
        root,
    )
}

#[test]
fn a_failure_counts_only_if_the_condition_still_holds_after_it() {
    let dir = node(500, false);
    let root = Root::at(dir.path());
    READS.with(|r| r.set(0));
    let v = with(held_then_gone, &root).run(S(1));
    assert!(v.healthy && v.idle, "{v:?}");
    assert!(
        v.evidence.starts_with(
            "192.0.2.10 is not on any interface here (it changed during a run that failed with `MemAvailable"
        ),
        "{v:?}"
    );
    let v = with(always_held, &root).run(S(1));
    assert!(
        !v.healthy && !v.idle,
        "still held: the failure counts: {v:?}"
    );
}

#[test]
fn a_condition_that_cannot_be_read_fails_the_run() {
    let dir = node(2_000_000, false);
    let root = Root::at(dir.path());
    let v = with(unreadable, &root).run(S(1));
    assert_eq!(
        v,
        Verdict::unhealthy(
            "cannot tell whether the condition `address 192.0.2.10` holds: cannot list the \
             interfaces' addresses: EPERM"
        )
    );
}

#[test]
fn a_check_that_cannot_be_prepared_when_its_condition_turns_true_fails() {
    let dir = node(2_000_000, true);
    let root = Root::at(dir.path());
    let writable = parse_settings(
        "writable",
        serde_yaml::from_str("mounts: [/elsewhere]").unwrap(),
    )
    .unwrap();
    let mut c = Conditional::new(Condition::Mounted("/srv".into()), writable, &root);
    let v = c.run(S(1));
    assert!(!v.healthy, "{v:?}");
    assert!(
        v.evidence.starts_with("cannot prepare the check: "),
        "{v:?}"
    );
}
