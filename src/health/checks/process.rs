//! `process`: the cluster heartbeat (heartbeat, corosync, pacemakerd, keepalived...) is alive.
//!
//! Found by `name` (comm or executable basename) or by `pidfile`. It fails when the process is
//! absent, a zombie, stopped (`T`, `t`), or has sat in D state (uninterruptible, usually on a
//! dead disk) for longer than `max-uninterruptible`; how long is counted across runs from
//! the `now` each run is given. Optionally a file the cluster stack touches must be fresher
//! than `max-age` (stat only).
//!
//! Only processes of the expected owner count: `user` (default root), compared with the real
//! uid the kernel reports, and, when `exe` is given, the executable's full path. A process
//! of another user with the same name is ignored, whatever its state, and the evidence says
//! how many were ignored and why. A pidfile must name a process of that owner too.
//!
//! By name, only the top of each tree of same-named processes is judged: a daemon's worker
//! that exits and waits a moment to be reaped is a zombie too, and must not fence the node.
//!
//! By name, a run costs the same however many processes the node has: the run that finds the
//! process walks `/proc` once, and later runs follow the processes it found
//! ([`process_follow`]: a pidfd and the process's own `stat` and `status`, kept open). A new
//! walk happens only when a followed process is gone (its pidfd says it exited and it was
//! reaped), or when it may no longer be the one the check must see: its name, owner or
//! executable no longer match (it exec'd another program, or changed user), or its parent
//! changed (the tree it topped changed shape). This cannot hide a dead heartbeat: the
//! process judged is the one followed, and whatever happens to it (exit, zombie, stopped, D
//! state, exec, another owner) shows at the next run through descriptors that are its own,
//! which no other user can open, fake or reuse; once it is gone, the walk that follows sees
//! every process of the name anew, and no user other than the owner can put a process there
//! that counts. A same-named process the owner starts while the followed one lives is not
//! looked at until then: it can only add a process to judge, never stand in for the one
//! that is followed.
//!
//! What it cannot see: a process that runs but does no work (that is what `fresh-file` is
//! for), a stale pidfile whose pid was reused by another process, and D state shorter than a
//! run's interval (it is sampled, not traced).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::{CheckKind, KeyProblem};
use crate::health::{Check, Verdict};
use crate::system::process_follow::{self, Followed, Now};
use crate::system::process_table::{self, ProcDetail};
use crate::system::{sysfile, users, Root};
use crate::units::HumanDuration;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// comm (as in `ps -o comm`) or executable basename. Exactly one of `name` and
    /// `pidfile`. (The check itself is named by the shared `label` key.)
    #[serde(default)]
    pub name: Option<String>,
    /// A file holding the process's pid, e.g. `/run/heartbeat.pid`.
    #[serde(default)]
    pub pidfile: Option<PathBuf>,
    /// The owner of the process: a user name (looked up in `/etc/passwd` under the root at
    /// start-up) or a numeric uid. Default root. Matched against the real uid.
    #[serde(default)]
    pub user: Option<String>,
    /// The executable's absolute path, e.g. `/usr/sbin/corosync`: when given, a process
    /// matches only if its `/proc/<pid>/exe` is this path.
    #[serde(default)]
    pub exe: Option<PathBuf>,
    /// How long the process may stay in D state.
    #[serde(default = "default_max_uninterruptible")]
    pub max_uninterruptible: HumanDuration,
    /// A file the watched stack touches while it works; needs `max-age`.
    #[serde(default)]
    pub fresh_file: Option<PathBuf>,
    /// How old `fresh-file`'s modification time may be.
    #[serde(default)]
    pub max_age: Option<HumanDuration>,
}

fn default_max_uninterruptible() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

impl CheckKind for Settings {
    const KIND: &'static str = "process";

    fn label(&self) -> String {
        match (&self.name, &self.pidfile) {
            (Some(n), _) => format!("process {n}"),
            (None, Some(p)) => format!("process {}", p.display()),
            (None, None) => "process".into(),
        }
    }

    fn problems(&self) -> Vec<KeyProblem> {
        let mut out = Vec::new();
        for (key, path) in [("pidfile", &self.pidfile), ("fresh-file", &self.fresh_file)] {
            out.extend(path.as_deref().and_then(|p| super::dotdot_problem(key, p)));
        }
        match (&self.name, &self.pidfile) {
            (None, None) => out.push(KeyProblem::new("", "give `name` or `pidfile`")),
            (Some(_), Some(_)) => out.push(KeyProblem::new(
                "pidfile",
                "give `name` or `pidfile`, not both (use two checks to watch both)",
            )),
            _ => {}
        }
        if let Some(n) = &self.name {
            if n.is_empty() || n.contains('/') {
                out.push(KeyProblem::new(
                    "name",
                    format!(
                        "`{n}` is not a process name: write the comm or the executable's basename"
                    ),
                ));
            }
        }
        if let Some(why) = self.user.as_deref().and_then(users::bad_user_key) {
            out.push(KeyProblem::new("user", why));
        }
        for (key, path) in [
            ("pidfile", &self.pidfile),
            ("fresh-file", &self.fresh_file),
            ("exe", &self.exe),
        ] {
            if let Some(p) = path.as_ref().filter(|p| !p.is_absolute()) {
                out.push(KeyProblem::new(
                    key,
                    format!("`{}` is not an absolute path", p.display()),
                ));
            }
        }
        if self.max_uninterruptible.get().is_zero() {
            out.push(KeyProblem::new(
                "max-uninterruptible",
                "must be longer than 0s: every process that reads a disk is briefly in D state",
            ));
        }
        match (&self.fresh_file, self.max_age) {
            (Some(_), None) => out.push(KeyProblem::new("max-age", "needed with `fresh-file`")),
            (None, Some(_)) => out.push(KeyProblem::new("fresh-file", "needed with `max-age`")),
            (Some(_), Some(age)) if age.get().is_zero() => {
                out.push(KeyProblem::new("max-age", "must be longer than 0s"))
            }
            _ => {}
        }
        out
    }

    fn build(&self, root: &Root) -> Result<Box<dyn Check>, String> {
        Ok(Box::new(Process::new(self.clone(), root)?))
    }

    /// A process in D state fails only after `max-uninterruptible`, a stale file only
    /// after `max-age`.
    fn time_to_see(&self) -> Duration {
        let d_state = self.max_uninterruptible.get();
        self.max_age.map_or(d_state, |a| d_state.max(a.get()))
    }
}

/// At most this many processes of one name are followed (the tops of their trees); more are
/// named in the evidence and left out.
pub const MAX_FOLLOWED: usize = 64;

pub struct Process {
    root: Root,
    settings: Settings,
    /// The uid `user` names, resolved at start-up.
    uid: u32,
    /// Since when each process (pid, start time) has been seen in D state.
    in_d_since: HashMap<(i32, u64), Duration>,
    /// After a run: how much longer the process seen in D state may stay there (`None`: none
    /// is). Before the first run: `max-uninterruptible`.
    undecided: Option<Duration>,
    /// The processes the last walk found, followed until one is gone or no longer matches.
    followed: Vec<Followed>,
}

impl Process {
    pub fn new(settings: Settings, root: &Root) -> Result<Self, String> {
        let uid = match settings.user.as_deref() {
            None => 0,
            Some(u) => users::resolve_uid(root, u)?,
        };
        if let Some(w) = settings
            .pidfile
            .as_deref()
            .and_then(|p| pidfile_warning(root, p, uid))
        {
            tracing::warn!("{w}");
        }
        Ok(Process {
            uid,
            root: root.clone(),
            undecided: Some(settings.max_uninterruptible.get()),
            settings,
            in_d_since: HashMap::new(),
            followed: Vec::new(),
        })
    }

    /// Why the process `pid` is not one this check watches, or `None` when it is.
    fn foreign(&self, pid: i32) -> Option<String> {
        match process_table::real_uid(&self.root, pid) {
            None => return Some("owner unreadable".into()),
            Some(u) if u != self.uid => return Some(format!("uid {u}")),
            Some(_) => {}
        }
        let want = self.settings.exe.as_deref()?;
        match process_table::exe_path(&self.root, pid) {
            Some(p) if p == want => None,
            Some(p) => Some(format!("exe {}", sysfile::shorten(&p.to_string_lossy()))),
            None => Some("exe unreadable".into()),
        }
    }

    /// Who the check expects, for the evidence.
    fn owner(&self) -> String {
        match &self.settings.exe {
            Some(e) => format!("uid {} exe {}", self.uid, e.display()),
            None => format!("uid {}", self.uid),
        }
    }

    /// The processes to judge (with a note on the ignored ones), or why there are none.
    fn find(&mut self) -> Result<(Vec<ProcDetail>, Option<String>), String> {
        if let Some(pidfile) = &self.settings.pidfile {
            let pid = process_table::read_pidfile(&self.root, pidfile)
                .map_err(|e| format!("pidfile {e}"))?;
            let d = process_table::detail(&self.root, pid)
                .ok_or_else(|| format!("pid {pid} from {} is not running", pidfile.display()))?;
            if let Some(why) = self.foreign(pid) {
                return Err(format!(
                    "pid {pid} from {} is not the expected process ({why}; expected {})",
                    pidfile.display(),
                    self.owner()
                ));
            }
            let warning = pidfile_warning(&self.root, pidfile, self.uid);
            return Ok((vec![d], warning));
        }
        if let Some(now) = self.follow() {
            return Ok((now, None));
        }
        self.followed.clear();
        let name = self.settings.name.clone().unwrap_or_default();
        let walk = process_follow::walk(
            &self.root,
            &name,
            &mut |pid| self.foreign(pid).map_or(Ok(()), Err),
            MAX_FOLLOWED,
        );
        let mut notes = Vec::new();
        if walk.refused > 0 {
            let more = walk.refused - walk.refused_shown.len();
            let mut shown = walk.refused_shown.join(", ");
            if more > 0 {
                shown.push_str(&format!(", {more} more"));
            }
            notes.push(format!(
                "ignored {} same-named process(es) not of {}: {shown}",
                walk.refused,
                self.owner()
            ));
        }
        if walk.beyond_cap > 0 {
            notes.push(format!(
                "{} more process(es) named {name} not followed (at most {MAX_FOLLOWED})",
                walk.beyond_cap
            ));
        }
        let note = (!notes.is_empty()).then(|| notes.join("; "));
        let mut found = Vec::with_capacity(walk.tops.len());
        for d in walk.tops {
            // Gone between the walk and now: as if the walk had not seen it.
            if let Some(f) = Followed::open(&self.root, &d) {
                self.followed.push(f);
                found.push(d);
            }
        }
        if found.is_empty() {
            let mut e = format!("no process named {name} of {}", self.owner());
            if let Some(n) = note {
                e.push_str(&format!(" ({n})"));
            }
            return Err(e);
        }
        Ok((found, note))
    }

    /// The followed processes as they are now, or `None` when a walk must look again: one is
    /// gone, no longer matches the name, owner or executable, or has another parent.
    fn follow(&self) -> Option<Vec<ProcDetail>> {
        if self.followed.is_empty() {
            return None;
        }
        let mut now = Vec::with_capacity(self.followed.len());
        for f in &self.followed {
            let Now::Here(d) = f.now(&self.root) else {
                return None;
            };
            if d.ppid != f.ppid {
                return None;
            }
            // A zombie keeps its name and owner; it has no executable left to read, and is
            // judged as what it is.
            if !matches!(d.stat.state, 'Z' | 'X' | 'x') && !self.still_matches(f, &d) {
                return None;
            }
            now.push(d);
        }
        Some(now)
    }

    /// Whether a followed process still has the check's name, owner and executable.
    fn still_matches(&self, f: &Followed, d: &ProcDetail) -> bool {
        let name = self.settings.name.as_deref().unwrap_or_default();
        if !f.still(&self.root, d, name, self.uid) {
            return false;
        }
        match self.settings.exe.as_deref() {
            None => true,
            Some(want) => f.exe_path(&self.root).as_deref() == Some(want),
        }
    }
}

/// A warning when the pidfile or its directory can be written by someone other than root
/// and `uid` (another owner, or group/world write): whoever can write it chooses the pid
/// this check looks at. `None` when both are safe or cannot be read (the run reports that).
pub fn pidfile_warning(root: &Root, pidfile: &Path, uid: u32) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let file = root.resolve(pidfile);
    let dir = file.parent()?.to_path_buf();
    let shown_dir = pidfile.parent().unwrap_or(pidfile);
    let mut out = Vec::new();
    for (what, path, shown) in [("pidfile", &file, pidfile), ("directory", &dir, shown_dir)] {
        let Ok(m) = std::fs::symlink_metadata(path) else {
            continue;
        };
        if m.uid() != 0 && m.uid() != uid {
            out.push(format!(
                "{what} {} is owned by uid {}",
                shown.display(),
                m.uid()
            ));
        }
        if m.mode() & 0o022 != 0 {
            out.push(format!(
                "{what} {} is writable by group or others (mode {:o})",
                shown.display(),
                m.mode() & 0o7777
            ));
        }
    }
    (!out.is_empty()).then(|| {
        format!(
            "warning: {}: another user could point this check at a process of their choosing",
            out.join(", ")
        )
    })
}

impl Check for Process {
    /// One sample cannot tell a long D state from a short one: a one-shot caller should
    /// sample again this much later (before the first run: `max-uninterruptible`).
    fn settle_time(&self) -> Option<Duration> {
        self.undecided
    }

    fn run(&mut self, now: Duration) -> Verdict {
        self.undecided = None;
        let (found, note) = match self.find() {
            Ok(f) => f,
            Err(e) => {
                self.in_d_since.clear();
                return Verdict::unhealthy(e);
            }
        };
        let max_d = self.settings.max_uninterruptible.get();
        let mut bad = Vec::new();
        let mut fine = Vec::new();
        let mut still_d = HashMap::new();
        for d in &found {
            let who = format!("{} pid {}", d.stat.comm, d.stat.pid);
            match d.stat.state {
                'Z' => bad.push(format!("{who} zombie")),
                'X' | 'x' => bad.push(format!("{who} dead")),
                s @ ('T' | 't') => bad.push(format!("{who} stopped ({s})")),
                'D' => {
                    let key = (d.stat.pid, d.start_time);
                    let since = self.in_d_since.get(&key).copied().unwrap_or(now);
                    still_d.insert(key, since);
                    let for_ = now.saturating_sub(since);
                    let text = format!(
                        "{who} in D state (uninterruptible) for {} s",
                        for_.as_secs()
                    );
                    if for_ >= max_d {
                        bad.push(text);
                    } else {
                        self.undecided = self.undecided.max(Some(max_d - for_));
                        fine.push(text);
                    }
                }
                s => fine.push(format!("{who} running ({s})")),
            }
        }
        self.in_d_since = still_d;
        match self.freshness() {
            Ok(Some(f)) => fine.push(f),
            Ok(None) => {}
            Err(e) => bad.push(e),
        }
        if bad.is_empty() {
            fine.extend(note);
            Verdict::healthy(fine.join("; "))
        } else {
            bad.extend(note);
            Verdict::unhealthy(bad.join("; "))
        }
    }
}

impl Process {
    /// `fresh-file`'s age against `max-age`. The modification time is wall-clock: a clock
    /// stepped backwards makes the file look new (healthy), never older than it is.
    fn freshness(&self) -> Result<Option<String>, String> {
        let (Some(file), Some(max_age)) = (&self.settings.fresh_file, self.settings.max_age) else {
            return Ok(None);
        };
        let shown = file.display();
        let modified = std::fs::metadata(self.root.follow(file))
            .and_then(|m| m.modified())
            .map_err(|e| format!("fresh-file {shown}: {e}"))?;
        let age = SystemTime::now()
            .duration_since(modified)
            .unwrap_or(Duration::ZERO);
        if age > max_age.get() {
            Err(format!(
                "fresh-file {shown} last modified {} s ago (max-age {max_age})",
                age.as_secs()
            ))
        } else {
            Ok(Some(format!(
                "fresh-file {shown} modified {} s ago",
                age.as_secs()
            )))
        }
    }
}

#[cfg(test)]
mod tests;
