//! The pause's bookkeeping on a real tmpfs: start, refusals that change nothing, resume,
//! expiry, a restart that takes the pause up with its end unchanged, and revocation held off
//! while it lasts.

use super::*;

const S: fn(u64) -> Duration = Duration::from_secs;
const BOOT: &str = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";

struct Rig {
    book: PauseBook,
    operator: Arc<Operator>,
    leases: Arc<LeaseTable>,
    dir: tempfile::TempDir,
}

fn rig() -> Rig {
    let dir = tempfile::Builder::new()
        .prefix("wdfeed-pause-")
        .tempdir_in("/dev/shm")
        .unwrap();
    rig_in(dir)
}

fn rig_in(dir: tempfile::TempDir) -> Rig {
    let operator = Arc::new(Operator::default());
    let leases = Arc::new(LeaseTable::new(1));
    leases.renew(0, S(130));
    leases.allow_revocation();
    let handle =
        CheckHandle::failed_for_test("process heartbeat", "heartbeat pid 7 stopped (T)", S(99));
    let book = PauseBook::new(
        Arc::clone(&operator),
        Arc::clone(&leases),
        vec![handle],
        S(3600),
        dir.path(),
        Some(BOOT.into()),
    );
    Rig {
        book,
        operator,
        leases,
        dir,
    }
}

impl Rig {
    fn file(&self) -> std::path::PathBuf {
        self.dir.path().join(FILE_NAME)
    }
}

#[test]
fn a_pause_holds_revocation_off_until_resume() {
    let r = rig();
    let p = r
        .book
        .start(S(100), S(600), 0, 42, "heartbeat upgrade")
        .unwrap();
    assert_eq!((p.since, p.until, p.uid, p.pid), (S(100), S(700), 0, 42));
    assert!(r.operator.paused_at(S(699)));
    assert!(
        !r.leases.revoke(0),
        "a failing check does not revoke during a pause"
    );
    let s = r.book.status(S(160)).unwrap();
    assert_eq!((s.uid, s.pid, s.left_s), (0, 42, 540.0));
    assert_eq!(s.reason, "heartbeat upgrade");
    assert!(fs::read_to_string(r.file())
        .unwrap()
        .contains("until 700.000"));
    assert!(r.book.resume(S(200), 0, 43).is_some());
    assert!(!r.operator.paused_at(S(200)));
    assert!(r.book.status(S(200)).is_none());
    assert!(!r.file().exists(), "resume removes the file");
    assert!(r.leases.revoke(0), "revocation is back");
    assert!(
        r.book.resume(S(201), 0, 43).is_none(),
        "nothing left to end"
    );
}

#[test]
fn bad_requests_and_an_unhealthy_node_change_nothing() {
    let r = rig();
    for (len, reason, says) in [
        (S(0), "x", "0 ends before it starts"),
        (S(3601), "x", "over max-pause (1h)"),
        (S(60), "", "empty"),
        (S(60), "two\nlines", "control character"),
    ] {
        match r.book.start(S(100), len, 0, 1, reason) {
            Err(Refusal::Bad(why)) => assert!(why.contains(says), "{why}"),
            other => panic!("{len:?} {reason:?}: {other:?}"),
        }
    }
    // the lease ran out at 130: the node is unhealthy now, a pause would hide that
    match r.book.start(S(131), S(60), 0, 1, "too late") {
        Err(Refusal::Refused(why)) => {
            assert!(
                why.contains("check process heartbeat holds no valid lease"),
                "{why}"
            );
            assert!(why.contains("heartbeat pid 7 stopped (T)"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!r.operator.paused_at(S(131)));
    assert!(!r.file().exists());
    assert!(r.leases.revoke(0), "revocation is as it was");
}

#[test]
fn the_end_is_kept_on_tmpfs_and_a_restart_takes_it_up_unchanged() {
    let r = rig();
    r.book
        .start(S(100), S(600), 0, 42, "heartbeat upgrade")
        .unwrap();
    let dir = r.dir;
    // a new wdfeed in the same boot, 50 s later
    let again = rig_in(dir);
    again.book.restore(S(150));
    assert!(again.operator.paused_at(S(699)));
    assert!(
        !again.operator.paused_at(S(700)),
        "not extended by the restart"
    );
    assert!(!again.leases.revoke(0));
    assert_eq!(again.book.status(S(150)).unwrap().left_s, 550.0);
    // one restarted after the end finds it over, and removes it
    let late = rig_in(again.dir);
    late.book.restore(S(800));
    assert!(!late.operator.paused_at(S(800)));
    assert!(!late.file().exists());
}

#[test]
fn another_boot_s_or_a_damaged_pause_is_no_pause() {
    let r = rig();
    fs::write(
        r.file(),
        "wdfeed pause 1\nboot ffffffff-4f50-6172-8394-a5b6c7d8e9f0\nsince 1\nuntil 9999\nuid 0\npid 1\nreason x\n",
    )
    .unwrap();
    r.book.restore(S(100));
    assert!(!r.operator.paused_at(S(100)));
    assert!(!r.file().exists());
    fs::write(r.file(), "wdfeed pause 1\nboot garbage").unwrap();
    r.book.restore(S(100));
    assert!(!r.operator.paused_at(S(100)));
}

#[test]
fn expiry_ends_the_pause_and_brings_revocation_back() {
    let r = rig();
    r.book.start(S(100), S(10), 0, 42, "short").unwrap();
    assert_eq!(r.book.expire(S(105)), Some(S(110)), "still on");
    assert_eq!(r.book.expire(S(110)), None);
    assert!(r.book.status(S(110)).is_none());
    assert!(!r.file().exists());
    assert!(r.leases.revoke(0));
    assert_eq!(
        r.operator.pause_ended_before(S(111)),
        Some(S(1)),
        "the end is remembered for the fence"
    );
}

#[test]
fn a_restored_pause_ends_from_the_status_thread_too() {
    let r = rig();
    r.book.start(S(100), S(60), 0, 42, "upgrade").unwrap();
    // A restarted wdfeed takes the pause up; its control thread never runs (no socket):
    // the status thread's round ends the pause and brings revocation back.
    let again = rig_in(r.dir);
    again.book.restore(S(120));
    assert!(!again.leases.revoke(0), "held off during the pause");
    again.book.expire_if_free(S(150));
    assert!(!again.leases.revoke(0), "not over yet");
    again.book.expire_if_free(S(160));
    assert!(again.leases.revoke(0), "revocation back at the end");
    // While the control thread holds the bookkeeping the status thread does not wait.
    let r = rig();
    r.book.start(S(100), S(10), 0, 42, "short").unwrap();
    let held = r.book.lock_for_test();
    r.book.expire_if_free(S(200));
    drop(held);
    assert!(!r.leases.revoke(0), "skipped this round, not waited");
}

#[test]
fn a_new_pause_replaces_the_one_in_progress_and_keeps_its_start() {
    let r = rig();
    r.book.start(S(100), S(60), 0, 42, "first").unwrap();
    let p = r.book.start(S(120), S(600), 0, 43, "longer").unwrap();
    assert_eq!((p.since, p.until), (S(100), S(720)));
    assert_eq!(r.book.status(S(130)).unwrap().reason, "longer");
}
