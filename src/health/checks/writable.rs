//! `writable`: the listed mount points are not read-only in the init mount namespace.
//!
//! Reads `/proc/1/mountinfo`, not `/proc/self`: a systemd sandbox (ProtectSystem=) shows
//! read-only mounts to this process alone.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::KeyProblem;
use crate::health::{Check, Verdict};
use crate::system::Root;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Mount points that must stay writable (default `/`).
    #[serde(default = "default_mounts")]
    pub mounts: Vec<PathBuf>,
}

fn default_mounts() -> Vec<PathBuf> {
    vec![PathBuf::from("/")]
}

impl Settings {
    pub fn label(&self) -> String {
        let names: Vec<String> = self
            .mounts
            .iter()
            .map(|m| m.display().to_string())
            .collect();
        format!("writable {}", names.join(","))
    }

    pub fn problems(&self) -> Vec<KeyProblem> {
        let mut out = Vec::new();
        if self.mounts.is_empty() {
            out.push(KeyProblem::new(
                "mounts",
                "list at least one mount point, e.g. [/]",
            ));
        }
        for (i, m) in self.mounts.iter().enumerate() {
            if !m.is_absolute() {
                out.push(KeyProblem::new(
                    format!("mounts[{i}]"),
                    format!("`{}` is not an absolute path", m.display()),
                ));
            }
        }
        out
    }
}

pub struct Writable {
    settings: Settings,
    mountinfo: PathBuf,
}

impl Writable {
    pub fn new(settings: Settings, root: &Root) -> Result<Self, String> {
        Ok(Writable {
            settings,
            mountinfo: root.proc("1/mountinfo"),
        })
    }
}

impl Check for Writable {
    fn run(&mut self, _now: Duration) -> Verdict {
        let text = match std::fs::read_to_string(&self.mountinfo) {
            Ok(t) => t,
            Err(e) => {
                return Verdict::unhealthy(format!("cannot read {}: {e}", self.mountinfo.display()))
            }
        };
        for mount in &self.settings.mounts {
            let want = mount.to_string_lossy();
            // The last entry for a mount point is the one on top.
            let entry = text
                .lines()
                .filter_map(parse_line)
                .filter(|e| e.mount_point == want)
                .last();
            match entry {
                None => return Verdict::unhealthy(format!("{want} is not mounted")),
                Some(e) if e.read_only => {
                    return Verdict::unhealthy(format!("{want} read-only in /proc/1/mountinfo"))
                }
                Some(_) => {}
            }
        }
        Verdict::healthy(format!(
            "{} writable in /proc/1/mountinfo",
            self.settings.label().trim_start_matches("writable ")
        ))
    }
}

struct MountEntry {
    mount_point: String,
    read_only: bool,
}

/// One line of mountinfo: `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`.
fn parse_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let fields: Vec<&str> = left.split(' ').collect();
    let mount_point = unescape(fields.get(4)?);
    let mount_opts = fields.get(5)?;
    let super_opts = right.split(' ').nth(2).unwrap_or("");
    let has_ro = |opts: &str| opts.split(',').any(|o| o == "ro");
    Some(MountEntry {
        mount_point,
        read_only: has_ro(mount_opts) || has_ro(super_opts),
    })
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let (b'\\', Some(d)) = (b[i], octal) {
            let v =
                u32::from(d[0] - b'0') * 64 + u32::from(d[1] - b'0') * 8 + u32::from(d[2] - b'0');
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
