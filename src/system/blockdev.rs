//! `/sys/block` and `/sys/dev/block`: which disks the node has, their in-flight requests, the
//! state of their SCSI (or NVMe) device, and which kernel name a `major:minor` stands for.

use std::io::ErrorKind;

use crate::system::sysfile::{self, ReadError};
use crate::system::Root;

/// Whole disks under `<root>/sys/block`, by kernel name, sorted (partitions are not listed
/// there). Names keep sysfs's `!` for `/` (`cciss!c0d0`); see [`diskstats_name`].
pub fn disks(root: &Root) -> Result<Vec<String>, ReadError> {
    let path = root.sys("block");
    let dir = std::fs::read_dir(root.follow(&path))
        .map_err(|e| ReadError::new(root.node_name(&path), None, e.to_string()))?;
    // A directory entry that cannot be read is an error, never a disk quietly left out.
    let mut out = Vec::new();
    for entry in dir {
        let entry =
            entry.map_err(|e| ReadError::new(root.node_name(&path), None, e.to_string()))?;
        out.push(entry.file_name().to_string_lossy().into_owned());
    }
    out.sort();
    Ok(out)
}

/// Devices that are not disks in the sense of "a stuck one means a sick node": loop devices
/// follow their backing file, ram and zram live in memory.
pub fn is_memory_or_loop(name: &str) -> bool {
    ["loop", "ram", "zram"].iter().any(|p| {
        name.strip_prefix(p)
            .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// Devices whose I/O reflects the network and a remote node rather than this one: DRBD
/// (with protocol C a Primary's writes wait for the peer) and NBD (the server). A stall there
/// is a peer's or a server's fault; the drbd check watches DRBD.
pub fn is_network_backed(name: &str) -> bool {
    ["drbd", "nbd"].iter().any(|p| {
        name.strip_prefix(p)
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// How deep [`stacked_on_network`] follows `slaves/`: device-mapper over md over a disk is
/// three; a loop in a fixture tree must not spin.
const MAX_STACK: usize = 8;

/// Whether `dev` is stacked (through `<root>/sys/block/<dev>/slaves`, at any depth) on a
/// network-backed device: LVM or dm-crypt on DRBD stalls with it. A `slaves` directory that
/// cannot be read counts as none.
pub fn stacked_on_network(root: &Root, dev: &str) -> bool {
    fn walk(root: &Root, dev: &str, depth: usize) -> bool {
        if depth >= MAX_STACK {
            return false;
        }
        let dir = root.follow(root.sys(format!("block/{dev}/slaves")));
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            // A slave may be a partition (`drbd0` has none, but `nbd0p1` may): its disk is
            // the name up to the partition suffix, and its own slaves are the disk's.
            is_network_backed(&name)
                || is_network_backed(name.split('p').next().unwrap_or_default())
                || walk(root, &name, depth + 1)
        })
    }
    walk(root, dev, 0)
}

/// `/proc/diskstats` writes `/` where `/sys/block` has `!` (`cciss/c0d0` vs `cciss!c0d0`).
pub fn diskstats_name(sys_name: &str) -> String {
    sys_name.replace('!', "/")
}

/// `<root>/sys/block/<dev>/inflight`: requests in flight, reads and writes.
pub fn inflight(root: &Root, dev: &str) -> Result<(u64, u64), ReadError> {
    let path = root.sys(format!("block/{dev}/inflight"));
    let text = sysfile::read_capped(root, &path, sysfile::SMALL)?;
    parse_inflight(&text).map_err(|what| ReadError::new(root.node_name(&path), None, what))
}

/// `       0        3` (reads, writes).
pub fn parse_inflight(text: &str) -> Result<(u64, u64), String> {
    let mut it = text.split_whitespace();
    match (it.next(), it.next(), it.next()) {
        (Some(r), Some(w), None) => Ok((
            sysfile::parse_u64("reads in flight", r)?,
            sysfile::parse_u64("writes in flight", w)?,
        )),
        _ => Err(format!(
            "expected two counters, found `{}`",
            sysfile::shorten(text.trim())
        )),
    }
}

/// `<root>/sys/block/<dev>/device/state`, trimmed; `None` when the device has none (virtio-blk,
/// dm, md: only SCSI disks and NVMe controllers have one).
pub fn device_state(root: &Root, dev: &str) -> Option<Result<String, ReadError>> {
    let path = root.sys(format!("block/{dev}/device/state"));
    match sysfile::read_capped(root, &path, sysfile::SMALL) {
        // Quoted in evidence: an excerpt, never the whole file.
        Ok(text) => Some(Ok(sysfile::shorten(text.trim()))),
        Err(_) if matches!(std::fs::metadata(root.follow(&path)), Err(e) if e.kind() == ErrorKind::NotFound) => {
            None
        }
        Err(e) => Some(Err(e)),
    }
}

/// The kernel name of block device `major:minor` (`vda1`, `dm-0`), from
/// `<root>/sys/dev/block/M:m/uevent`'s `DEVNAME=`.
pub fn name_of(root: &Root, major: u32, minor: u32) -> Option<String> {
    let path = root.sys(format!("dev/block/{major}:{minor}/uevent"));
    let text = sysfile::read_capped(root, &path, sysfile::SMALL).ok()?;
    devname(&text)
}

pub(crate) fn devname(uevent: &str) -> Option<String> {
    uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .map(str::trim)
        .filter(|n| !n.is_empty() && !n.contains(".."))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflight_real_and_broken() {
        assert_eq!(parse_inflight("       0        0\n"), Ok((0, 0)));
        assert_eq!(parse_inflight("       1        3\n"), Ok((1, 3)));
        for bad in [
            "",
            "0",
            "0 0 0",
            "a b",
            "-1 0",
            "99999999999999999999 0",
            "\u{0}",
        ] {
            assert!(parse_inflight(bad).is_err(), "{bad:?}");
        }
        assert!(parse_inflight(&"1 ".repeat(100_000)).is_err());
    }

    #[test]
    fn drbd_and_nbd_are_network_backed_and_so_is_what_is_stacked_on_them() {
        for n in ["drbd0", "drbd12", "nbd0", "nbd15"] {
            assert!(is_network_backed(n), "{n}");
        }
        for n in ["drbd", "nbd", "drbd0p1x", "sda", "dm-0", "vdrbd0", "md0"] {
            assert!(!is_network_backed(n), "{n}");
        }
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        let slave = |dev: &str, of: &str| {
            let d = root.sys(format!("block/{dev}/slaves"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(of), "").unwrap();
        };
        slave("dm-0", "drbd0"); // LVM on DRBD
        slave("dm-1", "dm-0"); // a snapshot of it
        slave("dm-2", "sda2"); // LVM on a local disk
        slave("dm-3", "nbd0p1");
        slave("md0", "md0"); // a loop: ends
        assert!(stacked_on_network(&root, "dm-0"));
        assert!(stacked_on_network(&root, "dm-1"));
        assert!(!stacked_on_network(&root, "dm-2"));
        assert!(stacked_on_network(&root, "dm-3"));
        assert!(!stacked_on_network(&root, "md0"));
        assert!(!stacked_on_network(&root, "sda"));
    }

    #[test]
    fn memory_and_loop_devices_are_recognised_by_name() {
        for n in ["loop0", "loop12", "ram0", "zram0"] {
            assert!(is_memory_or_loop(n), "{n}");
        }
        for n in [
            "vda",
            "sda",
            "nvme0n1",
            "dm-0",
            "loopy",
            "ramdisk-sda",
            "md0",
        ] {
            assert!(!is_memory_or_loop(n), "{n}");
        }
    }

    #[test]
    fn uevent_devname() {
        // A partition's uevent: the disk's as captured (254:0), plus the PARTN= partitions add.
        let real = "MAJOR=254\nMINOR=1\nDEVNAME=vda1\nDEVTYPE=partition\nDISKSEQ=1\nPARTN=1\n";
        assert_eq!(devname(real).as_deref(), Some("vda1"));
        assert_eq!(devname("MAJOR=254\n"), None);
        assert_eq!(devname("DEVNAME=\n"), None);
        assert_eq!(devname("DEVNAME=../../x\n"), None);
        assert_eq!(diskstats_name("cciss!c0d0"), "cciss/c0d0");
    }

    #[test]
    fn fixture_tree_lookups() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        for d in ["vda", "sda", "loop0"] {
            std::fs::create_dir_all(root.sys(format!("block/{d}"))).unwrap();
        }
        std::fs::create_dir_all(root.sys("block/sda/device")).unwrap();
        std::fs::write(root.sys("block/sda/device/state"), "offline\n").unwrap();
        assert_eq!(disks(&root).unwrap(), ["loop0", "sda", "vda"]);
        assert_eq!(device_state(&root, "sda"), Some(Ok("offline".into())));
        assert_eq!(device_state(&root, "vda"), None);
        assert!(inflight(&root, "vda")
            .unwrap_err()
            .to_string()
            .starts_with("/sys/block/vda/inflight"));
    }

    #[test]
    fn a_device_state_is_quoted_as_a_short_escaped_excerpt() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        std::fs::create_dir_all(root.sys("block/sda/device")).unwrap();
        let long = format!("offline\x1b[2J{}", "z".repeat(5000));
        std::fs::write(root.sys("block/sda/device/state"), long).unwrap();
        let s = device_state(&root, "sda").unwrap().unwrap();
        assert!(s.starts_with("offline\\u{1b}[2J"), "{s}");
        assert!(
            s.chars().count() <= sysfile::EXCERPT_CHARS + 8,
            "{}",
            s.len()
        );
    }

    #[test]
    fn a_sys_block_that_is_a_symlink_is_followed_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        let target = "/sys/devices/wdfeed-fixture-only/block";
        assert!(!std::path::Path::new(target).exists());
        std::fs::create_dir_all(dir.path().join(&target[1..]).join("vdb/device")).unwrap();
        std::fs::write(
            dir.path().join(&target[1..]).join("vdb/device/state"),
            "running\n",
        )
        .unwrap();
        std::os::unix::fs::symlink(target, dir.path().join("sys/block")).unwrap();
        assert_eq!(disks(&root).unwrap(), ["vdb"]);
        assert_eq!(device_state(&root, "vdb"), Some(Ok("running".into())));
        assert_eq!(device_state(&root, "vdc"), None);
    }
}
