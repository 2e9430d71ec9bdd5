//! The kill list: the processes named in `fence.kill`, held by pidfd while the node is
//! healthy, so the fence SIGKILLs exactly them (no reused PID is ever hit).
//!
//! Only processes of each entry's owner (root unless the entry names a `user`; real uid from
//! the kernel) are held or killed: a same-named process of another user is neither, so no
//! number of them can use up wdfeed's descriptors. At most [`MAX_HELD_PER_NAME`] are held
//! per entry; more are logged and still found by the last scan after the fence (within the
//! same cap).
//!
//! The refresher follows the processes it holds, as the `process` check does
//! ([`process_follow`]): each refresh reads each held process through its own pidfd and kept
//! `stat` and `status`, and walks `/proc` again only when one is gone or no longer has its
//! name or owner (at once), or while an entry holds no process at all (at most every
//! [`ABSENT_WALK_EVERY`]): so with the cluster up its cost does not grow with the process
//! table, and a walk keeps nothing of the processes it passes. A same-named process started
//! while the held ones live is held from the next walk on; until then the last scan after a
//! fence finds and kills it.
//!
//! The held pidfds sit in atomic slots, a fixed number per entry. The refresher (a thread
//! that is not the feeder) swaps each slot's pidfd for a fresh one after a walk; the fence,
//! on the feeder, signals through each slot as it finds it. Neither waits on the other, and
//! the fence allocates nothing. A pidfd swapped out is closed only if no fence has begun:
//! the fence marks itself before it reads the slots and the refresher looks at that mark
//! after its swap, so (both in one sequentially consistent order) either the refresher sees
//! the fence and leaks the old descriptor, or the fence reads the new one.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::KillEntry;
use crate::ffi::{self, PidfdSlot};
use crate::system::process_follow::{self, Followed, Now};
use crate::system::process_table;
use crate::system::{users, Root};

/// At most this many pidfds are held per entry of the kill list.
pub const MAX_HELD_PER_NAME: usize = 64;

/// While an entry holds no process (its program not started yet, or not run on this node),
/// the refresher walks `/proc` for it at most this often.
pub const ABSENT_WALK_EVERY: Duration = Duration::from_secs(30);

/// One entry of the kill list: a process name and the real uid its processes must have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub uid: u32,
}

/// What the fence did through one slot.
const NOT_TRIED: i32 = -1;
const KILLED: i32 = 0;
const WOULD_KILL: i32 = -2;

/// One held process and what the fence did with it.
struct Slot {
    pidfd: PidfdSlot,
    /// [`NOT_TRIED`], [`KILLED`], [`WOULD_KILL`], or the errno of a failed signal.
    outcome: AtomicI32,
    /// The pid the outcome is about.
    pid: AtomicI32,
}

/// What the refresher follows between refreshes.
#[derive(Default)]
struct Following {
    /// Per target, the processes held (their pidfds are also in the slots).
    held: Vec<Vec<Followed>>,
    /// When the refresher last walked `/proc`.
    last_walk: Option<Instant>,
    /// Walks so far.
    walks: u64,
}

/// The processes named in `fence.kill`, held as pidfds and refreshed while the node is
/// healthy by a thread that is not the feeder.
pub struct KillList {
    targets: Vec<Target>,
    root: Root,
    /// `cap` slots per target, in target order.
    slots: Box<[Slot]>,
    /// Set by the fence before it reads a slot; from then on nothing swapped out is closed.
    fencing: AtomicBool,
    /// The fence was a dry run's: nothing is killed after it either.
    dry_fence: AtomicBool,
    /// What the refresher follows; only the refresher and the start-up take this lock,
    /// never the fence.
    following: Mutex<Following>,
    /// Pidfds held per entry at most.
    cap: usize,
}

impl KillList {
    pub fn new(targets: Vec<Target>, root: Root) -> Self {
        Self::with_cap_of(targets, root, MAX_HELD_PER_NAME)
    }

    fn with_cap_of(targets: Vec<Target>, root: Root, cap: usize) -> Self {
        let slots = (0..targets.len() * cap)
            .map(|_| Slot {
                pidfd: PidfdSlot::empty(),
                outcome: AtomicI32::new(NOT_TRIED),
                pid: AtomicI32::new(0),
            })
            .collect();
        KillList {
            targets,
            root,
            slots,
            fencing: AtomicBool::new(false),
            dry_fence: AtomicBool::new(false),
            following: Mutex::new(Following::default()),
            cap,
        }
    }

    /// The list `fence.kill` gives, each entry's `user` resolved to a uid under `root`
    /// (absent: root). The error names the entry's key and what to write instead.
    pub fn resolve(entries: &[KillEntry], root: &Root) -> Result<Self, String> {
        let targets = entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let uid = match e.user.as_deref() {
                    None => 0,
                    Some(u) => users::resolve_uid(root, u)
                        .map_err(|why| format!("fence.kill[{i}].user: {why}"))?,
                };
                Ok(Target {
                    name: e.name.clone(),
                    uid,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(KillList::new(targets, root.clone()))
    }

    /// The same list, holding at most `cap` per entry.
    #[cfg(test)]
    pub fn with_cap(self, cap: usize) -> Self {
        Self::with_cap_of(self.targets, self.root, cap)
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Processes held now.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.pidfd.pid().is_some())
            .count()
    }

    /// Keeps a pidfd on each of the named processes (the refresher's job, and the
    /// start-up's: never the feeder's). Reads the held processes; walks `/proc` only when
    /// one is gone or changed, or while an entry holds none (see [`ABSENT_WALK_EVERY`]).
    pub fn refresh(&self) {
        if self.fencing.load(Ordering::SeqCst) {
            // After the fence nothing is held any more: whatever of the list runs again (a
            // service manager restarting what the fence killed) is killed at once, until
            // the reset. A dry run's fence killed nothing, and this kills nothing either.
            if !self.dry_fence.load(Ordering::SeqCst) {
                for line in self.kill_walk(false, &[], "running again after the fence") {
                    tracing::error!("{line}");
                }
            }
            return;
        }
        let mut following = self.following.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let mut lost = false;
        for (t, held) in following.held.iter_mut().enumerate() {
            let before = held.len();
            held.retain(|f| self.still_held(&self.targets[t], f));
            lost |= held.len() != before;
        }
        let absent =
            following.held.len() != self.targets.len() || following.held.iter().any(Vec::is_empty);
        let due = match following.last_walk {
            None => true,
            Some(_) if lost => true,
            Some(at) => absent && now.duration_since(at) >= ABSENT_WALK_EVERY,
        };
        if !due {
            return;
        }
        following.last_walk = Some(now);
        following.walks += 1;
        let found = self.scan();
        let mut old = Vec::new();
        for (t, held) in found.iter().enumerate() {
            let mut fresh = held
                .iter()
                .filter_map(|f| Some((f.pid, f.pidfd()?.try_clone_to_owned().ok()?)));
            for slot in &self.slots[t * self.cap..(t + 1) * self.cap] {
                old.extend(slot.pidfd.replace(fresh.next()));
            }
        }
        if self.fencing.load(Ordering::SeqCst) {
            // A fence may be signalling through these numbers right now: never close them.
            std::mem::forget(old);
        }
        following.held = found;
    }

    /// Whether a held process is still one of `target`'s: alive, its name and owner.
    fn still_held(&self, target: &Target, f: &Followed) -> bool {
        match f.now(&self.root) {
            Now::Here(d) => f.still(&self.root, &d, &target.name, target.uid),
            Now::Gone => false,
        }
    }

    /// Walks `/proc` once for every entry: the named processes of each entry's owner, per
    /// entry, each followed (a pidfd and its kept files). Never this process, never init
    /// (killing it panics the kernel instead of fencing), nothing under a root other than
    /// this machine's `/`.
    fn scan(&self) -> Vec<Vec<Followed>> {
        let mut out: Vec<Vec<Followed>> = self.targets.iter().map(|_| Vec::new()).collect();
        if !self.root.is_host() {
            return out;
        }
        let me = nix::unistd::getpid().as_raw();
        let mut over = vec![0usize; self.targets.len()];
        let names: Vec<&str> = self.targets.iter().map(|t| t.name.as_str()).collect();
        process_follow::each_named(&self.root, &names, &mut |t, d| {
            let pid = d.stat.pid;
            if pid == me || pid == 1 || matches!(d.stat.state, 'Z' | 'X' | 'x') {
                return;
            }
            if process_table::real_uid(&self.root, pid) != Some(self.targets[t].uid) {
                return;
            }
            if out[t].len() >= self.cap {
                over[t] += 1;
                return;
            }
            if let Some(f) = Followed::open(&self.root, &d) {
                out[t].push(f);
            }
        });
        for (t, &not_held) in over.iter().enumerate().filter(|(_, n)| **n > 0) {
            let Target { name, uid } = &self.targets[t];
            tracing::warn!(
                name = %name,
                uid,
                held = out[t].len(),
                not_held,
                "fence.kill: more processes of this name than wdfeed holds; the rest are not killed by the fence"
            );
        }
        out
    }

    /// Walks of `/proc` the refresher made so far.
    #[cfg(test)]
    fn walks(&self) -> u64 {
        self.following.lock().map(|f| f.walks).unwrap_or(0)
    }

    /// The fence's step: SIGKILLs every held process (with `dry_run`, kills nothing and
    /// notes what it would kill). Lock-free and allocation-free; what happened is read
    /// later with [`Self::report`].
    pub fn kill_held(&self, dry_run: bool) {
        self.dry_fence.store(dry_run, Ordering::SeqCst);
        self.fencing.store(true, Ordering::SeqCst);
        for slot in self.slots.iter() {
            let outcome = if dry_run {
                slot.pidfd.pid().map(|pid| (pid, WOULD_KILL))
            } else {
                slot.pidfd.signal(libc::SIGKILL).map(|(pid, r)| {
                    (
                        pid,
                        match r {
                            Ok(()) => KILLED,
                            Err(e) => e.raw_os_error().unwrap_or(libc::EIO),
                        },
                    )
                })
            };
            if let Some((pid, outcome)) = outcome {
                slot.pid.store(pid, Ordering::SeqCst);
                slot.outcome.store(outcome, Ordering::SeqCst);
            }
        }
    }

    /// After the fence, off the feeder: kills (or, with `dry_run`, names) the named
    /// processes that appeared since the last refresh, and returns one line per process
    /// for the log, the held ones first.
    pub fn report(&self, dry_run: bool) -> Vec<String> {
        let mut lines = Vec::new();
        let mut seen = Vec::new();
        for (i, slot) in self.slots.iter().enumerate() {
            let outcome = slot.outcome.load(Ordering::SeqCst);
            if outcome == NOT_TRIED {
                continue;
            }
            let pid = slot.pid.load(Ordering::SeqCst);
            let name = &self.targets[i / self.cap].name;
            seen.push(pid);
            match outcome {
                WOULD_KILL => lines.push(format!("would kill pid {pid} ({name})")),
                KILLED => lines.push(format!("killed pid {pid} ({name})")),
                libc::ESRCH => {}
                errno => lines.push(format!(
                    "cannot kill pid {pid} ({name}): {}",
                    std::io::Error::from_raw_os_error(errno)
                )),
            }
        }
        lines.extend(self.kill_walk(dry_run, &seen, "started since the last refresh"));
        lines
    }

    /// One walk, every process of the list it finds (but `spared`) SIGKILLed through a new
    /// pidfd (with `dry_run`, named only); one line each, saying `why` it is killed.
    fn kill_walk(&self, dry_run: bool, spared: &[i32], why: &str) -> Vec<String> {
        let mut lines = Vec::new();
        for (t, found) in self.scan().into_iter().enumerate() {
            let name = &self.targets[t].name;
            for f in found {
                let pid = f.pid;
                if spared.contains(&pid) {
                    continue;
                }
                if dry_run {
                    lines.push(format!("would kill pid {pid} ({name})"));
                    continue;
                }
                let Some(fd) = f.pidfd() else { continue };
                match ffi::pidfd_send_signal(fd, libc::SIGKILL) {
                    Ok(()) => lines.push(format!("killed pid {pid} ({name}), {why}")),
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                    Err(e) => lines.push(format!("cannot kill pid {pid} ({name}): {e}")),
                }
            }
        }
        lines
    }

    /// The whole fence step at once, for tests: kill the held, then the late ones.
    #[cfg(test)]
    pub fn kill_all(&self, dry_run: bool) -> Vec<String> {
        self.kill_held(dry_run);
        self.report(dry_run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::victim::SleepCopy;
    use std::process::Child;

    /// A victim of our own, under a name nothing else on the machine has.
    fn victim(tag: &str) -> (Child, String, SleepCopy) {
        victim_as(tag, None)
    }

    /// The same, started as `uid` (needs root).
    fn victim_as(tag: &str, uid: Option<u32>) -> (Child, String, SleepCopy) {
        let copy = SleepCopy::new(&format!("wdv{tag}"));
        let child = copy.spawn(uid);
        (child, copy.name.clone(), copy)
    }

    /// An entry for `name` of the user running the tests.
    fn mine(name: &str) -> Vec<Target> {
        let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap());
        vec![Target {
            name: name.into(),
            uid,
        }]
    }

    #[test]
    fn kills_exactly_the_named_processes() {
        let (mut a, name_a, _da) = victim("a");
        let (mut b, _name_b, _db) = victim("b");
        let list = KillList::new(mine(&name_a), Root::host());
        list.refresh();
        let lines = list.kill_all(false);
        assert_eq!(lines, vec![format!("killed pid {} ({name_a})", a.id())]);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(a.wait().unwrap().signal(), Some(libc::SIGKILL));
        assert!(
            b.try_wait().unwrap().is_none(),
            "the other victim must live"
        );
        b.kill().unwrap();
        b.wait().unwrap();
    }

    #[test]
    fn a_process_started_after_the_refresh_is_killed_too() {
        let (mut a, name, _d) = victim("late");
        let list = KillList::new(mine(&name), Root::host());
        // No refresh: the fence's own scan must find it.
        let lines = list.kill_all(false);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(a.wait().is_ok());
    }

    #[test]
    fn after_the_fence_the_refresher_kills_what_runs_again_and_holds_nothing() {
        let (mut a, name, copy) = victim("again");
        let list = KillList::new(mine(&name), Root::host());
        list.refresh();
        list.kill_all(false);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(a.wait().unwrap().signal(), Some(libc::SIGKILL));
        // A service manager starts it again after the fence: the next refresh kills it.
        let mut again = copy.spawn(None);
        list.refresh();
        assert_eq!(again.wait().unwrap().signal(), Some(libc::SIGKILL));
        assert_eq!(
            list.held(),
            1,
            "the slot still names the first one; nothing new is held"
        );
    }

    #[test]
    fn after_a_dry_run_fence_the_refresher_kills_nothing() {
        let (mut a, name, _d) = victim("dryagain");
        let list = KillList::new(mine(&name), Root::host());
        list.refresh();
        list.kill_all(true);
        list.refresh();
        assert!(a.try_wait().unwrap().is_none());
        a.kill().unwrap();
        a.wait().unwrap();
    }

    #[test]
    fn dry_run_kills_nothing() {
        let (mut a, name, _d) = victim("dry");
        let list = KillList::new(mine(&name), Root::host());
        list.refresh();
        assert_eq!(
            list.kill_all(true),
            vec![format!("would kill pid {} ({name})", a.id())]
        );
        assert!(a.try_wait().unwrap().is_none());
        a.kill().unwrap();
        a.wait().unwrap();
    }

    #[test]
    fn a_fixture_root_never_kills_host_processes() {
        let (mut a, name, _d) = victim("fx");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(format!("proc/{}", a.id()));
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("stat"), format!("{} ({name}) S 1 1 1", a.id())).unwrap();
        let list = KillList::new(mine(&name), Root::at(dir.path()));
        list.refresh();
        assert!(list.kill_all(false).is_empty());
        assert!(a.try_wait().unwrap().is_none());
        a.kill().unwrap();
        a.wait().unwrap();
    }

    fn is_root() -> bool {
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0
    }

    #[test]
    fn a_same_named_process_of_another_user_is_neither_held_nor_killed() {
        if !is_root() {
            eprintln!(
                "SKIP a_same_named_process_of_another_user_is_neither_held_nor_killed: needs root"
            );
            return;
        }
        let (mut theirs, name, _d) = victim_as("nb", Some(65534));
        let entry = KillEntry {
            name: name.clone(),
            user: None,
        };
        let list = KillList::resolve(&[entry], &Root::host()).unwrap();
        list.refresh();
        assert_eq!(list.held(), 0);
        assert!(list.kill_all(false).is_empty());
        assert!(
            theirs.try_wait().unwrap().is_none(),
            "nobody's process must live"
        );
        theirs.kill().unwrap();
        theirs.wait().unwrap();
    }

    #[test]
    fn each_entry_kills_only_the_processes_of_its_own_user() {
        if !is_root() {
            eprintln!("SKIP each_entry_kills_only_the_processes_of_its_own_user: needs root");
            return;
        }
        // Two names, each run by root and by nobody; the list wants a of nobody, b of root.
        let (mut a_nobody, a, copy_a) = victim_as("ua", Some(65534));
        let mut a_root = copy_a.spawn(None);
        let (mut b_root, b, copy_b) = victim_as("ub", None);
        let mut b_nobody = copy_b.spawn(Some(65534));
        let entries = [
            KillEntry {
                name: a.clone(),
                user: Some("65534".into()),
            },
            KillEntry {
                name: b.clone(),
                user: None,
            },
        ];
        let list = KillList::resolve(&entries, &Root::host()).unwrap();
        list.refresh();
        assert_eq!(list.held(), 2);
        let mut lines = list.kill_all(false);
        lines.sort();
        let mut want = vec![
            format!("killed pid {} ({a})", a_nobody.id()),
            format!("killed pid {} ({b})", b_root.id()),
        ];
        want.sort();
        assert_eq!(lines, want);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(a_nobody.wait().unwrap().signal(), Some(libc::SIGKILL));
        assert_eq!(b_root.wait().unwrap().signal(), Some(libc::SIGKILL));
        for other in [&mut a_root, &mut b_nobody] {
            assert!(
                other.try_wait().unwrap().is_none(),
                "a process of the other user must live"
            );
            other.kill().unwrap();
            other.wait().unwrap();
        }
    }

    #[test]
    fn an_unknown_user_is_refused_with_the_entry_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nhacluster:x:189:189::/var/lib/pacemaker:/sbin/nologin\n",
        )
        .unwrap();
        let root = Root::at(dir.path());
        let entry = |user: &str| KillEntry {
            name: "pacemaker-based".into(),
            user: Some(user.into()),
        };
        let list = KillList::resolve(&[entry("hacluster")], &root).unwrap();
        assert_eq!(
            list.targets,
            vec![Target {
                name: "pacemaker-based".into(),
                uid: 189
            }]
        );
        let e = KillList::resolve(&[entry("hacluster"), entry("haclust")], &root)
            .err()
            .unwrap();
        assert!(
            e.starts_with("fence.kill[1].user: ") && e.contains("numeric uid"),
            "{e}"
        );
    }

    #[test]
    fn holds_at_most_the_cap_per_name() {
        let (mut a, name, copy) = victim("cap");
        let mut more: Vec<Child> = (0..2).map(|_| copy.spawn(None)).collect();
        let list = KillList::new(mine(&name), Root::host()).with_cap(2);
        list.refresh();
        assert_eq!(list.held(), 2);
        let held: Vec<String> = list.slots[..2]
            .iter()
            .map(|s| format!("killed pid {} ({name})", s.pidfd.pid().unwrap()))
            .collect();
        let lines = list.kill_all(false);
        // The held first; the last scan may find the third, once the killed ones are gone.
        assert_eq!(lines[..2], held[..], "{lines:?}");
        assert!(lines.len() <= 3, "{lines:?}");
        for c in more.iter_mut().chain(std::iter::once(&mut a)) {
            let _ = c.kill();
            c.wait().unwrap();
        }
    }

    /// The refresher follows what it holds: a refresh with every held process alive walks
    /// nothing; a held process that dies is replaced by a walk at the next refresh.
    #[test]
    fn a_refresh_walks_only_when_a_held_process_is_gone() {
        let (mut a, name, copy) = victim("fol");
        let list = KillList::new(mine(&name), Root::host());
        list.refresh();
        assert_eq!((list.walks(), list.held()), (1, 1));
        for _ in 0..3 {
            list.refresh();
        }
        assert_eq!(list.walks(), 1, "nothing changed: no walk");
        a.kill().unwrap();
        a.wait().unwrap();
        let mut b = copy.spawn(None);
        list.refresh();
        assert_eq!((list.walks(), list.held()), (2, 1));
        assert_eq!(
            list.slots[0].pidfd.pid(),
            Some(i32::try_from(b.id()).unwrap())
        );
        b.kill().unwrap();
        b.wait().unwrap();
    }

    /// A held process that exec's another program is no longer held after the next refresh,
    /// and an entry that holds nothing is walked for at most every ABSENT_WALK_EVERY.
    #[test]
    fn a_held_process_that_execs_another_program_is_let_go() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let name = format!("wdvx{}", std::process::id() % 100_000);
        let sh = dir.path().join(&name);
        std::fs::copy("/bin/sh", &sh).unwrap();
        let mut child = std::process::Command::new(&sh)
            .args(["-c", "read x; exec sleep 60"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let comm = || process_table::stat(&Root::host(), pid).map(|s| s.comm);
        for _ in 0..500 {
            if comm().as_deref() == Some(name.as_str()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let list = KillList::new(mine(&name), Root::host());
        list.refresh();
        assert_eq!((list.walks(), list.held()), (1, 1));
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        for _ in 0..500 {
            if comm().as_deref() == Some("sleep") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        list.refresh();
        assert_eq!((list.walks(), list.held()), (2, 0));
        list.refresh();
        assert_eq!(list.walks(), 2, "absent: walked again only after a while");
        assert!(
            list.kill_all(false).is_empty(),
            "the process is no longer one of the list"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
