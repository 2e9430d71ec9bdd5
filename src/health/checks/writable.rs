//! `writable`: the listed mount points still take writes.
//!
//! Three signals per mount, because none is enough alone:
//! - the mount is not `ro` in the init mount namespace (`/proc/1/mountinfo`, per-mount and
//!   per-superblock options). Not `/proc/self`: a systemd sandbox (ProtectSystem=) shows
//!   read-only mounts to this process alone.
//! - a write probe: a file on that filesystem, opened (and created) once at start-up, gets a
//!   `pwrite` and an `fdatasync` every run. On 6.1 an ext4 error with `errors=remount-ro`
//!   leaves mountinfo saying `rw`; the probe gets EROFS or EIO. A probe that hangs on a dead
//!   disk is the runner's business: the run misses its deadline.
//! - for ext2/3/4, the superblock's error record (`/sys/fs/ext4/<dev>/`): the error count rose
//!   since start-up, or the last error happened during this boot.
//!
//! What it cannot see: a filesystem that takes writes but loses them (a lying disk cache), a
//! mount that is fine while its contents are not.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{CheckKind, KeyProblem};
use crate::health::{Check, Verdict};
use crate::system::mountinfo::{self, MountEntry};
use crate::system::sysfile::KeptFile;
use crate::system::{ext4, Root};

/// The probe file's name when `probe-paths` does not say otherwise.
pub const PROBE_NAME: &str = ".wdfeed-probe";

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Mount points that must stay writable (default `/`).
    #[serde(default = "default_mounts")]
    pub mounts: Vec<PathBuf>,
    /// Write and sync a probe file on each mount every run (default on).
    #[serde(default = "yes")]
    pub probe: bool,
    /// Probe file per mount point, where `<mount>/.wdfeed-probe` will not do.
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
    /// The probe file for `mount`: its `probe-paths` entry or `<mount>/.wdfeed-probe`.
    pub fn probe_path(&self, mount: &Path) -> PathBuf {
        match self.probe_paths.get(mount) {
            Some(p) => p.clone(),
            None => mount.join(PROBE_NAME),
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
        Ok(Box::new(Writable::new(self.clone(), root)?))
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

/// One watched mount, as found at start-up.
struct Watched {
    mount: PathBuf,
    /// `major:minor` at start-up: if another filesystem is mounted there later, the probe
    /// (opened on the old one) no longer tells anything about it.
    devno: (u32, u32),
    probe: Option<Probe>,
    ext4: Option<Ext4Watch>,
}

struct Probe {
    file: File,
    /// As the node names it, for evidence.
    path: PathBuf,
}

pub struct Writable {
    root: Root,
    watched: Vec<Watched>,
    /// When the node booted (epoch seconds), to tell this boot's ext4 errors from old ones;
    /// read again while it cannot be read.
    boot_time: Result<u64, String>,
    /// `/proc/1/mountinfo`, kept open and read again from offset 0 at each run.
    mountinfo: KeptFile,
}

impl Writable {
    /// Finds each mount in the init namespace, opens (creating if needed) its probe and reads
    /// its ext4 error count: everything a run needs, so a run creates nothing.
    pub fn new(settings: Settings, root: &Root) -> Result<Self, String> {
        let table = mountinfo::read_init(root).map_err(|e| e.to_string())?;
        let mut watched = Vec::new();
        for mount in &settings.mounts {
            let entry = mountinfo::top(&table, mount).ok_or_else(|| {
                format!(
                    "{} is not mounted (no entry in /proc/1/mountinfo); start wdfeed after it \
                     is mounted (systemd: RequiresMountsFor={})",
                    mount.display(),
                    mount.display()
                )
            })?;
            let probe = if settings.probe {
                Some(open_probe(root, mount, &settings.probe_path(mount))?)
            } else {
                None
            };
            let ext4 = if settings.ext4_errors {
                Ext4Watch::find(root, entry)
            } else {
                None
            };
            watched.push(Watched {
                mount: mount.clone(),
                devno: (entry.major, entry.minor),
                probe,
                ext4,
            });
        }
        Ok(Writable {
            root: root.clone(),
            watched,
            boot_time: ext4::boot_time(root).map_err(|e| e.to_string()),
            mountinfo: mountinfo::kept_init(root),
        })
    }
}

fn open_probe(root: &Root, mount: &Path, node_path: &Path) -> Result<Probe, String> {
    let path = root.resolve(node_path);
    let what =
        |action: &str, e: std::io::Error| format!("probe {}: {action}: {e}", node_path.display());
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        // A probe path that is a symlink could make wdfeed scribble on someone else's file.
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| what("cannot open", e))?;
    let probe_dev = file.metadata().map_err(|e| what("fstat", e))?.dev();
    let mount_dev = std::fs::metadata(root.follow(mount))
        .map_err(|e| what(&format!("stat {}", mount.display()), e))?
        .dev();
    if probe_dev != mount_dev {
        return Err(format!(
            "probe {} is not on the filesystem mounted at {} (another mount lies on its way); \
             set probe-paths for it",
            node_path.display(),
            mount.display()
        ));
    }
    let probe = Probe {
        file,
        path: node_path.to_path_buf(),
    };
    // Allocates the probe's block now, so a run overwrites in place and never needs space.
    probe.write(Duration::ZERO)?;
    Ok(probe)
}

impl Probe {
    fn write(&self, now: Duration) -> Result<(), String> {
        let stamp = format!("wdfeed probe {:>20}\n", now.as_millis());
        self.file
            .write_all_at(stamp.as_bytes(), 0)
            .map_err(|e| format!("probe {}: write: {e}", self.path.display()))?;
        self.file
            .sync_data()
            .map_err(|e| format!("probe {}: fdatasync: {e}", self.path.display()))
    }
}

impl Check for Writable {
    fn run(&mut self, now: Duration) -> Verdict {
        let table = match mountinfo::read_kept(&self.root, &mut self.mountinfo) {
            Ok(t) => t,
            Err(e) => return Verdict::unhealthy(format!("cannot read the mount table: {e}")),
        };
        if self.boot_time.is_err() && self.watched.iter().any(|w| w.ext4.is_some()) {
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
        let entry = mountinfo::top(table, &w.mount)
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
        if (entry.major, entry.minor) != w.devno {
            return Err(format!(
                "{m} is now {}:{}, was {}:{} at start-up: the probe watches the old filesystem \
                 (restart wdfeed after replacing a watched mount)",
                entry.major, entry.minor, w.devno.0, w.devno.1
            ));
        }
        let mut fine = vec![format!("{m} rw in /proc/1/mountinfo")];
        if let Some(x) = &mut w.ext4 {
            fine.push(x.judge(&self.root, &self.boot_time, &m.to_string())?);
        }
        if let Some(p) = &w.probe {
            p.write(now)?;
            fine.push(format!("probe {} synced", p.path.display()));
        }
        Ok(fine.join(", "))
    }
}

mod ext4_watch;
use ext4_watch::Ext4Watch;

#[cfg(test)]
mod tests;
