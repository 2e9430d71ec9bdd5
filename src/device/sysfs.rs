//! What `/sys/class/watchdog/watchdogN` says about each device, read WITHOUT opening it
//! (opening a watchdog arms it). `wdfeed info` and `wdfeed validate` use this. Under a root
//! other than `/`, every path is resolved inside the root, the last component too
//! (`class/watchdog/watchdog0` is a symlink into `/sys/devices` on a real node).

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::system::{sysfile, Root};

/// One watchdog as sysfs describes it; each attribute is `None` where the kernel does not
/// provide it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SysfsWatchdog {
    /// `watchdog0`.
    pub name: String,
    /// The device node as the node names it: `/dev/watchdog0`.
    pub device: PathBuf,
    pub identity: Option<String>,
    /// `active` or `inactive`.
    pub state: Option<String>,
    pub status: Option<u32>,
    pub options: Option<u32>,
    pub timeout: Option<u32>,
    pub min_timeout: Option<u32>,
    pub max_timeout: Option<u32>,
    pub pretimeout: Option<u32>,
    pub timeleft: Option<u32>,
    pub bootstatus: Option<u32>,
    pub nowayout: Option<bool>,
}

/// Every watchdog in `<root>/sys/class/watchdog`, in name order.
pub fn list(root: &Root) -> Vec<SysfsWatchdog> {
    let Ok(dir) = fs::read_dir(root.follow(root.sys("class/watchdog"))) else {
        return Vec::new();
    };
    let mut out: Vec<SysfsWatchdog> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .map(|name| read_one(root, &name))
        .collect();
    out.sort_by_key(|w| (w.name.len(), w.name.clone()));
    out
}

/// The sysfs entry of a device node: `/dev/watchdogN` is `watchdogN`; the legacy
/// `/dev/watchdog` is the first registered device, `watchdog0`, when sysfs has one.
pub fn find(root: &Root, node_path: &Path) -> Option<SysfsWatchdog> {
    let file = node_path.file_name()?.to_str()?;
    let name = if file == "watchdog" {
        "watchdog0"
    } else {
        file
    };
    if !root.follow(root.sys("class/watchdog").join(name)).exists() {
        return None;
    }
    Some(read_one(root, name))
}

/// The driver identity sysfs gives each of these device nodes, without opening anything
/// (`None` where sysfs has no entry, as for ipmi_watchdog).
pub fn identities<'a>(
    root: &Root,
    nodes: impl IntoIterator<Item = &'a Path>,
) -> Vec<Option<String>> {
    nodes
        .into_iter()
        .map(|node| find(root, node).and_then(|w| w.identity))
        .collect()
}

/// Device nodes under `<root>/dev` named watchdog* that sysfs knows nothing about
/// (ipmi_watchdog registers only the legacy /dev/watchdog).
pub fn nodes_without_sysfs(root: &Root, known: &[SysfsWatchdog]) -> Vec<PathBuf> {
    let Ok(dir) = fs::read_dir(root.follow(root.dev(""))) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.starts_with("watchdog"))
        .map(|n| Path::new("/dev").join(n))
        .filter(|node| {
            let alias_of_first =
                node == Path::new("/dev/watchdog") && known.iter().any(|w| w.name == "watchdog0");
            !alias_of_first && !known.iter().any(|w| &w.device == node)
        })
        .collect();
    out.sort();
    out
}

fn read_one(root: &Root, name: &str) -> SysfsWatchdog {
    let dir = root.sys("class/watchdog").join(name);
    let text = |attr: &str| -> Option<String> {
        parse_attr_text(&sysfile::read_capped(root, &dir.join(attr), sysfile::SMALL).ok()?)
    };
    let number = |attr: &str| text(attr).and_then(|t| parse_number(&t));
    SysfsWatchdog {
        name: name.to_string(),
        device: Path::new("/dev").join(name),
        identity: text("identity"),
        state: text("state"),
        status: number("status"),
        options: number("options"),
        timeout: number("timeout"),
        min_timeout: number("min_timeout"),
        max_timeout: number("max_timeout"),
        pretimeout: number("pretimeout"),
        timeleft: number("timeleft"),
        bootstatus: number("bootstatus"),
        nowayout: number("nowayout").map(|n| n != 0),
    }
}

/// An attribute's text, trimmed; `None` when empty.
pub(crate) fn parse_attr_text(raw: &str) -> Option<String> {
    let t = raw.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// sysfs prints some attributes in decimal and some (`status`, `options`) as `0x..`.
pub(crate) fn parse_number(t: &str) -> Option<u32> {
    match t.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree like the one a 6.1 kernel shows for i6300esb, plus a legacy-only node.
    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let wd = dir.path().join("sys/class/watchdog/watchdog0");
        fs::create_dir_all(&wd).unwrap();
        for (attr, val) in [
            ("identity", "i6300ESB timer\n"),
            ("state", "inactive\n"),
            ("status", "0x0\n"),
            ("options", "0x8180\n"),
            ("timeout", "30\n"),
            ("min_timeout", "1\n"),
            ("max_timeout", "2046\n"),
            ("bootstatus", "32\n"),
            ("nowayout", "0\n"),
            ("timeleft", "garbage\n"),
        ] {
            fs::write(wd.join(attr), val).unwrap();
        }
        fs::create_dir_all(dir.path().join("dev")).unwrap();
        for n in ["watchdog", "watchdog0", "watchdog1", "null"] {
            fs::write(dir.path().join("dev").join(n), "").unwrap();
        }
        dir
    }

    #[test]
    fn reads_every_attribute_without_opening_the_device() {
        let dir = fixture();
        let all = list(&Root::at(dir.path()));
        assert_eq!(all.len(), 1);
        let w = &all[0];
        assert_eq!(w.device, Path::new("/dev/watchdog0"));
        assert_eq!(w.identity.as_deref(), Some("i6300ESB timer"));
        assert_eq!(w.state.as_deref(), Some("inactive"));
        assert_eq!(w.options, Some(0x8180));
        assert_eq!(w.timeout, Some(30));
        assert_eq!(w.max_timeout, Some(2046));
        assert_eq!(w.bootstatus, Some(32));
        assert_eq!(w.nowayout, Some(false));
        assert_eq!(w.timeleft, None, "garbage reads as unknown");
        assert_eq!(w.pretimeout, None, "absent reads as unknown");
    }

    #[test]
    fn the_legacy_node_maps_to_the_first_device() {
        let dir = fixture();
        let root = Root::at(dir.path());
        assert_eq!(
            find(&root, Path::new("/dev/watchdog")).unwrap().name,
            "watchdog0"
        );
        assert!(find(&root, Path::new("/dev/watchdog1")).is_none());
        let known = list(&root);
        assert_eq!(
            nodes_without_sysfs(&root, &known),
            vec![PathBuf::from("/dev/watchdog1")]
        );
    }

    #[test]
    fn no_sysfs_at_all_is_an_empty_list() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list(&Root::at(dir.path())).is_empty());
    }

    #[test]
    fn a_device_entry_that_is_a_symlink_is_followed_inside_the_root() {
        // As on a real node: class/watchdog/watchdog0 links into /sys/devices, here to a
        // path only the fixture has.
        let dir = tempfile::tempdir().unwrap();
        let target = "/sys/devices/wdfeed-fixture-only/watchdog/watchdog0";
        assert!(!Path::new(target).exists());
        let real = dir.path().join(&target[1..]);
        fs::create_dir_all(&real).unwrap();
        fs::write(real.join("identity"), "iTCO_wdt\n").unwrap();
        fs::write(real.join("timeout"), "30\n").unwrap();
        fs::create_dir_all(dir.path().join("sys/class/watchdog")).unwrap();
        std::os::unix::fs::symlink(target, dir.path().join("sys/class/watchdog/watchdog0"))
            .unwrap();
        let root = Root::at(dir.path());
        let w = find(&root, Path::new("/dev/watchdog0")).expect("found inside the root");
        assert_eq!(w.identity.as_deref(), Some("iTCO_wdt"));
        assert_eq!(w.timeout, Some(30));
        assert_eq!(list(&root), vec![w]);
    }
}
