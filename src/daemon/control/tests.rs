//! The control thread on a real socket: root's requests served, anyone else refused by
//! SO_PEERCRED, stale and malformed requests dropped, a flood that fences nothing, and a
//! socket that only root can replace.

use std::os::unix::fs::PermissionsExt;
use std::sync::mpsc;

use super::*;
use crate::fence::{KernelLog, KillList, Plan};
use crate::health::lease::LeaseTable;
use crate::system::Root;
use crate::time::FakeClock;

const S: fn(u64) -> Duration = Duration::from_secs;

struct Rig {
    dir: tempfile::TempDir,
    operator: Arc<Operator>,
    latch: Arc<Latch>,
    leases: Arc<LeaseTable>,
    feeder_wake: Arc<Stopper>,
    stop: Arc<Stopper>,
    control: Control,
    clock: Arc<FakeClock>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop.stop();
        self.control.remove();
    }
}

fn rig() -> Rig {
    let dir = tempfile::Builder::new()
        .prefix("wdfeed-control-")
        .tempdir_in("/dev/shm")
        .unwrap();
    let operator = Arc::new(Operator::default());
    let latch = Arc::new(Latch::new());
    let leases = Arc::new(LeaseTable::new(1));
    leases.renew(0, S(10_000));
    leases.allow_revocation();
    let clock = Arc::new(FakeClock::new(S(100)));
    let pause = Arc::new(PauseBook::new(
        Arc::clone(&operator),
        Arc::clone(&leases),
        vec![],
        S(3600),
        dir.path(),
        Some("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0".into()),
    ));
    let fencer = Arc::new(Fencer::new(
        Plan {
            mode: crate::config::FenceMode::Watchdog,
            dry_run: true,
            bound: "9.0".into(),
        },
        Arc::new(KillList::new(vec![], Root::host())),
        KernelLog::default(),
        vec![],
    ));
    let feeder_wake = Arc::new(Stopper::default());
    let stop = Arc::new(Stopper::default());
    let control = Control::start(
        dir.path(),
        Served {
            operator: Arc::clone(&operator),
            pause,
            latch: Arc::clone(&latch),
            fencer,
            feeder_wake: Arc::clone(&feeder_wake),
            clock: Arc::clone(&clock) as Arc<dyn Clock>,
            dry_run: true,
            interval: S(1),
        },
        Arc::clone(&stop),
    )
    .expect("the socket is made");
    Rig {
        dir,
        operator,
        latch,
        leases,
        feeder_wake,
        stop,
        control,
        clock,
    }
}

impl Rig {
    fn socket(&self) -> std::path::PathBuf {
        self.dir.path().join(wire::SOCKET_NAME)
    }

    fn request(&self, ask: Ask) -> String {
        Request {
            sent: self.clock.now(),
            ask,
        }
        .to_line()
    }

    /// Sends `line` and returns the answer line.
    fn send(&self, line: &str) -> String {
        send_to(&self.socket(), line)
    }
}

fn send_to(path: &Path, line: &str) -> String {
    let stream = UnixStream::connect(path).unwrap();
    stream.set_read_timeout(Some(S(10))).unwrap();
    // A refused sender may find the daemon's end already closed (it answers and hangs up
    // before reading): the answer is still there to read.
    let _ = (&stream).write_all(line.as_bytes());
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer).unwrap();
    answer
}

fn fence_ask() -> Ask {
    Ask::Fence {
        reason: "demote of r0 failed".into(),
    }
}

#[test]
fn root_asks_a_fence_and_the_feeder_is_woken_for_it() {
    let r = rig();
    let mode = std::fs::metadata(r.socket()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "root's alone");
    // The feeder: woken by the nudge, it fences (closes the latch).
    let (wake, latch) = (Arc::clone(&r.feeder_wake), Arc::clone(&r.latch));
    let feeder = std::thread::spawn(move || {
        let woken = !wake.sleep(S(20));
        latch.close();
        woken
    });
    let answer = r.send(&r.request(fence_ask()));
    assert!(
        feeder.join().unwrap(),
        "the feeder was nudged, not left to its tick"
    );
    assert!(
        answer.starts_with("ok\tdry run: would fence now (check=operator)"),
        "{answer}"
    );
    assert!(r.operator.fence_asked());
    let mut l = crate::fence::Line::<300>::default();
    r.operator.write_fence_reason(&mut l).unwrap();
    let me = std::process::id();
    assert_eq!(
        l.as_str(),
        format!("demote of r0 failed (wdfeed fence, uid 0, pid {me})")
    );
    let answer = r.send(&r.request(fence_ask()));
    assert!(answer.starts_with("ok\talready fenced"), "{answer}");
    let answer = r.send(&r.request(Ask::Pause {
        length: S(60),
        reason: "x".into(),
    }));
    assert!(answer.starts_with("refused\tfenced"), "{answer}");
}

#[test]
fn pause_and_resume_over_the_socket() {
    let r = rig();
    let answer = r.send(&r.request(Ask::Pause {
        length: S(600),
        reason: "heartbeat upgrade".into(),
    }));
    assert!(answer.starts_with("ok\tpaused for 10m"), "{answer}");
    assert!(r.operator.paused_at(S(699)));
    let answer = r.send(&r.request(Ask::Pause {
        length: S(7200),
        reason: "too long".into(),
    }));
    assert!(
        answer.starts_with("bad\t2h is over max-pause (1h)"),
        "{answer}"
    );
    assert_eq!(r.operator.pause_end(S(100)), Some(S(700)), "unchanged");
    let answer = r.send(&r.request(Ask::Resume));
    assert!(answer.starts_with("ok\tpause ended"), "{answer}");
    assert!(!r.operator.paused_at(S(100)));
    let answer = r.send(&r.request(Ask::Resume));
    assert!(answer.starts_with("ok\tno pause in progress"), "{answer}");
}

#[test]
fn stale_and_malformed_requests_change_nothing() {
    let r = rig();
    let old = Request {
        sent: S(99),
        ask: fence_ask(),
    };
    let answer = r.send(&old.to_line());
    assert!(
        answer.starts_with("refused\tdropped: the request is 1.0 s old"),
        "{answer}"
    );
    for (line, says) in [
        ("garbage\n".to_string(), "bad\tnot a wdfeed control request"),
        ("x".repeat(2000), "bad\tthe request is not one line"),
        (
            "wdfeed-control 1\t100000000000\tfence\t0\t\u{1b}[31mred\n".to_string(),
            "bad\tthe reason holds the control character",
        ),
    ] {
        let answer = r.send(&line);
        assert!(answer.starts_with(says), "{line:?}: {answer}");
    }
    assert!(!r.operator.fence_asked());
    assert!(!r.operator.paused_at(S(100)));
}

#[test]
fn anyone_but_root_is_refused_by_the_peer_credentials_and_changes_nothing() {
    let r = rig();
    // Open the door on purpose (0755 directory, 0666 socket): only SO_PEERCRED stands.
    std::fs::set_permissions(r.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(r.socket(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let (path, line) = (r.socket(), r.request(fence_ask()));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        crate::ffi::thread_setresuid(65534).unwrap();
        let _ = tx.send(send_to(&path, &line));
    });
    let answer = rx.recv_timeout(S(20)).unwrap();
    assert!(
        answer.starts_with("refused\trefused: only root may ask wdfeed to fence, pause or resume (this request came from uid 65534"),
        "{answer}"
    );
    assert!(answer.contains("which is root's to decide"), "{answer}");
    assert!(!r.operator.fence_asked());
    assert!(!r.latch.is_closed());
}

#[test]
fn a_flood_of_requests_is_answered_and_fences_nothing() {
    let r = rig();
    let started = Instant::now();
    let mut answers = 0;
    for i in 0..1000 {
        let line = if i % 2 == 0 {
            r.request(Ask::Resume)
        } else {
            "garbage\n".to_string()
        };
        if !r.send(&line).is_empty() {
            answers += 1;
        }
    }
    assert_eq!(answers, 1000);
    assert!(!r.operator.fence_asked());
    assert!(!r.latch.is_closed());
    assert!(r.leases.all_valid(S(100)));
    eprintln!(
        "1000 requests answered in {:.3} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_second_wdfeed_in_the_same_directory_takes_nothing_over() {
    let r = rig();
    let second = socket::bind(r.dir.path()).err().unwrap();
    assert!(
        second.contains("another wdfeed serves operator requests"),
        "{second}"
    );
    assert!(
        r.send(&r.request(Ask::Resume)).starts_with("ok\t"),
        "the first one still serves"
    );
}

#[test]
fn a_directory_others_can_write_gets_no_socket() {
    let dir = tempfile::Builder::new()
        .prefix("wdfeed-control-")
        .tempdir_in("/dev/shm")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let e = socket::bind(dir.path()).err().unwrap();
    assert!(e.contains("writable by its group or by others"), "{e}");
    assert!(!dir.path().join(wire::SOCKET_NAME).exists());
    let link = dir.path().join("link");
    std::os::unix::fs::symlink("/dev/shm", &link).unwrap();
    let e = socket::bind(&link).err().unwrap();
    assert!(e.contains("not a directory"), "{e}");
}

#[test]
fn the_socket_is_removed_at_exit_only_if_it_is_still_ours() {
    let r = rig();
    let path = r.socket();
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, "someone else's").unwrap();
    r.control.remove();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "someone else's");
}
