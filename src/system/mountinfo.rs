//! `/proc/<pid>/mountinfo`: which filesystem is mounted where, with which options.
//!
//! The `writable` check reads the init process's table (`/proc/1/mountinfo`): a sandboxed
//! service (systemd's ProtectSystem=) sees its own read-only view in `/proc/self`. This module
//! parses and looks up; deciding what "read-only" means for health is the check's job.

use std::path::Path;

use crate::system::sysfile::{self, LineError, ReadError};
use crate::system::Root;

/// One line of mountinfo, e.g.
/// `27 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_id: u32,
    pub parent_id: u32,
    pub major: u32,
    pub minor: u32,
    /// The path inside the filesystem that is mounted here (`/` unless a bind mount).
    pub fs_root: String,
    pub mount_point: String,
    /// Per-mount options (`ro` here: this mount alone is read-only).
    pub mount_opts: String,
    pub fs_type: String,
    pub source: String,
    /// Per-superblock options (`ro` here: the filesystem itself is read-only everywhere).
    pub super_opts: String,
}

impl MountEntry {
    pub fn mount_read_only(&self) -> bool {
        has_opt(&self.mount_opts, "ro")
    }

    pub fn super_read_only(&self) -> bool {
        has_opt(&self.super_opts, "ro")
    }

    /// A FUSE mount made by a user other than root (`user_id=1000` in its superblock
    /// options): fusermount mounts in the init namespace, on a directory the user may write.
    pub fn made_by_a_user(&self) -> bool {
        let t = self.fs_type.as_str();
        (t == "fuse" || t == "fuseblk" || t.starts_with("fuse."))
            && self
                .super_opts
                .split(',')
                .filter_map(|o| o.strip_prefix("user_id="))
                .any(|uid| uid != "0")
    }
}

fn has_opt(opts: &str, want: &str) -> bool {
    opts.split(',').any(|o| o == want)
}

/// Reads `<root>/proc/1/mountinfo`, the init mount namespace.
pub fn read_init(root: &Root) -> Result<Vec<MountEntry>, ReadError> {
    let path = root.proc("1/mountinfo");
    let text = sysfile::read_capped(root, &path, sysfile::MOUNTINFO)?;
    parse(&text).map_err(|e| e.in_file(root.node_name(&path)))
}

/// `/proc/1/mountinfo` kept open for runs that repeat: see [`sysfile::KeptFile`].
pub fn kept_init(root: &Root) -> sysfile::KeptFile {
    sysfile::KeptFile::new(root.proc("1/mountinfo"))
}

/// [`read_init`] through a descriptor kept open by [`kept_init`].
pub fn read_kept(root: &Root, kept: &mut sysfile::KeptFile) -> Result<Vec<MountEntry>, ReadError> {
    let text = kept.read(root, sysfile::MOUNTINFO)?;
    parse(&text).map_err(|e| e.in_file(root.node_name(kept.view_path())))
}

/// Parses a whole mountinfo table. Any malformed line is an error: a table we half
/// understand could hide the very mount we are asked about.
pub fn parse(text: &str) -> Result<Vec<MountEntry>, LineError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(parse_line(line).map_err(|what| LineError::new(i + 1, what))?);
    }
    if out.is_empty() {
        return Err(LineError::new(1, "no mounts listed"));
    }
    Ok(out)
}

fn parse_line(line: &str) -> Result<MountEntry, String> {
    let (left, right) = line
        .split_once(" - ")
        .ok_or_else(|| format!("no ` - ` separator in `{}`", sysfile::shorten(line)))?;
    let mut l = left.split(' ');
    let mut field = |name: &str| l.next().ok_or_else(|| format!("{name} missing"));
    let mount_id = parse_u32("mount id", field("mount id")?)?;
    let parent_id = parse_u32("parent id", field("parent id")?)?;
    let devno = field("major:minor")?;
    let fs_root = unescape(field("root")?);
    let mount_point = unescape(field("mount point")?);
    let mount_opts = field("mount options")?.to_string();
    let (major, minor) = devno
        .split_once(':')
        .ok_or_else(|| format!("major:minor `{}` has no colon", sysfile::shorten(devno)))?;
    let mut r = right.split(' ');
    let mut field = |name: &str| r.next().ok_or_else(|| format!("{name} missing"));
    let fs_type = field("filesystem type")?.to_string();
    let source = unescape(field("source")?);
    let super_opts = field("superblock options")?.to_string();
    Ok(MountEntry {
        mount_id,
        parent_id,
        major: parse_u32("major", major)?,
        minor: parse_u32("minor", minor)?,
        fs_root,
        mount_point,
        mount_opts,
        fs_type,
        source,
        super_opts,
    })
}

fn parse_u32(item: &str, text: &str) -> Result<u32, String> {
    text.parse()
        .map_err(|_| format!("{item} `{}` is not a number", sysfile::shorten(text)))
}

/// The mount on top at `mount_point`: the last of the entries stacked there.
pub fn top<'a>(table: &'a [MountEntry], mount_point: &Path) -> Option<&'a MountEntry> {
    // Compared as paths, so `/srv/` in a config finds `/srv`.
    table
        .iter()
        .rev()
        .find(|e| Path::new(&e.mount_point) == mount_point)
}

/// [`top`], not counting FUSE mounts an unprivileged user made there: what the node serves at
/// `mount_point`, which no other user can hide or fake.
pub fn top_by_root<'a>(table: &'a [MountEntry], mount_point: &Path) -> Option<&'a MountEntry> {
    table
        .iter()
        .rev()
        .find(|e| Path::new(&e.mount_point) == mount_point && !e.made_by_a_user())
}

/// mountinfo escapes space, tab, newline and backslash as three octal digits (`\040`).
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (c, octal) {
            (b'\\', Some(&[d0, d1, d2])) => {
                let v = u32::from(d0 - b'0') * 64 + u32::from(d1 - b'0') * 8 + u32::from(d2 - b'0');
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from a Debian 12 guest and a container host (6.1 and 6.18 kernels).
    const REAL: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
27 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
28 27 0:25 / /mnt/sandbox ro,nosuid,nodev,relatime - tmpfs none ro,size=4k,mode=755
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 master:3 - cgroup2 cgroup2 rw
52 27 254:16 / /srv/data\\040dir rw,noatime - xfs /dev/vdb rw,attr2,inode64
53 27 254:17 / /srv/old ro,relatime - ext4 /dev/vdc ro
54 27 254:18 / /srv/sb rw,relatime - ext4 /dev/vdd ro
";

    #[test]
    fn parses_real_lines_with_optional_fields_and_escapes() {
        let t = parse(REAL).unwrap();
        assert_eq!(t.len(), 8);
        let root = top(&t, Path::new("/")).unwrap();
        assert_eq!((root.major, root.minor), (254, 1));
        assert_eq!(root.fs_type, "ext4");
        assert_eq!(root.source, "/dev/vda1");
        assert!(!root.mount_read_only() && !root.super_read_only());
        assert_eq!(t[4].super_opts, "rw");
        assert_eq!(t[5].mount_point, "/srv/data dir");
        assert!(t[6].mount_read_only());
        assert!(t[7].super_read_only() && !t[7].mount_read_only());
    }

    #[test]
    fn the_last_stacked_mount_is_on_top() {
        let t =
            parse("27 1 254:1 / /x rw - ext4 /dev/a rw\n28 27 254:2 / /x ro - ext4 /dev/b ro\n")
                .unwrap();
        assert_eq!(top(&t, Path::new("/x")).unwrap().source, "/dev/b");
        assert!(top(&t, Path::new("/y")).is_none());
    }

    #[test]
    fn truncated_and_garbage_lines_are_errors_with_a_line_number() {
        for (bad, line) in [
            ("27 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1", 1),
            (
                "22 27 0:21 / /proc rw,relatime - proc proc rw\n27 1 254:1 / /",
                2,
            ),
            ("27 1 254-1 / / rw - ext4 /dev/vda1 rw", 1),
            ("x 1 254:1 / / rw - ext4 /dev/vda1 rw", 1),
            ("27 1 99999999999:1 / / rw - ext4 /dev/vda1 rw", 1),
            ("\u{0}\u{1}garbage", 1),
            ("", 1),
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.line, line, "{bad:?}: {e:?}");
        }
    }

    #[test]
    fn huge_tables_parse_and_huge_lines_fail_cleanly() {
        let many: String = (0..20_000)
            .map(|i| format!("{i} 1 0:{i} / /m/{i} rw - tmpfs tmpfs rw\n"))
            .collect();
        assert_eq!(parse(&many).unwrap().len(), 20_000);
        let long = format!("1 1 0:1 / /{} rw", "a".repeat(1_000_000));
        assert!(parse(&long).is_err());
    }

    #[test]
    fn unescape_leaves_odd_backslashes_alone() {
        assert_eq!(unescape("a\\040b"), "a b");
        assert_eq!(unescape("a\\\\b\\"), "a\\\\b\\");
        assert_eq!(unescape("\\777\\08"), "?\\08");
    }
}
