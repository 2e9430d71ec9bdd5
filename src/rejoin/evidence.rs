//! What the kernel says of how the previous boot ended, to name the cause in the log: a
//! watchdog's bootstatus with WDIOF_CARDRESET (sysfs), and the FENCE line wdfeed wrote to
//! pstore's message log (/sys/fs/pstore), where the platform keeps one. Read under the root.

use std::fs;
use std::io::Read;
use std::path::PathBuf;

use crate::device::flags::WDIOF_CARDRESET;
use crate::device::sysfs;
use crate::system::Root;

/// The most of one pstore file read.
const MAX_PSTORE_BYTES: u64 = 256 * 1024;

/// One sentence per piece of evidence found; empty if the kernel says nothing.
pub fn causes(root: &Root, devices: &[PathBuf]) -> Vec<String> {
    let mut found = Vec::new();
    for d in devices {
        if let Some(b) = sysfs::find(root, d).and_then(|w| w.bootstatus) {
            if b & WDIOF_CARDRESET != 0 {
                found.push(format!(
                    "{} reports WDIOF_CARDRESET (bootstatus {b}): the watchdog reset the node",
                    d.display()
                ));
            }
        }
    }
    if let Some(line) = pstore_fence_line(root) {
        found.push(format!("pstore keeps the previous boot's fence: {line}"));
    }
    found
}

/// The last `wdfeed: FENCE` line in a pstore message log, cut to 300 characters.
fn pstore_fence_line(root: &Root) -> Option<String> {
    let dir = root.sys("fs/pstore");
    let mut names: Vec<_> = fs::read_dir(root.follow(dir))
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    names.sort();
    let mut last = None;
    for p in names {
        let mut bytes = Vec::new();
        let Ok(f) = fs::File::open(&p) else { continue };
        if f.take(MAX_PSTORE_BYTES).read_to_end(&mut bytes).is_err() {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Some(l) = text.lines().rev().find(|l| l.contains("wdfeed: FENCE")) {
            let l = l.trim_start_matches(|c: char| c == '<' || c.is_ascii_digit() || c == '>');
            last = Some(l.chars().take(300).collect());
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cardreset_and_a_pstore_fence_line_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        assert!(causes(&root, &[PathBuf::from("/dev/watchdog0")]).is_empty());
        let w = dir.path().join("sys/class/watchdog/watchdog0");
        fs::create_dir_all(&w).unwrap();
        fs::write(w.join("bootstatus"), "32\n").unwrap();
        fs::write(w.join("dev"), "247:0\n").unwrap();
        let p = dir.path().join("sys/fs/pstore");
        fs::create_dir_all(&p).unwrap();
        fs::write(
            p.join("pmsg-ramoops-0"),
            "noise\n<2>wdfeed: FENCE check=process fakehb evidence=gone bound=9s mode=watchdog\n",
        )
        .unwrap();
        let c = causes(&root, &[PathBuf::from("/dev/watchdog0")]);
        assert!(c.iter().any(|l| l.contains("WDIOF_CARDRESET")), "{c:?}");
        assert!(
            c.iter()
                .any(|l| l.contains("wdfeed: FENCE check=process fakehb") && !l.contains("<2>")),
            "{c:?}"
        );
        fs::write(w.join("bootstatus"), "0\n").unwrap();
        let c = causes(&root, &[PathBuf::from("/dev/watchdog0")]);
        assert!(!c.iter().any(|l| l.contains("WDIOF_CARDRESET")), "{c:?}");
    }
}
