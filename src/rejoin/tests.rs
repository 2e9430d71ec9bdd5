//! The rejoin delay through real directories: every state the persistent record can be in,
//! a restart during the delay, `rejoin-now`, and directories that are missing or read-only.
//! The boot id and the clock are injected.

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::state::{self, Previous, RunState, StateRecord};
use super::*;

const BOOT_1: &str = "11111111-4f50-6172-8394-a5b6c7d8e9f0";
const BOOT_2: &str = "22222222-4f50-6172-8394-a5b6c7d8e9f0";
const B: Duration = Duration::from_secs(9);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn start(
    state_dir: &Path,
    run_dir: &Path,
    boot: &str,
    configured: Option<u64>,
    now: u64,
) -> Rejoin {
    Rejoin::start(
        state_dir.to_path_buf(),
        run_dir.to_path_buf(),
        StartUp {
            boot_id: boot,
            configured: configured.map(secs),
            current_bound: B,
            now: secs(now),
            causes: vec![],
            budget: budget::DEFAULT,
            kernel_hold: false,
            now_unix: 1_781_814_664,
            dry_run: false,
        },
    )
}

fn recorded(state_dir: &Path) -> StateRecord {
    match state::read(state_dir) {
        Previous::Record(r) => r,
        other => panic!("expected a record, got {other:?}"),
    }
}

/// A node's life: first boot armed then reset, second boot waits; a clean stop ends it.
#[test]
fn a_boot_after_an_armed_one_waits_and_one_after_a_clean_stop_does_not() {
    let state_dir = tempfile::tempdir().unwrap();
    let (run_1, run_2, run_3) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    // boot 1: no record, no delay; started, then armed with B = 12 s
    let r = start(state_dir.path(), run_1.path(), BOOT_1, None, 5);
    assert_eq!(r.shared.left(secs(5)), None);
    assert_eq!(recorded(state_dir.path()).state, RunState::Started);
    r.armed(secs(12));
    let rec = recorded(state_dir.path());
    assert_eq!(
        (rec.state, rec.bound, rec.rejoin_delay),
        (RunState::Armed, secs(12), secs(12))
    );
    assert_eq!(rec.boot, BOOT_1);
    // reset: boot 2 (a new tmpfs) waits the recorded 12 s from its start at 4 s
    let r = start(state_dir.path(), run_2.path(), BOOT_2, None, 4);
    assert_eq!(r.shared.left(secs(4)), Some(secs(12)));
    assert_eq!(r.shared.left(secs(15)), Some(secs(1)));
    assert_eq!(r.shared.left(secs(16)), None);
    assert!(
        r.shared.cause.contains("ended with a device armed"),
        "{}",
        r.shared.cause
    );
    r.armed(secs(12));
    r.stopped_cleanly(secs(12));
    assert_eq!(recorded(state_dir.path()).state, RunState::StoppedCleanly);
    // boot 3 after the clean stop: no delay
    let r = start(
        state_dir.path(),
        run_3.path(),
        "33333333-4f50-6172-8394-a5b6c7d8e9f0",
        None,
        4,
    );
    assert_eq!(r.shared.left(secs(4)), None);
}

#[test]
fn a_restart_during_the_delay_neither_restarts_nor_skips_it() {
    let state_dir = tempfile::tempdir().unwrap();
    let (run_1, run_2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    start(state_dir.path(), run_1.path(), BOOT_1, None, 5).armed(secs(20));
    let first = start(state_dir.path(), run_2.path(), BOOT_2, None, 3);
    assert_eq!(first.shared.left(secs(3)), Some(secs(20)));
    first.armed(secs(20));
    drop(first);
    // SIGKILLed at 10 s, restarted at 11 s in the same boot: the end stays at 23 s
    let again = start(state_dir.path(), run_2.path(), BOOT_2, None, 11);
    assert_eq!(again.shared.left(secs(11)), Some(secs(12)));
    // and after the end, a restart does not wait again
    let late = start(state_dir.path(), run_2.path(), BOOT_2, None, 30);
    assert_eq!(late.shared.left(secs(30)), None);
}

#[test]
fn rejoin_now_ends_the_delay_for_a_restart_too() {
    let state_dir = tempfile::tempdir().unwrap();
    let (run_1, run_2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    start(state_dir.path(), run_1.path(), BOOT_1, None, 5).armed(secs(20));
    let r = start(state_dir.path(), run_2.path(), BOOT_2, None, 3);
    assert!(r.release_now(secs(4)));
    assert_eq!(r.shared.left(secs(4)), None);
    assert!(!r.release_now(secs(5)), "nothing left to release");
    let again = start(state_dir.path(), run_2.path(), BOOT_2, None, 6);
    assert_eq!(again.shared.left(secs(6)), None);
}

#[test]
fn the_configured_delay_is_recorded_for_the_next_boot() {
    let state_dir = tempfile::tempdir().unwrap();
    let (run_1, run_2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    start(state_dir.path(), run_1.path(), BOOT_1, Some(40), 5).armed(secs(12));
    assert_eq!(recorded(state_dir.path()).rejoin_delay, secs(40));
    // the next boot's config says nothing: the delay of the config that was running
    let r = start(state_dir.path(), run_2.path(), BOOT_2, None, 2);
    assert_eq!(r.shared.left(secs(2)), Some(secs(40)));
}

#[test]
fn damaged_truncated_and_foreign_records_are_the_safe_case() {
    let state_dir = tempfile::tempdir().unwrap();
    let good = StateRecord {
        boot: BOOT_1.into(),
        state: RunState::StoppedCleanly,
        bound: secs(12),
        rejoin_delay: secs(12),
        ended: vec![],
        dumps: None,
    }
    .to_text();
    let path = state_dir.path().join(state::FILE_NAME);
    for bad in [
        good[..good.len() / 2].to_string(),
        "PK\u{3}\u{4} a zip file".to_string(),
        good.replace("stopped-cleanly", "paused"),
        good.replace("bound 12.000", "bound soon"),
        "x".repeat(5000),
    ] {
        fs::write(&path, &bad).unwrap();
        let run = tempfile::tempdir().unwrap();
        let r = start(state_dir.path(), run.path(), BOOT_2, None, 1);
        assert_eq!(r.shared.left(secs(1)), Some(B), "{bad:?}");
        assert!(
            r.shared.cause.contains(&path.display().to_string()),
            "{}",
            r.shared.cause
        );
    }
    fs::write(&path, &good).unwrap();
    let run = tempfile::tempdir().unwrap();
    assert_eq!(
        start(state_dir.path(), run.path(), BOOT_2, None, 1)
            .shared
            .left(secs(1)),
        None
    );
}

#[test]
fn a_missing_or_read_only_state_directory_is_no_crash() {
    let base = tempfile::tempdir().unwrap();
    let run = tempfile::tempdir().unwrap();
    let missing = base.path().join("nope");
    let r = start(&missing, run.path(), BOOT_1, None, 1);
    assert_eq!(r.shared.left(secs(1)), None);
    assert!(r.shared.cause.contains("unknown"), "{}", r.shared.cause);
    r.armed(secs(9)); // a warning, not a panic
    assert!(
        !missing.exists(),
        "wdfeed does not create the state directory"
    );

    // read-only, holding an armed record: the delay is still honoured
    let ro = base.path().join("ro");
    fs::create_dir(&ro).unwrap();
    start(&ro, run.path(), BOOT_1, None, 1).armed(secs(9));
    let mut perm = fs::metadata(&ro).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o555);
    fs::set_permissions(&ro, perm).unwrap();
    let run_2 = tempfile::tempdir().unwrap();
    let r = start(&ro, run_2.path(), BOOT_2, None, 1);
    if std::os::unix::fs::MetadataExt::uid(&fs::metadata("/proc/self").unwrap()) == 0 {
        // root writes through 0555: the record moved on to this boot
        assert_eq!(recorded(&ro).boot, BOOT_2);
    } else {
        assert_eq!(recorded(&ro).boot, BOOT_1, "nothing written");
    }
    assert_eq!(r.shared.left(secs(1)), Some(secs(9)));
}

#[test]
fn the_record_reads_back_and_refuses_a_non_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(state::read(dir.path()), Previous::NoRecord);
    let rec = StateRecord {
        boot: BOOT_1.into(),
        state: RunState::Armed,
        bound: Duration::from_millis(14_250),
        rejoin_delay: Duration::from_millis(500),
        ended: vec![
            budget::Ended::new(1_781_814_000, BOOT_2, "fenced: process heartbeat: gone"),
            budget::Ended::new(1_781_814_600, BOOT_1, "ended armed, no clean stop"),
        ],
        dumps: None,
    };
    state::store(dir.path(), &rec, state::next_seq());
    assert_eq!(state::read(dir.path()), Previous::Record(rec.clone()));
    // With fence.mode crashdump, where the dumps go, beside the row of fences.
    let rec = StateRecord {
        dumps: Some("/var/crash".into()),
        ..rec
    };
    state::store(dir.path(), &rec, state::next_seq());
    assert_eq!(state::read(dir.path()), Previous::Record(rec));
    assert!(!dir.path().join("state.tmp").exists());
    fs::remove_file(dir.path().join(state::FILE_NAME)).unwrap();
    fs::create_dir(dir.path().join(state::FILE_NAME)).unwrap();
    assert!(matches!(state::read(dir.path()), Previous::Damaged { .. }));
}

#[test]
fn a_dry_run_reads_and_writes_nothing() {
    let r = Rejoin::none();
    r.armed(secs(9));
    assert_eq!(r.shared.left(secs(0)), None);
    assert!(!r.release_now(secs(0)));
}

#[test]
fn rejoin_delay_is_read_from_the_config_with_its_position() {
    let base = "devices:\n  - path: /dev/watchdog0\n    timeout: 30s\n";
    let c = crate::config::parse(&format!("{base}rejoin-delay: 2m\n"), "w.yaml").unwrap();
    assert_eq!(c.rejoin_delay, Some(secs(120)));
    let c = crate::config::parse(&format!("{base}rejoin-delay: 0s\n"), "w.yaml").unwrap();
    assert_eq!(c.rejoin_delay, Some(Duration::ZERO));
    let c = crate::config::parse(base, "w.yaml").unwrap();
    assert_eq!(c.rejoin_delay, None);
    let e = crate::config::parse(&format!("{base}rejoin-delay: soon\n"), "w.yaml").unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("w.yaml:4:"), "{text}");
    assert!(text.contains("rejoin-delay"), "{text}");
}

/// `start` with the fence budget, the kernel word and the wall clock given.
fn start_with(
    state_dir: &Path,
    run_dir: &Path,
    boot: &str,
    now_unix: u64,
    kernel_hold: bool,
    dry_run: bool,
) -> Rejoin {
    Rejoin::start(
        state_dir.to_path_buf(),
        run_dir.to_path_buf(),
        StartUp {
            boot_id: boot,
            configured: Some(secs(5)),
            current_bound: B,
            now: secs(3),
            causes: vec![],
            budget: budget::DEFAULT,
            kernel_hold,
            now_unix,
            dry_run,
        },
    )
}

fn boot_id(n: u32) -> String {
    format!("{n:08x}-4f50-6172-8394-a5b6c7d8e9f0")
}

/// Boots 1 to 3 arm and end armed (two of them record their fence): boot 4 holds READY=1
/// until `rejoin-now`, which ends the row; a restart while held holds again, one after the
/// release does not.
#[test]
fn the_fourth_boot_after_three_that_ended_armed_holds_until_rejoin_now() {
    let state_dir = tempfile::tempdir().unwrap();
    // the fenced wdfeed records its fence at the wall clock's now
    let t0 = budget::now_unix();
    for n in 1..=3u32 {
        let run = tempfile::tempdir().unwrap();
        let r = start_with(
            state_dir.path(),
            run.path(),
            &boot_id(n),
            t0 + u64::from(n) * 120,
            false,
            false,
        );
        assert!(r.shared.held().is_none(), "boot {n} does not hold");
        r.armed(secs(9));
        if n != 2 {
            r.fenced(secs(9), "process heartbeat", "heartbeat pid 7 stopped (T)");
            // the write runs on a thread of its own
            for _ in 0..200 {
                if recorded(state_dir.path()).state == RunState::Fenced {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            assert_eq!(recorded(state_dir.path()).state, RunState::Fenced);
        }
    }
    let rec = recorded(state_dir.path());
    assert_eq!(rec.ended.len(), 3, "{rec:?}");
    assert!(
        rec.ended[0].what.starts_with("fenced: process heartbeat"),
        "{rec:?}"
    );
    assert!(
        rec.ended[1].what.contains("found at the next start"),
        "boot 2 left no line: {rec:?}"
    );
    let run_4 = tempfile::tempdir().unwrap();
    let r = start_with(
        state_dir.path(),
        run_4.path(),
        &boot_id(4),
        t0 + 600,
        false,
        false,
    );
    let (by, why) = r.shared.held().expect("boot 4 holds READY=1");
    assert_eq!(by, hold::HoldBy::Budget);
    assert!(
        why.contains("3 boots in a row ended armed within 1h"),
        "{why}"
    );
    let first = format!(
        "{} (fenced: process heartbeat: heartbeat pid 7 stopped (T))",
        budget::utc(rec.ended[0].at)
    );
    assert!(why.contains(&first), "{why}");
    assert!(
        why.contains("found at the next start"),
        "boot 2 ended armed without its line: {why}"
    );
    assert_eq!(r.shared.row.len(), 3);
    assert_eq!(
        r.shared.left(secs(100)),
        None,
        "the delay is over, the hold is not"
    );
    // a restart while held holds again
    drop(r);
    let r = start_with(
        state_dir.path(),
        run_4.path(),
        &boot_id(4),
        t0 + 700,
        false,
        false,
    );
    assert!(r.shared.held().is_some(), "held again after a restart");
    r.armed(secs(9));
    assert!(r.release_now(secs(10)));
    assert!(r.shared.held().is_none());
    assert!(
        recorded(state_dir.path()).ended.is_empty(),
        "rejoin-now ends the row"
    );
    let r = start_with(
        state_dir.path(),
        run_4.path(),
        &boot_id(4),
        t0 + 800,
        false,
        false,
    );
    assert!(
        r.shared.held().is_none(),
        "released for the rest of this boot"
    );
    // boot 5 after one more fence: one in the row, no hold
    r.armed(secs(9));
    let run_5 = tempfile::tempdir().unwrap();
    let r = start_with(
        state_dir.path(),
        run_5.path(),
        &boot_id(5),
        t0 + 900,
        false,
        false,
    );
    assert!(r.shared.held().is_none());
    assert_eq!(r.shared.row.len(), 1);
}

#[test]
fn fences_outside_the_window_and_a_clean_stop_do_not_count() {
    let state_dir = tempfile::tempdir().unwrap();
    let t0 = 1_781_814_664;
    for n in 1..=3u32 {
        let run = tempfile::tempdir().unwrap();
        // a boot every 40 minutes: the hour never holds three
        let r = start_with(
            state_dir.path(),
            run.path(),
            &boot_id(n),
            t0 + u64::from(n) * 2400,
            false,
            false,
        );
        assert!(r.shared.held().is_none());
        r.armed(secs(9));
    }
    let run = tempfile::tempdir().unwrap();
    let r = start_with(
        state_dir.path(),
        run.path(),
        &boot_id(4),
        t0 + 4 * 2400,
        false,
        false,
    );
    assert!(r.shared.held().is_none(), "{:?}", r.shared.row);
    assert_eq!(r.shared.row.len(), 2);
    r.armed(secs(9));
    r.stopped_cleanly(secs(9));
    let run = tempfile::tempdir().unwrap();
    let r = start_with(
        state_dir.path(),
        run.path(),
        &boot_id(5),
        t0 + 4 * 2400 + 60,
        false,
        false,
    );
    assert!(r.shared.row.is_empty(), "a clean stop ends the row");
}

#[test]
fn the_kernel_word_holds_every_start_of_the_boot_until_released() {
    let state_dir = tempfile::tempdir().unwrap();
    let run = tempfile::tempdir().unwrap();
    let r = start_with(state_dir.path(), run.path(), BOOT_1, 1, true, false);
    let (by, why) = r.shared.held().unwrap();
    assert_eq!(by, hold::HoldBy::KernelWord);
    assert!(why.contains("wdfeed.hold"), "{why}");
    assert!(r.release_now(secs(4)));
    let again = start_with(state_dir.path(), run.path(), BOOT_1, 2, true, false);
    assert!(again.shared.held().is_none(), "released for this boot");
    let next_boot = tempfile::tempdir().unwrap();
    let r = start_with(state_dir.path(), next_boot.path(), BOOT_2, 3, true, false);
    assert!(
        r.shared.held().is_some(),
        "a new boot with the word holds again"
    );
}

#[test]
fn a_dry_run_holds_as_a_real_run_would_and_writes_nothing() {
    let state_dir = tempfile::tempdir().unwrap();
    let t0 = 1_781_814_664;
    let rec = StateRecord {
        boot: BOOT_1.into(),
        state: RunState::Armed,
        bound: secs(9),
        rejoin_delay: secs(9),
        ended: (0..2u32)
            .map(|i| {
                budget::Ended::new(
                    t0 - 100 * u64::from(i),
                    &boot_id(10 + i),
                    "fenced: writable /: read-only",
                )
            })
            .collect(),
        dumps: None,
    };
    state::store(state_dir.path(), &rec, state::next_seq());
    let run = tempfile::tempdir().unwrap();
    let r = start_with(state_dir.path(), run.path(), BOOT_2, t0 + 10, false, true);
    assert!(matches!(r.shared.held(), Some((hold::HoldBy::Budget, _))));
    assert_eq!(r.shared.left(secs(3)), None, "a dry run waits no delay");
    r.armed(secs(9));
    assert!(r.release_now(secs(4)));
    assert_eq!(recorded(state_dir.path()), rec, "the record is untouched");
    assert_eq!(
        fs::read_dir(run.path()).unwrap().count(),
        0,
        "nothing on tmpfs"
    );
}

#[test]
fn a_boot_after_a_crashdump_fence_names_the_dump_its_crash_kernel_saved() {
    let state_dir = tempfile::tempdir().unwrap();
    let crash = tempfile::tempdir().unwrap();
    let (run_1, run_2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // boot 1 (fence.mode crashdump): armed, and the record says where dumps go.
    start(state_dir.path(), run_1.path(), BOOT_1, None, 5)
        .recording_dumps(Some(crash.path().to_path_buf()))
        .armed(B);
    assert_eq!(
        recorded(state_dir.path()).dumps.as_deref(),
        Some(crash.path())
    );
    // The dump kernel saves, as kdump-tools lays it out.
    let d = crash.path().join("202512072031");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("dump.202512072031"), vec![0u8; 1 << 20]).unwrap();
    fs::write(
        d.join("dmesg.202512072031"),
        "[   14.250001] wdfeed: FENCE check=process fakehb evidence=stopped bound=45.0s mode=crashdump\n",
    )
    .unwrap();
    // boot 2: named, whatever the config of boot 2 says.
    let r = start(state_dir.path(), run_2.path(), BOOT_2, None, 5);
    let dump = r.shared.previous_dump.as_ref().expect("the dump is named");
    assert_eq!(dump.path, d.join("dump.202512072031"));
    assert_eq!(dump.fence.as_ref().unwrap().mode, "crashdump");
    assert!(dump
        .describe()
        .starts_with("the previous boot was fenced (crashdump) at 14.3 s after it started"));
    // A restart in boot 2 reads a record of boot 2, and what the first start kept on tmpfs.
    let again = start(state_dir.path(), run_2.path(), BOOT_2, None, 6);
    assert_eq!(again.shared.previous_dump.as_ref(), Some(dump));
    // A third boot (a clean one) names nothing, kept file or not.
    let run_3 = tempfile::tempdir().unwrap();
    let boot_3 = "33333333-4f50-6172-8394-a5b6c7d8e9f0";
    let third = start(state_dir.path(), run_3.path(), boot_3, None, 5);
    assert_eq!(third.shared.previous_dump, None);
    assert_eq!(
        dump::kept(run_2.path(), boot_3),
        None,
        "kept for boot 2 only"
    );
}
