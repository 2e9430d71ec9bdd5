//! The `process` check against real processes on this machine: victims this test starts
//! itself, under names no other process has, and stops, leaves unreaped or kills itself.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use wdfeed::health::checks::parse_settings;
use wdfeed::health::{Check, Verdict};
use wdfeed::system::{process_table, Root};

/// A copy of `program` named `wdf<pid><tag>` (at most 15 bytes, so comm is the whole name).
fn victim_binary(dir: &Path, program: &str, tag: &str) -> (String, PathBuf) {
    let name = format!("wdf{}{tag}", std::process::id() % 100_000);
    assert!(name.len() <= 15, "{name}");
    let path = dir.join(&name);
    std::fs::copy(program, &path).unwrap();
    (name, path)
}

fn check(yaml: &str) -> Box<dyn Check> {
    let settings = parse_settings("process", serde_yaml::from_str(yaml).unwrap()).unwrap();
    assert_eq!(settings.problems(), []);
    settings.build(&Root::host()).unwrap()
}

fn pid_of(child: &Child) -> i32 {
    i32::try_from(child.id()).unwrap()
}

/// Waits until the kernel shows `pid` in `state` (signals and exits are asynchronous).
fn wait_for_state(pid: i32, state: char) {
    let until = Instant::now() + Duration::from_secs(5);
    while process_table::stat(&Root::host(), pid).map(|s| s.state) != Some(state) {
        assert!(
            Instant::now() < until,
            "pid {pid} never reached state {state}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kills and reaps a victim at the end of a test, whatever state it was left in.
struct Victim(Child);

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(pid_of(&self.0)), Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

#[test]
fn running_then_stopped_then_continued_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (name, path) = victim_binary(dir.path(), "/bin/sleep", "stp");
    let victim = Victim(Command::new(&path).arg("60").spawn().unwrap());
    let pid = pid_of(&victim.0);
    wait_for_state(pid, 'S');
    let mut c = check(&format!("name: {name}"));
    assert_eq!(
        c.run(Duration::ZERO),
        Verdict::healthy(format!("{name} pid {pid} running (S)"))
    );

    kill(Pid::from_raw(pid), Signal::SIGSTOP).unwrap();
    wait_for_state(pid, 'T');
    assert_eq!(
        c.run(Duration::ZERO),
        Verdict::unhealthy(format!("{name} pid {pid} stopped (T)"))
    );

    kill(Pid::from_raw(pid), Signal::SIGCONT).unwrap();
    wait_for_state(pid, 'S');
    assert!(c.run(Duration::ZERO).healthy);
}

#[test]
fn an_unreaped_child_is_a_zombie() {
    let dir = tempfile::tempdir().unwrap();
    let (name, path) = victim_binary(dir.path(), "/bin/true", "zmb");
    // Not waited for until the guard drops: it stays a zombie meanwhile.
    let victim = Victim(Command::new(&path).spawn().unwrap());
    let pid = pid_of(&victim.0);
    wait_for_state(pid, 'Z');
    let v = check(&format!("name: {name}")).run(Duration::ZERO);
    assert_eq!(v, Verdict::unhealthy(format!("{name} pid {pid} zombie")));
}

#[test]
fn by_pidfile_until_the_process_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (name, path) = victim_binary(dir.path(), "/bin/sleep", "pid");
    let mut victim = Victim(Command::new(&path).arg("60").spawn().unwrap());
    let pid = pid_of(&victim.0);
    wait_for_state(pid, 'S');
    let pidfile = dir.path().join("victim.pid");
    std::fs::write(&pidfile, format!("{pid}\n")).unwrap();
    let mut c = check(&format!("pidfile: {}", pidfile.display()));
    assert_eq!(
        c.run(Duration::ZERO),
        Verdict::healthy(format!("{name} pid {pid} running (S)"))
    );

    victim.0.kill().unwrap();
    victim.0.wait().unwrap();
    let v = c.run(Duration::ZERO);
    assert_eq!(
        v,
        Verdict::unhealthy(format!(
            "pid {pid} from {} is not running",
            pidfile.display()
        ))
    );
}

#[test]
fn a_name_nobody_has_is_absent() {
    let name = format!("wdf{}none", std::process::id() % 100_000);
    let v = check(&format!("name: {name}")).run(Duration::ZERO);
    assert_eq!(
        v,
        Verdict::unhealthy(format!("no process named {name} of uid 0"))
    );
}

/// A followed process that exec's another program is no longer the one the check watches:
/// the next run looks again, and finds none.
#[test]
fn a_process_that_execs_into_another_program_is_no_longer_it() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let (name, path) = victim_binary(dir.path(), "/bin/sh", "exe");
    let mut victim = Victim(
        Command::new(&path)
            .args(["-c", "read x; exec sleep 60"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = pid_of(&victim.0);
    wait_for_state(pid, 'S');
    let mut c = check(&format!("name: {name}"));
    assert_eq!(
        c.run(Duration::ZERO),
        Verdict::healthy(format!("{name} pid {pid} running (S)"))
    );
    victim.0.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    while process_table::stat(&Root::host(), pid).is_none_or(|s| s.comm != "sleep") {
        assert!(Instant::now() < until, "pid {pid} never exec'd sleep");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        c.run(Duration::ZERO),
        Verdict::unhealthy(format!("no process named {name} of uid 0"))
    );
}
