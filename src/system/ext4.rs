//! `/sys/fs/ext4/<dev>/`: the error record an ext4 (or ext2/ext3, same driver) filesystem
//! keeps in its superblock.
//!
//! This is the only place that shows an ext4 error on 6.1 kernels: after an error with
//! `errors=remount-ro` the mount still reads `rw` in mountinfo, while `errors_count` rises and
//! writes fail. The count lives on disk and survives reboots until fsck clears it, so a
//! non-zero value alone says nothing about now: compare it with a baseline, or look at when
//! the last error happened.

use crate::system::sysfile::{self, ReadError};
use crate::system::Root;

/// Filesystem types the ext4 driver serves, as mountinfo names them.
pub fn is_ext(fs_type: &str) -> bool {
    matches!(fs_type, "ext4" | "ext3" | "ext2")
}

/// The error record of one filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorRecord {
    /// Errors recorded since the last fsck.
    pub count: u64,
    /// Wall-clock time (seconds since the epoch) of the last error, 0 when none.
    pub last_error_time: u64,
}

/// Reads `<root>/sys/fs/ext4/<dev>/errors_count` and `last_error_time`.
pub fn error_record(root: &Root, dev: &str) -> Result<ErrorRecord, ReadError> {
    let read = |file: &str| {
        let path = root.sys(format!("fs/ext4/{dev}/{file}"));
        let text = sysfile::read_capped(root, &path, sysfile::SMALL)?;
        sysfile::parse_u64(file, text.trim())
            .map_err(|what| ReadError::new(root.node_name(&path), None, what))
    };
    Ok(ErrorRecord {
        count: read("errors_count")?,
        last_error_time: read("last_error_time")?,
    })
}

/// The `btime` line of `<root>/proc/stat`: when the node booted, in seconds since the epoch.
pub fn boot_time(root: &Root) -> Result<u64, ReadError> {
    let path = root.proc("stat");
    let name = root.node_name(&path);
    let text = sysfile::read_capped(root, &path, sysfile::TABLE)?;
    parse_btime(&text).map_err(|what| ReadError::new(name, None, what))
}

pub(crate) fn parse_btime(text: &str) -> Result<u64, String> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .ok_or("no `btime` line")?;
    sysfile::parse_u64("btime", line.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btime_from_real_and_broken_proc_stat() {
        // Lines captured from /proc/stat on Linux 6.18.
        let real = "cpu  10881 0 4174 822994 375 0 45 10 0 0\ncpu0 5038 0 1737 412381 44 0 15 4 0 0\nintr 1 2 3\nctxt 5118224\nbtime 1795551161\nprocesses 7402\n";
        assert_eq!(parse_btime(real), Ok(1_795_551_161));
        assert!(parse_btime(&real[..60]).is_err());
        assert!(parse_btime("btime x\n").unwrap_err().contains("btime `x`"));
        assert!(parse_btime("btime 99999999999999999999\n").is_err());
        assert!(parse_btime("").is_err());
        assert!(parse_btime(&"cpu 1\n".repeat(100_000)).is_err());
    }

    #[test]
    fn error_record_in_a_fixture_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        let d = root.sys("fs/ext4/vda1");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("errors_count"), "2\n").unwrap();
        std::fs::write(d.join("last_error_time"), "1795551200\n").unwrap();
        let r = error_record(&root, "vda1").unwrap();
        assert_eq!(
            r,
            ErrorRecord {
                count: 2,
                last_error_time: 1_795_551_200
            }
        );
        std::fs::write(d.join("errors_count"), "two\n").unwrap();
        let e = error_record(&root, "vda1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/sys/fs/ext4/vda1/errors_count: errors_count `two` is not a counter"
        );
        assert!(error_record(&root, "vdb").is_err());
    }
}
