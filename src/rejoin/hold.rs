//! Holds on READY=1 that only an operator ends (`wdfeed rejoin-now`): the fence budget spent
//! ([`super::budget`]), or the kernel command-line word `wdfeed.hold`, for an operator who
//! must boot a sick node without it joining its cluster. wdfeed arms and pets meanwhile.
//!
//! The hold of this boot is kept on tmpfs (the runtime directory, beside the fence record):
//! a wdfeed restarted while held holds again, and one restarted after `rejoin-now` does not.
//!
//! ```text
//! wdfeed hold 1
//! boot <boot id>
//! held fence-budget | held kernel-command-line | released
//! ```

use std::io;
use std::path::{Path, PathBuf};

use crate::system::io::{read_capped, write_atomically, Durability, Links, ReadError};
use crate::system::{sysfile, Root};

/// The kernel command-line word that holds READY=1.
pub const WORD: &str = "wdfeed.hold";
/// The file's name in the runtime directory.
pub const FILE_NAME: &str = "hold";
const MAGIC: &str = "wdfeed hold 1";

/// What holds READY=1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldBy {
    Budget,
    KernelWord,
}

impl HoldBy {
    pub fn word(self) -> &'static str {
        match self {
            HoldBy::Budget => "fence-budget",
            HoldBy::KernelWord => "kernel-command-line",
        }
    }

    fn from_word(w: &str) -> Option<Self> {
        [HoldBy::Budget, HoldBy::KernelWord]
            .into_iter()
            .find(|h| h.word() == w)
    }
}

/// What the runtime directory says of a hold in this boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// No hold was decided in this boot.
    Nothing,
    Held(HoldBy),
    /// An operator released it.
    Released,
}

pub fn path_in(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join(FILE_NAME)
}

/// The mark of this boot. A file that names this boot but cannot be read holds (the safe
/// side: the operator releases it).
pub fn read(runtime_dir: &Path, boot_id: &str) -> Mark {
    let text = match read_capped(&path_in(runtime_dir), 1024, Links::Refuse) {
        Err(ReadError::NotFound) => return Mark::Nothing,
        Err(_) => return Mark::Held(HoldBy::Budget),
        Ok(t) => t,
    };
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Mark::Held(HoldBy::Budget);
    }
    match lines.next().and_then(|l| l.strip_prefix("boot ")) {
        Some(b) if b == boot_id => {}
        Some(_) => return Mark::Nothing,
        None => return Mark::Held(HoldBy::Budget),
    }
    match lines.next() {
        Some("released") => Mark::Released,
        Some(l) => l
            .strip_prefix("held ")
            .and_then(HoldBy::from_word)
            .map_or(Mark::Held(HoldBy::Budget), Mark::Held),
        None => Mark::Held(HoldBy::Budget),
    }
}

/// Writes the mark of this boot (a temporary file renamed over the old one).
pub fn write(runtime_dir: &Path, boot_id: &str, mark: Mark) -> io::Result<()> {
    let state = match mark {
        Mark::Nothing => return Ok(()),
        Mark::Held(by) => format!("held {}", by.word()),
        Mark::Released => "released".into(),
    };
    let text = format!("{MAGIC}\nboot {boot_id}\n{state}\n");
    write_atomically(
        &path_in(runtime_dir),
        text.as_bytes(),
        0o600,
        Durability::Unsynced,
    )
}

/// Whether the kernel command line (`/proc/cmdline` under `root`) holds the word
/// [`WORD`]. An unreadable command line is an error for the caller to log: no hold.
pub fn kernel_word(root: &Root) -> Result<bool, String> {
    let path = root.proc("cmdline");
    let text = sysfile::read_capped(root, &path, sysfile::SMALL)
        .map_err(|e| format!("cannot read the kernel command line: {e}"))?;
    Ok(text.split_whitespace().any(|w| w == WORD))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const BOOT: &str = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
    const OTHER: &str = "ffffffff-4f50-6172-8394-a5b6c7d8e9f0";

    #[test]
    fn the_mark_of_this_boot_reads_back_and_another_boot_s_is_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path(), BOOT), Mark::Nothing);
        write(dir.path(), BOOT, Mark::Held(HoldBy::KernelWord)).unwrap();
        assert_eq!(read(dir.path(), BOOT), Mark::Held(HoldBy::KernelWord));
        assert_eq!(read(dir.path(), OTHER), Mark::Nothing);
        write(dir.path(), BOOT, Mark::Released).unwrap();
        assert_eq!(read(dir.path(), BOOT), Mark::Released);
        fs::write(path_in(dir.path()), "garbage").unwrap();
        assert_eq!(
            read(dir.path(), BOOT),
            Mark::Held(HoldBy::Budget),
            "damaged: held, the operator releases it"
        );
    }

    #[test]
    fn the_word_is_found_only_whole() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        fs::create_dir_all(dir.path().join("proc")).unwrap();
        assert!(kernel_word(&root)
            .unwrap_err()
            .contains("kernel command line"));
        for (line, held) in [
            ("BOOT_IMAGE=/vmlinuz root=/dev/vda1 quiet\n", false),
            ("console=ttyS0 wdfeed.hold quiet\n", true),
            ("wdfeed.hold\n", true),
            ("wdfeed.holds=1 xwdfeed.hold\n", false),
        ] {
            fs::write(dir.path().join("proc/cmdline"), line).unwrap();
            assert_eq!(kernel_word(&root).unwrap(), held, "{line}");
        }
    }
}
