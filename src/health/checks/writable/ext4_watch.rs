//! The ext4 signal of `writable`: the superblock's error record of a watched mount.
//!
//! Fails closed: an ext-family mount whose record cannot be found, read or parsed, or a boot
//! time that cannot be read, fails the check with evidence that says so; it is never dropped.

use crate::system::mountinfo::MountEntry;
use crate::system::{blockdev, ext4, Root};

/// Which of a filesystem's recorded ext4 errors count against it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorsSince {
    /// Every error of this boot (`last_error_time` at or after the boot): the filesystems
    /// wdfeed watches from its start, mounted since boot or so.
    Boot,
    /// Only errors recorded after this check first saw the filesystem mounted: a `when:`
    /// check that starts watching a filesystem this node just took over, whose superblock
    /// may carry the error the failed node recorded (DRBD replicates it). A real fault of
    /// this node still shows: a new error raises the record, and the write probe sees the
    /// filesystem refuse writes.
    FirstSight,
}

pub(super) struct Ext4Watch {
    /// The name ext4 files its sysfs directory under (`vda1`), or why it is not known.
    dev: Result<String, String>,
    /// `errors_count` and `last_error_time` when wdfeed first saw this filesystem mounted,
    /// or at the first run that could read it.
    baseline: Option<(u64, u64)>,
    since: ErrorsSince,
}

impl Ext4Watch {
    /// `None` when the filesystem has no ext4 error record: not ext-family, or an ext2/ext3
    /// mount that its own driver serves (no `/sys/fs/ext4/<dev>`).
    pub(super) fn find(root: &Root, entry: &MountEntry, since: ErrorsSince) -> Option<Ext4Watch> {
        if !ext4::is_ext(&entry.fs_type) {
            return None;
        }
        let dev = blockdev::name_of(root, entry.major, entry.minor)
            .or_else(|| {
                // No sysfs entry for the device number: fall back to the mount source's name.
                let name = entry.source.strip_prefix("/dev/")?;
                (name != "root" && !name.contains('/')).then(|| name.to_string())
            })
            .ok_or_else(|| {
                format!(
                    "no DEVNAME in /sys/dev/block/{}:{}/uevent and mount source `{}` names no \
                     device",
                    entry.major, entry.minor, entry.source
                )
            });
        if let Ok(d) = &dev {
            if entry.fs_type != "ext4" && !root.follow(root.sys(format!("fs/ext4/{d}"))).exists() {
                return None;
            }
        }
        let baseline = dev
            .as_ref()
            .ok()
            .and_then(|d| ext4::error_record(root, d).ok())
            .map(|r| (r.count, r.last_error_time));
        Some(Ext4Watch {
            dev,
            baseline,
            since,
        })
    }

    /// Evidence for a healthy record, or why the mount fails (`m`: the mount, for evidence).
    pub(super) fn judge(
        &mut self,
        root: &Root,
        boot_time: &Result<u64, String>,
        m: &str,
    ) -> Result<String, String> {
        let dev = self
            .dev
            .as_ref()
            .map_err(|e| format!("{m}: cannot find its ext4 error record: {e}"))?;
        let rec = ext4::error_record(root, dev)
            .map_err(|e| format!("{m}: cannot read its ext4 error record: {e}"))?;
        let (baseline, first_error_time) = *self
            .baseline
            .get_or_insert((rec.count, rec.last_error_time));
        if rec.count > baseline {
            return Err(format!(
                "{m} ({dev}): ext4 errors_count {}, was {baseline} when wdfeed began watching it",
                rec.count
            ));
        }
        if self.since == ErrorsSince::FirstSight {
            if rec.last_error_time > first_error_time {
                return Err(format!(
                    "{m} ({dev}): ext4 error since wdfeed began watching it (last_error_time {}, \
                     was {first_error_time}, errors_count {})",
                    rec.last_error_time, rec.count
                ));
            }
            return Ok(format!("ext4 {dev} errors_count {}", rec.count));
        }
        let boot = boot_time.as_ref().map_err(|e| {
            format!("{m} ({dev}): cannot tell this boot's ext4 errors from older ones: {e}")
        })?;
        if rec.last_error_time >= *boot {
            return Err(format!(
                "{m} ({dev}): ext4 error during this boot (last_error_time {}, booted at {boot}, \
                 errors_count {})",
                rec.last_error_time, rec.count
            ));
        }
        Ok(format!("ext4 {dev} errors_count {}", rec.count))
    }
}
