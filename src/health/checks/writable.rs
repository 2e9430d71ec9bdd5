//! `writable`: the listed mount points still take writes.
//!
//! Three signals per mount, because none is enough alone:
//! - the mount is not `ro` in the init mount namespace (`/proc/1/mountinfo`, per-mount and
//!   per-superblock options). Not `/proc/self`: a systemd sandbox (ProtectSystem=) shows
//!   read-only mounts to this process alone.
//! - a write probe (the `probe` module): a file on that filesystem, opened, written, fdatasync'ed and
//!   closed at every run, so the filesystem is never kept busy. On 6.1 an ext4 error with
//!   `errors=remount-ro` leaves mountinfo saying `rw`; the probe gets EROFS or EIO. A probe
//!   that hangs on a dead disk is the runner's business: the run misses its deadline.
//! - for ext2/3/4, the superblock's error record (`/sys/fs/ext4/<dev>/`): the error count rose
//!   since wdfeed first saw this filesystem mounted there, or the last error happened during
//!   this boot.
//!
//! Every run works on what is mounted there now: a mount unmounted and mounted again (the
//! filesystem a cluster moves between nodes) is watched again from the next run.
//!
//! What it cannot see: a filesystem that takes writes but loses them (a lying disk cache), a
//! mount that is fine while its contents are not.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{CheckKind, KeyProblem};
use crate::health::{Check, Verdict};
use crate::system::mountinfo::{self, MountEntry};
use crate::system::sysfile::KeptFile;
use crate::system::{ext4, Root};

/// The probe's directory, below the mount point, when `probe-paths` does not say otherwise:
/// wdfeed creates it (mode 0700) so that no other user can write where the probe goes.
pub const PROBE_DIR: &str = ".wdfeed";

/// The probe file's name in [`PROBE_DIR`].
pub const PROBE_NAME: &str = "probe";

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Mount points that must stay writable (default `/`).
    #[serde(default = "default_mounts")]
    pub mounts: Vec<PathBuf>,
    /// Write and sync a probe file on each mount every run (default on).
    #[serde(default = "yes")]
    pub probe: bool,
    /// Probe file per mount point, where `<mount>/.wdfeed/probe` will not do.
    #[serde(default)]
    pub probe_paths: BTreeMap<PathBuf, PathBuf>,
    /// Watch the ext2/3/4 error record of each mount's filesystem (default on).
    #[serde(default = "yes")]
    pub ext4_errors: bool,
}

fn default_mounts() -> Vec<PathBuf> {
    vec![PathBuf::from("/")]
}

fn yes() -> bool {
    true
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mounts: default_mounts(),
            probe: true,
            probe_paths: BTreeMap::new(),
            ext4_errors: true,
        }
    }
}

impl Settings {
    /// The probe file for `mount`: its `probe-paths` entry or `<mount>/.wdfeed/probe`.
    pub fn probe_path(&self, mount: &Path) -> PathBuf {
        match self.probe_paths.get(mount) {
            Some(p) => p.clone(),
            None => mount.join(PROBE_DIR).join(PROBE_NAME),
        }
    }
}

impl CheckKind for Settings {
    const KIND: &'static str = "writable";

    fn label(&self) -> String {
        let names: Vec<String> = self
            .mounts
            .iter()
            .map(|m| m.display().to_string())
            .collect();
        format!("writable {}", names.join(","))
    }

    fn problems(&self) -> Vec<KeyProblem> {
        let mut out = Vec::new();
        if self.mounts.is_empty() {
            out.push(KeyProblem::new(
                "mounts",
                "list at least one mount point, e.g. [/]",
            ));
        }
        for (i, m) in self.mounts.iter().enumerate() {
            if let Some(why) = not_plain_absolute(m) {
                out.push(KeyProblem::new(
                    format!("mounts[{i}]"),
                    format!("`{}` {why}", m.display()),
                ));
            }
            if self.mounts[..i].iter().any(|o| o == m) {
                out.push(KeyProblem::new(
                    format!("mounts[{i}]"),
                    format!("`{}` is listed twice", m.display()),
                ));
            }
        }
        if !self.probe && !self.probe_paths.is_empty() {
            out.push(KeyProblem::new(
                "probe-paths",
                "set, but `probe: false` turns the probe off",
            ));
        }
        for (mount, probe) in &self.probe_paths {
            let key = format!("probe-paths.{}", mount.display());
            if !self.mounts.contains(mount) {
                out.push(KeyProblem::new(
                    &key,
                    format!("`{}` is not one of `mounts`", mount.display()),
                ));
                continue;
            }
            if let Some(why) = not_plain_absolute(probe) {
                out.push(KeyProblem::new(
                    &key,
                    format!("`{}` {why}", probe.display()),
                ));
                continue;
            }
            if let Some(why) = probe_misplaced(mount, probe, &self.mounts) {
                out.push(KeyProblem::new(&key, why));
            }
        }
        out
    }

    fn build(&self, root: &Root) -> Result<Box<dyn Check>, String> {
        Ok(Box::new(Writable::new(
            self.clone(),
            root,
            ErrorsSince::Boot,
        )?))
    }

    fn build_on_condition(&self, root: &Root) -> Result<Box<dyn Check>, String> {
        Ok(Box::new(Writable::new(
            self.clone(),
            root,
            ErrorsSince::FirstSight,
        )?))
    }
}

/// Why `p` is not an absolute path without `.` or `..` (which would defeat the prefix rules).
fn not_plain_absolute(p: &Path) -> Option<&'static str> {
    if !p.is_absolute() {
        Some("is not an absolute path")
    } else if p
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        Some("must not contain `.` or `..`")
    } else {
        None
    }
}

/// The static half of "the probe is on the mount": it lies below the mount point, and no other
/// listed mount sits deeper on its way. (Unlisted mounts are caught at start-up.)
fn probe_misplaced(mount: &Path, probe: &Path, mounts: &[PathBuf]) -> Option<String> {
    if probe == mount || !probe.starts_with(mount) {
        return Some(format!(
            "probe `{}` is not below the mount point `{}`",
            probe.display(),
            mount.display()
        ));
    }
    mounts
        .iter()
        .find(|o| *o != mount && o.starts_with(mount) && probe.starts_with(o))
        .map(|o| {
            format!(
                "probe `{}` is on `{}`, another listed mount, not on `{}`",
                probe.display(),
                o.display(),
                mount.display()
            )
        })
}

/// One watched mount and what the last runs saw of it.
struct Watched {
    mount: PathBuf,
    /// The probe file as the node names it, when probing.
    probe: Option<PathBuf>,
    /// The filesystem last seen mounted there, and its error record.
    seen: Option<Seen>,
}

/// The filesystem seen mounted at a watched mount point: when another one is mounted there
/// (a new mount id or device), its error record is looked up afresh.
struct Seen {
    mount_id: u32,
    devno: (u32, u32),
    ext4: Option<Ext4Watch>,
}

pub struct Writable {
    root: Root,
    watched: Vec<Watched>,
    ext4_errors: bool,
    /// Which ext4 errors count against a filesystem: those of this boot, or only those
    /// recorded after this check first saw it mounted.
    errors_since: ErrorsSince,
    /// When the node booted (epoch seconds), to tell this boot's ext4 errors from old ones;
    /// read again while it cannot be read.
    boot_time: Result<u64, String>,
    /// `/proc/1/mountinfo`, kept open and read again from offset 0 at each run.
    mountinfo: KeptFile,
}

impl Writable {
    /// Finds each mount in the init namespace and writes its probe once: a mount point that
    /// is not mounted, or a probe that cannot live where it is asked to, stops start-up with
    /// the reason, before anything is armed.
    pub fn new(settings: Settings, root: &Root, errors_since: ErrorsSince) -> Result<Self, String> {
        let table = mountinfo::read_init(root).map_err(|e| e.to_string())?;
        let mut watched = Vec::new();
        for mount in &settings.mounts {
            let entry = mountinfo::top_by_root(&table, mount).ok_or_else(|| {
                format!(
                    "{} is not mounted (no entry in /proc/1/mountinfo); start wdfeed after it \
                     is mounted (systemd: RequiresMountsFor={}), or give the check \
                     `when: {{mounted: {}}}` if it is mounted only where the service runs",
                    mount.display(),
                    mount.display(),
                    mount.display()
                )
            })?;
            let probe = settings.probe.then(|| settings.probe_path(mount));
            if let Some(p) = &probe {
                probe::write(root, mount, (entry.major, entry.minor), p, Duration::ZERO)?;
            }
            watched.push(Watched {
                mount: mount.clone(),
                probe,
                seen: None,
            });
        }
        Ok(Writable {
            root: root.clone(),
            watched,
            ext4_errors: settings.ext4_errors,
            errors_since,
            boot_time: ext4::boot_time(root).map_err(|e| e.to_string()),
            mountinfo: mountinfo::kept_init(root),
        })
    }
}

impl Check for Writable {
    fn run(&mut self, now: Duration) -> Verdict {
        let table = match mountinfo::read_kept(&self.root, &mut self.mountinfo) {
            Ok(t) => t,
            Err(e) => return Verdict::unhealthy(format!("cannot read the mount table: {e}")),
        };
        if self.boot_time.is_err() && self.ext4_errors {
            self.boot_time = ext4::boot_time(&self.root).map_err(|e| e.to_string());
        }
        let mut bad = Vec::new();
        let mut good = Vec::new();
        for i in 0..self.watched.len() {
            match self.judge(i, &table, now) {
                Ok(fine) => good.push(fine),
                Err(why) => bad.push(why),
            }
        }
        if bad.is_empty() {
            Verdict::healthy(good.join("; "))
        } else {
            Verdict::unhealthy(bad.join("; "))
        }
    }
}

impl Writable {
    fn judge(&mut self, i: usize, table: &[MountEntry], now: Duration) -> Result<String, String> {
        let w = &mut self.watched[i];
        let m = w.mount.display();
        let entry = mountinfo::top_by_root(table, &w.mount)
            .ok_or_else(|| format!("{m} is not mounted (no entry in /proc/1/mountinfo)"))?;
        if entry.mount_read_only() {
            return Err(format!("{m} read-only in /proc/1/mountinfo"));
        }
        if entry.super_read_only() {
            return Err(format!(
                "{m} read-only in /proc/1/mountinfo (filesystem {} on {} is ro)",
                entry.fs_type, entry.source
            ));
        }
        let devno = (entry.major, entry.minor);
        let same = w
            .seen
            .as_ref()
            .is_some_and(|s| s.mount_id == entry.mount_id && s.devno == devno);
        if !same {
            w.seen = Some(Seen {
                mount_id: entry.mount_id,
                devno,
                ext4: if self.ext4_errors {
                    Ext4Watch::find(&self.root, entry, self.errors_since)
                } else {
                    None
                },
            });
        }
        let mut fine = vec![format!("{m} rw in /proc/1/mountinfo")];
        if let Some(x) = w.seen.as_mut().and_then(|s| s.ext4.as_mut()) {
            fine.push(x.judge(&self.root, &self.boot_time, &m.to_string())?);
        }
        if let Some(p) = &w.probe {
            probe::write(&self.root, &w.mount, devno, p, now)?;
            fine.push(format!("probe {} synced", p.display()));
        }
        Ok(fine.join(", "))
    }
}

mod probe;

mod ext4_watch;
pub use ext4_watch::ErrorsSince;
use ext4_watch::Ext4Watch;

#[cfg(test)]
mod tests;
