//! Operator requests against the built binary and dry-run daemons on fixture roots: `wdfeed
//! fence` as root and refused for uid 65534; `pause` hides a failing check, `resume` and the
//! pause's end bring the fence back, and the freeze guard fences through a pause; the fence
//! budget and `wdfeed.hold` hold READY=1 until `rejoin-now`; bad input, a missing daemon and
//! a replaced socket each get a clear error and change nothing; a flood of requests fences
//! nothing. Each command's time is printed (the suite asserts only that none hangs).

mod util;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use nix::libc::{SIGCONT, SIGSTOP};
use util::*;

const SOCKET: &str = "control";

/// `wdfeed ARGS --runtime-dir <the fixture's>`, its output and how long it took.
fn ask(fx: &FixtureRoot, args: &[&str]) -> (Output, Duration) {
    ask_as(fx, args, None)
}

fn ask_as(fx: &FixtureRoot, args: &[&str], uid: Option<u32>) -> (Output, Duration) {
    let runtime = fx.runtime_path().display().to_string();
    let mut c = wdfeed();
    c.args(args).args(["--runtime-dir", &runtime]);
    if let Some(uid) = uid {
        c.uid(uid).gid(uid);
    }
    let t = Instant::now();
    let o = c.output().expect("wdfeed runs");
    let took = t.elapsed();
    eprintln!(
        "wdfeed {} -> {:?} in {:.3} s",
        args.join(" "),
        o.status.code(),
        took.as_secs_f64()
    );
    assert!(took < Duration::from_secs(10), "wdfeed {args:?} hung");
    (o, took)
}

fn status_json(fx: &FixtureRoot) -> serde_json::Value {
    let o = run(&["status", "--json", "--status-file", &fx.status_arg()]);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)))
}

/// Waits until the status file satisfies `pred` (the status thread writes every interval).
fn wait_status(fx: &FixtureRoot, what: &str, pred: impl Fn(&serde_json::Value) -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let o = run(&["status", "--json", "--status-file", &fx.status_arg()]);
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&o.stdout) {
            if pred(&v) {
                return;
            }
        }
        assert!(Instant::now() < until, "status never showed {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn serving(fx: &FixtureRoot, cfg: &Path) -> Daemon {
    let mut d = fx.daemon(cfg, true);
    d.wait_for("operator requests (wdfeed fence", Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    d
}

#[test]
fn fence_on_demand_as_root_goes_through_the_fence_with_check_operator() {
    let fx = FixtureRoot::new();
    let cfg = fx.write("w.yaml", &fast_config(""));
    let mut d = serving(&fx, &cfg);
    let (o, _) = ask(&fx, &["fence", "--reason", "demote of r0 failed"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("dry run: would fence now (check=operator)"),
        "{}",
        stdout(&o)
    );
    let line = d
        .wait_for("would fence", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    assert!(line.contains("check=operator"), "{line}");
    assert!(
        line.contains("evidence=demote of r0 failed (wdfeed fence, uid 0, pid "),
        "{line}"
    );
    assert!(
        d.transcript()
            .contains("wdfeed fence: an operator asks to fence this node now"),
        "{}",
        d.transcript()
    );
    wait_status(&fx, "the operator's fence", |v| {
        v["fence"]["check"] == "operator"
    });
    let o = run(&[
        "status",
        "--format",
        "prometheus",
        "--status-file",
        &fx.status_arg(),
    ]);
    let m = stdout(&o);
    assert!(m.contains("wdfeed_fenced{reason=\"operator\"} 1"), "{m}");
    assert!(
        m.contains(
            "wdfeed_operator_fence_info{reason=\"demote of r0 failed (wdfeed fence, uid 0, pid "
        ),
        "{m}"
    );
    // A second request finds the node fenced and changes nothing.
    let (o, _) = ask(&fx, &["fence", "--reason", "again"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("already fenced by operator"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_long_reason_is_refused_unless_the_caller_asks_to_cut_it() {
    let fx = FixtureRoot::new();
    let cfg = fx.write("w.yaml", &fast_config(""));
    let mut d = serving(&fx, &cfg);
    // What the shipped OnFailure= template sends for a unit whose name has 255 bytes.
    let unit = format!("{}.service", "x".repeat(247));
    let reason = format!("OnFailure of {unit}");
    let (o, _) = ask(&fx, &["fence", "--reason", &reason]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("over 200"), "{}", stderr(&o));
    assert!(
        !d.transcript().contains("would fence"),
        "{}",
        d.transcript()
    );
    let (o, _) = ask(&fx, &["fence", "--cut-reason", "--reason", &reason]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("sending its first 200"),
        "{}",
        stderr(&o)
    );
    let line = d
        .wait_for("would fence", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    assert!(line.contains(&reason[..200]), "{line}");
    assert!(!line.contains(&reason[..201]), "{line}");
}

#[test]
fn fence_from_uid_65534_is_refused_and_changes_nothing() {
    let fx = FixtureRoot::new();
    let cfg = fx.write("w.yaml", &fast_config(""));
    let mut d = serving(&fx, &cfg);
    // The socket is root's (0600 in a 0700 directory): the system refuses first.
    let (o, _) = ask_as(&fx, &["fence", "--reason", "not mine"], Some(65534));
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("permission denied") && stderr(&o).contains("only root may ask"),
        "{}",
        stderr(&o)
    );
    // With the door opened on purpose, the daemon's SO_PEERCRED check refuses and says why.
    let socket = fx.runtime_path().join(SOCKET);
    std::fs::set_permissions(fx.runtime_path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (o, _) = ask_as(&fx, &["fence", "--reason", "not mine"], Some(65534));
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "only root may ask wdfeed to fence, pause or resume (this request came from uid 65534"
        ),
        "{}",
        stderr(&o)
    );
    let (o, _) = ask_as(
        &fx,
        &["pause", "--for", "10m", "--reason", "x"],
        Some(65534),
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    d.wait_for("refused: only root may ask", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    std::thread::sleep(Duration::from_secs(2));
    let v = status_json(&fx);
    assert_eq!(v["fence"], serde_json::Value::Null, "{v}");
    assert_eq!(v["pause"], serde_json::Value::Null, "{v}");
    assert!(
        !d.transcript().contains("would fence"),
        "{}",
        d.transcript()
    );
}

#[test]
fn a_pause_hides_a_failing_check_and_resume_brings_the_fence_back() {
    let fx = FixtureRoot::new();
    let cfg = fx.write("w.yaml", &fast_config(""));
    let mut d = serving(&fx, &cfg);
    let (o, _) = ask(
        &fx,
        &["pause", "--for", "10m", "--reason", "heartbeat upgrade"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("paused for 10m"), "{}", stdout(&o));
    fx.write("proc/1/mountinfo", MOUNTINFO_RO);
    // The check fails on, run after run, and nothing fences for 4 s (4 intervals).
    d.wait_for("check failed", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    assert!(
        d.wait_for("would fence", Duration::from_secs(4)).is_none(),
        "{}",
        d.transcript()
    );
    wait_status(&fx, "the pause", |v| {
        v["pause"]["reason"] == "heartbeat upgrade"
            && v["pause"]["uid"] == 0
            && v["pause"]["left_s"].as_f64().is_some_and(|l| l > 500.0)
            && v["checks"][0]["healthy"] == false
    });
    let o = run(&["status", "--status-file", &fx.status_arg()]);
    assert!(
        stdout(&o).contains("PAUSED by uid 0 for") && stdout(&o).contains("heartbeat upgrade"),
        "{}",
        stdout(&o)
    );
    let o = run(&[
        "status",
        "--format",
        "prometheus",
        "--status-file",
        &fx.status_arg(),
    ]);
    assert!(stdout(&o).contains("\nwdfeed_paused 1\n"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("wdfeed_pause_info{uid=\"0\",pid=\""),
        "{}",
        stdout(&o)
    );
    let (o, _) = ask(&fx, &["resume"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let line = d
        .wait_for("would fence", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    assert!(line.contains("check=writable /"), "{line}");
    assert!(
        d.transcript()
            .contains("maintenance pause ended (wdfeed resume)"),
        "{}",
        d.transcript()
    );
}

#[test]
fn a_check_still_failing_when_the_pause_ends_fences_and_the_log_says_the_pause_just_ended() {
    let fx = FixtureRoot::new();
    let cfg = fx.write("w.yaml", &fast_config(""));
    let mut d = serving(&fx, &cfg);
    let (o, _) = ask(&fx, &["pause", "--for", "4s", "--reason", "short"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let paused_at = Instant::now();
    fx.write("proc/1/mountinfo", MOUNTINFO_RO);
    let line = d
        .wait_for("would fence", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    assert!(
        paused_at.elapsed() >= Duration::from_millis(3500),
        "fenced {:?} into a 4 s pause: {line}",
        paused_at.elapsed()
    );
    assert!(line.contains("a maintenance pause ended"), "{line}");
    assert!(
        d.transcript().contains(
            "maintenance pause ended: its time ran out, and a check still holds no valid lease"
        ),
        "{}",
        d.transcript()
    );
}

#[test]
fn the_freeze_guard_fences_during_a_pause() {
    let fx = FixtureRoot::new();
    let cfg = fx.write(
        "w.yaml",
        "devices:\n  - path: /dev/watchdog0\n    timeout: 2s\ninterval: 250ms\nfence:\n  stall-threshold: 1s\nchecks:\n  - kind: writable\n    mounts: [/]\n    probe: false\n    every: 250ms\n    deadline: 500ms\n",
    );
    let mut d = serving(&fx, &cfg);
    let (o, _) = ask(&fx, &["pause", "--for", "1h", "--reason", "upgrade"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    d.signal(SIGSTOP);
    std::thread::sleep(Duration::from_secs(2));
    d.signal(SIGCONT);
    let line = d
        .wait_for("would fence", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    assert!(line.contains("check=freeze-guard"), "{line}");
}

/// A state record whose previous boot (not the fixture's) fenced, the third in a row within
/// the hour.
fn three_fenced_boots(fx: &FixtureRoot) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut text = String::from("wdfeed state 1\nboot 33333333-4f50-6172-8394-a5b6c7d8e9f0\nstate fenced\nbound 13.000\nrejoin-delay 13.000\n");
    for (i, ago) in [(1, 900), (2, 500), (3, 100)] {
        text.push_str(&format!(
            "ended {} {i}{i}{i}{i}{i}{i}{i}{i}-4f50-6172-8394-a5b6c7d8e9f0 fenced: writable /: / read-only in /proc/1/mountinfo\n",
            now - ago
        ));
    }
    std::fs::create_dir_all(fx.state_path()).unwrap();
    std::fs::write(fx.state_path().join("state"), text).unwrap();
}

fn notified(sock: &UnixDatagram) -> Vec<String> {
    sock.set_nonblocking(true).unwrap();
    let mut got = vec![];
    let mut buf = [0u8; 4096];
    while let Ok(n) = sock.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    got
}

#[test]
fn a_spent_fence_budget_holds_ready_until_rejoin_now() {
    let fx = FixtureRoot::new();
    three_fenced_boots(&fx);
    let cfg = fx.write("w.yaml", &fast_config(""));
    let sock_path = fx.path().join("notify.sock");
    let manager = UnixDatagram::bind(&sock_path).unwrap();
    let mut c = wdfeed();
    c.env("NOTIFY_SOCKET", &sock_path);
    let mut d = fx.daemon_with(c, &cfg);
    let held = d
        .wait_for(
            "READY=1 is held until `wdfeed rejoin-now`",
            Duration::from_secs(30),
        )
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    assert!(
        held.contains("fence budget spent: 3 boots in a row ended armed within 1h"),
        "{held}"
    );
    assert!(
        held.contains(" UTC (fenced: writable /: / read-only"),
        "{held}"
    );
    d.wait_for("would pet", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    wait_status(&fx, "the hold", |v| {
        v["state"] == "rejoin-hold" && v["hold"]["by"] == "fence-budget"
    });
    let v = status_json(&fx);
    assert_eq!(v["budget"]["fences"], 3);
    assert_eq!(v["budget"]["recent"].as_array().unwrap().len(), 3);
    let o = run(&[
        "status",
        "--format",
        "prometheus",
        "--status-file",
        &fx.status_arg(),
    ]);
    let m = stdout(&o);
    assert!(
        m.contains("wdfeed_rejoin_held{by=\"fence-budget\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("\nwdfeed_rejoin_budget_recent_fences 3\n"),
        "{m}"
    );
    assert!(
        m.contains("wdfeed_rejoin_budget_fence_timestamp_seconds{boot=\"11111111-"),
        "{m}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !notified(&manager).iter().any(|m| m == "READY=1"),
        "READY=1 went while held"
    );
    let o = run(&["rejoin-now", "--status-file", &fx.status_arg()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    d.wait_for("READY=1 sent", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        notified(&manager).iter().any(|m| m == "READY=1"),
        "no READY=1 after rejoin-now"
    );
}

#[test]
fn the_kernel_word_holds_ready_until_rejoin_now() {
    let fx = FixtureRoot::new();
    fx.write(
        "proc/cmdline",
        "BOOT_IMAGE=/vmlinuz root=/dev/vda1 wdfeed.hold quiet\n",
    );
    let cfg = fx.write("w.yaml", &fast_config(""));
    let mut d = fx.daemon(&cfg, true);
    d.wait_for(
        "the kernel command line says `wdfeed.hold`",
        Duration::from_secs(30),
    )
    .unwrap_or_else(|| panic!("{}", d.transcript()));
    wait_status(&fx, "the hold", |v| {
        v["state"] == "rejoin-hold" && v["hold"]["by"] == "kernel-command-line"
    });
    assert!(d.transcript().find("READY=1 sent").is_none());
    let o = run(&["rejoin-now", "--status-file", &fx.status_arg()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("the rejoin hold ends now"),
        "{}",
        stdout(&o)
    );
    d.wait_for("READY=1 sent", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let fx = FixtureRoot::new();
    // No daemon yet: no socket.
    let (o, _) = ask(&fx, &["fence", "--reason", "x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no control socket"), "{}", stderr(&o));
    let gone = fx.path().join("no-such-dir").display().to_string();
    let o = wdfeed()
        .args([
            "pause",
            "--for",
            "1m",
            "--reason",
            "x",
            "--runtime-dir",
            &gone,
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no runtime directory"),
        "{}",
        stderr(&o)
    );
    let cfg = fx.write("w.yaml", &fast_config(""));
    let mut d = serving(&fx, &cfg);
    let long = "x".repeat(201);
    for (args, code, says) in [
        (vec!["pause", "--for", "0s", "--reason", "x"], 2, "is zero"),
        (
            vec!["pause", "--for", "-5m", "--reason", "x"],
            2,
            "is negative",
        ),
        (
            vec!["pause", "--for", "soon", "--reason", "x"],
            2,
            "not a duration",
        ),
        (
            vec!["pause", "--for", "2h", "--reason", "x"],
            2,
            "over max-pause (1h)",
        ),
        (vec!["fence", "--reason", &long], 2, "201 bytes, over 200"),
        (
            vec!["fence", "--reason", "two\nlines"],
            2,
            "control character",
        ),
        (
            vec!["pause", "--for", "1m", "--reason", "bell\u{7}"],
            2,
            "control character",
        ),
        (vec!["resume"], 0, "no pause in progress"),
    ] {
        let (o, _) = ask(&fx, &args);
        let text = format!("{}{}", stdout(&o), stderr(&o));
        assert_eq!(o.status.code(), Some(code), "{args:?}: {text}");
        assert!(text.contains(says), "{args:?}: {text}");
    }
    std::thread::sleep(Duration::from_millis(1500));
    let v = status_json(&fx);
    assert_eq!(v["pause"], serde_json::Value::Null, "{v}");
    assert_eq!(v["fence"], serde_json::Value::Null, "{v}");
    assert!(
        !d.transcript().contains("would fence"),
        "{}",
        d.transcript()
    );
    // A socket replaced by a file, then by a symlink to a socket: nothing is sent.
    let socket = fx.runtime_path().join(SOCKET);
    let kept = fx.runtime_path().join("kept");
    std::fs::rename(&socket, &kept).unwrap();
    std::fs::write(&socket, "not a socket").unwrap();
    let (o, _) = ask(&fx, &["fence", "--reason", "x"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("is not a socket"), "{}", stderr(&o));
    std::fs::remove_file(&socket).unwrap();
    std::os::unix::fs::symlink(&kept, &socket).unwrap();
    let (o, _) = ask(&fx, &["fence", "--reason", "x"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("is a symbolic link"), "{}", stderr(&o));
    assert!(
        d.wait_for(
            "the control socket was removed or replaced",
            Duration::from_secs(5)
        )
        .is_some(),
        "{}",
        d.transcript()
    );
    assert!(
        !d.transcript().contains("would fence"),
        "{}",
        d.transcript()
    );
}

/// CLOCK_BOOTTIME now, in nanoseconds, as the commands stamp their requests.
fn boot_ns() -> u128 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).unwrap();
    Duration::from(t).as_nanos()
}

#[test]
fn a_flood_of_requests_neither_delays_the_feeder_nor_fences() {
    let fx = FixtureRoot::new();
    let cfg = fx.write(
        "w.yaml",
        "devices:\n  - path: /dev/watchdog0\n    timeout: 2s\ninterval: 250ms\nfence:\n  stall-threshold: 1s\nchecks:\n  - kind: writable\n    mounts: [/]\n    probe: false\n    every: 250ms\n    deadline: 500ms\n",
    );
    let mut d = serving(&fx, &cfg);
    std::thread::sleep(Duration::from_secs(2));
    let before = status_json(&fx)["lateness"].clone();
    let socket = fx.runtime_path().join(SOCKET);
    let started = Instant::now();
    let mut answered = 0;
    for i in 0..1000 {
        let line = match i % 3 {
            0 => format!("wdfeed-control 1\t{}\tresume\t0\t\n", boot_ns()),
            1 => "garbage\n".to_string(),
            _ => format!("wdfeed-control 1\t{}\tpause\t0\tzero\n", boot_ns()),
        };
        let s = UnixStream::connect(&socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        (&s).write_all(line.as_bytes()).unwrap();
        let mut answer = String::new();
        BufReader::new(&s).read_line(&mut answer).unwrap();
        answered += usize::from(!answer.is_empty());
    }
    let took = started.elapsed();
    assert_eq!(answered, 1000);
    std::thread::sleep(Duration::from_secs(2));
    let after = status_json(&fx)["lateness"].clone();
    eprintln!(
        "1000 requests answered in {:.3} s; feeder lateness before: p99 <= {} us, max {} us over {} wake-ups; after: p99 <= {} us, max {} us over {} wake-ups",
        took.as_secs_f64(),
        before["p99_us"], before["max_us"], before["wakeups"],
        after["p99_us"], after["max_us"], after["wakeups"]
    );
    assert!(
        !d.transcript().contains("would fence"),
        "{}",
        d.transcript()
    );
    assert!(
        d.wait_for("would fence", Duration::from_secs(1)).is_none(),
        "{}",
        d.transcript()
    );
    assert_eq!(status_json(&fx)["pause"], serde_json::Value::Null);
}

#[test]
fn a_stopped_or_killed_daemon_leaves_no_one_to_answer_and_the_command_says_so() {
    let fx = FixtureRoot::new();
    let cfg = fx.write("w.yaml", &fast_config(""));
    let mut d = serving(&fx, &cfg);
    d.signal(nix::libc::SIGTERM);
    assert_eq!(
        d.wait(Duration::from_secs(10)),
        Some(0),
        "{}",
        d.transcript()
    );
    assert!(
        !fx.runtime_path().join(SOCKET).exists(),
        "the exit removes the socket"
    );
    let (o, _) = ask(&fx, &["resume"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no control socket"), "{}", stderr(&o));
    // A SIGKILL leaves the socket behind: nobody listens on it.
    let mut d = serving(&fx, &cfg);
    d.signal(nix::libc::SIGKILL);
    d.wait(Duration::from_secs(10));
    assert!(fx.runtime_path().join(SOCKET).exists());
    let (o, _) = ask(&fx, &["fence", "--reason", "x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nobody listens on"), "{}", stderr(&o));
    // and the next daemon makes it again
    let _d = serving(&fx, &cfg);
    let (o, _) = ask(&fx, &["resume"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
