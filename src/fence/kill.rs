//! The kill list: the processes named in `fence.kill`, held by pidfd while the node is
//! healthy, so the fence SIGKILLs exactly them (no reused PID is ever hit).
//!
//! Only processes of each entry's owner (root unless the entry names a `user`; real uid from
//! the kernel) are held or killed: a same-named process of another user is neither, so no
//! number of them can use up wdfeed's descriptors. At most [`MAX_HELD_PER_NAME`] are held
//! per entry; more are logged and still found by the last scan after the fence (within the
//! same cap).
//!
//! The held pidfds sit in atomic slots, a fixed number per entry. The refresher (a thread
//! that is not the feeder) scans, then swaps each slot's pidfd for a fresh one; the fence,
//! on the feeder, signals through each slot as it finds it. Neither waits on the other, and
//! the fence allocates nothing. A pidfd swapped out is closed only if no fence has begun:
//! the fence marks itself before it reads the slots and the refresher looks at that mark
//! after its swap, so (both in one sequentially consistent order) either the refresher sees
//! the fence and leaks the old descriptor, or the fence reads the new one.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Mutex;

use crate::config::KillEntry;
use crate::ffi::{self, PidfdSlot};
use crate::system::process_scan::{self, ScanCache};
use crate::system::process_table;
use crate::system::{users, Root};

/// At most this many pidfds are held per entry of the kill list.
pub const MAX_HELD_PER_NAME: usize = 64;

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

/// The processes named in `fence.kill`, held as pidfds and refreshed while the node is
/// healthy by a thread that is not the feeder.
pub struct KillList {
    targets: Vec<Target>,
    root: Root,
    /// `cap` slots per target, in target order.
    slots: Box<[Slot]>,
    /// Set by the fence before it reads a slot; from then on nothing swapped out is closed.
    fencing: AtomicBool,
    /// What the last refresh saw of each process; only the refresher uses it.
    exe_cache: Mutex<ScanCache>,
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
            exe_cache: Mutex::new(ScanCache::new()),
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

    /// Finds the named processes now and holds a pidfd on each (the refresher's job, and
    /// the start-up's: never the feeder's).
    pub fn refresh(&self) {
        let found = match self.exe_cache.lock() {
            Ok(mut cache) => self.scan(Some(&mut cache)),
            Err(_) => self.scan(None),
        };
        let mut old = Vec::new();
        for (t, fresh) in found.into_iter().enumerate() {
            let mut fresh = fresh.into_iter();
            for slot in &self.slots[t * self.cap..(t + 1) * self.cap] {
                old.extend(slot.pidfd.replace(fresh.next()));
            }
        }
        if self.fencing.load(Ordering::SeqCst) {
            // A fence may be signalling through these numbers right now: never close them.
            std::mem::forget(old);
        }
    }

    /// The named processes of each entry's owner, per entry, each with a new pidfd. With
    /// a cache, only processes the last refresh did not see are opened and readlinked.
    fn scan(&self, cache: Option<&mut ScanCache>) -> Vec<Vec<(i32, std::os::fd::OwnedFd)>> {
        let me = nix::unistd::getpid().as_raw();
        let mut out = Vec::with_capacity(self.targets.len());
        // With a cache, one walk of the process table for every name.
        let mut cached = cache.map(|c| {
            let names: Vec<&str> = self.targets.iter().map(|t| t.name.as_str()).collect();
            process_scan::find_details_by_names(&self.root, &names, c).into_iter()
        });
        for Target { name, uid } in &self.targets {
            let mut held = Vec::new();
            let mut over = 0usize;
            let found: Vec<i32> = match cached.as_mut() {
                Some(c) => c
                    .next()
                    .unwrap_or_default()
                    .iter()
                    .map(|d| d.stat.pid)
                    .collect(),
                None => process_table::find_by_name(&self.root, name)
                    .into_iter()
                    .map(|p| p.pid)
                    .collect(),
            };
            for pid in found {
                // Never ourselves; never init (killing it panics the kernel instead of fencing).
                if pid == me || pid == 1 || !self.root.is_host() {
                    continue;
                }
                if process_table::real_uid(&self.root, pid) != Some(*uid) {
                    continue;
                }
                if held.len() >= self.cap {
                    over += 1;
                    continue;
                }
                if let Ok(fd) = ffi::pidfd_open(pid) {
                    held.push((pid, fd));
                }
            }
            if over > 0 {
                tracing::warn!(
                    name = %name,
                    uid,
                    held = held.len(),
                    not_held = over,
                    "fence.kill: more processes of this name than wdfeed holds; the rest are not killed by the fence"
                );
            }
            out.push(held);
        }
        out
    }

    /// The fence's step: SIGKILLs every held process (with `dry_run`, kills nothing and
    /// notes what it would kill). Lock-free and allocation-free; what happened is read
    /// later with [`Self::report`].
    pub fn kill_held(&self, dry_run: bool) {
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
        for (t, found) in self.scan(None).into_iter().enumerate() {
            let name = &self.targets[t].name;
            for (pid, fd) in found {
                if seen.contains(&pid) {
                    continue;
                }
                seen.push(pid);
                if dry_run {
                    lines.push(format!("would kill pid {pid} ({name})"));
                    continue;
                }
                use std::os::fd::AsFd;
                match ffi::pidfd_send_signal(fd.as_fd(), libc::SIGKILL) {
                    Ok(()) => lines.push(format!(
                        "killed pid {pid} ({name}), started since the last refresh"
                    )),
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
        assert_eq!(list.kill_all(false).len(), 2);
        for c in more.iter_mut().chain(std::iter::once(&mut a)) {
            let _ = c.kill();
            c.wait().unwrap();
        }
    }
}
