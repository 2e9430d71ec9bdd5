use super::*;
use crate::system::victim::SleepCopy;
use std::time::Duration;

fn write_proc(dir: &std::path::Path, pid: i32, comm: &str, state: char, ppid: i32, start: u64) {
    let p = dir.join(format!("proc/{pid}"));
    fs::create_dir_all(&p).unwrap();
    // fields 3..=22: state, ppid, 17 more, then starttime
    let mid = "0 ".repeat(17);
    fs::write(
        p.join("stat"),
        format!("{pid} ({comm}) {state} {ppid} {mid}{start} 0\n"),
    )
    .unwrap();
    fs::write(
        p.join("status"),
        format!("Name:\t{comm}\nUid:\t0\t0\t0\t0\n"),
    )
    .unwrap();
}

fn pids(w: &Walk) -> Vec<i32> {
    w.tops.iter().map(|d| d.stat.pid).collect()
}

#[test]
fn a_walk_returns_the_tops_the_caller_accepts_and_says_why_others_were_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    write_proc(dir.path(), 10, "hb", 'S', 1, 100);
    write_proc(dir.path(), 11, "hb", 'Z', 10, 100); // a worker: judged through pid 10
    write_proc(dir.path(), 12, "other", 'S', 1, 100);
    for pid in 20..26 {
        write_proc(dir.path(), pid, "hb", 'T', 1, 100);
    }
    write_proc(dir.path(), 30, "hb", 'S', 25, 100); // parent refused: a top of its own
    let mut accept = |pid: i32| {
        if (20..26).contains(&pid) {
            Err("uid 1000".to_string())
        } else {
            Ok(())
        }
    };
    let w = walk(&root, "hb", &mut accept, 64);
    assert_eq!(pids(&w), vec![10, 30]);
    assert_eq!(w.refused, 6);
    assert_eq!(w.refused_shown.len(), REFUSED_SHOWN);
    assert!(
        w.refused_shown.iter().all(|s| s.ends_with(" uid 1000")),
        "{w:?}"
    );
    let w = walk(&root, "hb", &mut accept, 1);
    assert_eq!((w.tops.len(), w.beyond_cap), (1, 1));
}

#[test]
fn a_fixture_process_is_followed_by_path_and_another_start_time_is_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    write_proc(dir.path(), 10, "hb", 'S', 1, 100);
    let w = walk(&root, "hb", &mut |_| Ok(()), 64);
    let f = Followed::open(&root, &w.tops[0]).unwrap();
    assert!(f.pidfd().is_none());
    write_proc(dir.path(), 10, "hb", 'D', 1, 100);
    assert!(matches!(f.now(&root), Now::Here(d) if d.stat.state == 'D'));
    write_proc(dir.path(), 10, "hb", 'S', 1, 200);
    assert_eq!(f.now(&root), Now::Gone);
    fs::remove_dir_all(dir.path().join("proc/10")).unwrap();
    assert_eq!(f.now(&root), Now::Gone);
}

/// A real process, followed through its pidfd and kept files: sleeping, stopped, a zombie
/// once killed, gone once reaped; a followed process's uid and executable are its own.
#[test]
fn a_live_process_is_followed_to_its_end() {
    let copy = SleepCopy::new("wdfol");
    let mut child = copy.spawn(None);
    let pid = i32::try_from(child.id()).unwrap();
    let root = Root::host();
    let w = walk(&root, &copy.name, &mut |_| Ok(()), 64);
    assert_eq!(pids(&w), vec![pid]);
    let f = Followed::open(&root, &w.tops[0]).unwrap();
    assert!(f.pidfd().is_some());
    let state = |f: &Followed| match f.now(&root) {
        Now::Here(d) => Some(d.stat.state),
        Now::Gone => None,
    };
    let wait_for = |f: &Followed, want: Option<char>| {
        for _ in 0..500 {
            if state(f) == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("pid {pid} never reached {want:?}; is {:?}", state(f));
    };
    wait_for(&f, Some('S'));
    let me = std::os::unix::fs::MetadataExt::uid(&fs::metadata("/proc/self").unwrap());
    assert_eq!(f.real_uid(&root), Some(me));
    assert_eq!(f.exe_name(&root).as_deref(), Some(copy.name.as_str()));
    let p = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::kill(p, nix::sys::signal::SIGSTOP).unwrap();
    wait_for(&f, Some('T'));
    nix::sys::signal::kill(p, nix::sys::signal::SIGKILL).unwrap();
    wait_for(&f, Some('Z'));
    assert_eq!(
        f.exe_path(&root),
        None,
        "an exited process has no executable"
    );
    child.wait().unwrap();
    assert_eq!(f.now(&root), Now::Gone);
}

fn write_exe(dir: &std::path::Path, pid: i32, exe: &str) {
    let link = dir.join(format!("proc/{pid}/exe"));
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(exe, link).unwrap();
}

#[test]
fn one_walk_finds_each_name_by_comm_or_executable_in_its_own_list() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    write_proc(dir.path(), 20, "fakerm", 'S', 1, 100);
    write_exe(dir.path(), 20, "/usr/bin/fakerm");
    write_proc(dir.path(), 21, "hb-main", 'S', 1, 100);
    write_exe(dir.path(), 21, "/opt/hb/fakehb");
    write_proc(dir.path(), 22, "fakehb", 'S', 1, 100);
    write_exe(dir.path(), 22, "/opt/hb/fakehb");
    write_proc(dir.path(), 23, "other", 'S', 1, 100);
    write_exe(dir.path(), 23, "/usr/bin/other");
    let names = ["fakehb", "fakerm", "absent"];
    let mut lists: Vec<Vec<i32>> = vec![Vec::new(); 3];
    each_named(&root, &names, &mut |i, d| lists[i].push(d.stat.pid));
    for l in &mut lists {
        l.sort();
    }
    assert_eq!(lists, vec![vec![21, 22], vec![20], vec![]]);
}
