//! `/proc/diskstats` and `/sys/block/<dev>/stat`: the kernel's I/O counters per block device.
//!
//! Kernels have shipped three layouts: 14 fields (up to 4.17), 18 (4.18 adds discards) and
//! 20 (5.5 adds flushes); `/sys/block/<dev>/stat` is the same minus the three leading
//! major/minor/name fields (11, 15, 17). Fields a future kernel appends are ignored rather than
//! refused, so a kernel upgrade cannot turn every node unhealthy. Counters are `unsigned long`
//! in the kernel and wrap at 2^32 on 32-bit machines: compare them for change, not for order.

use crate::system::sysfile::{self, LineError, ReadError};
use crate::system::Root;

/// The counters of one device, as `Documentation/admin-guide/iostats.rst` names them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskStat {
    pub major: u32,
    pub minor: u32,
    pub name: String,
    pub reads_completed: u64,
    pub reads_merged: u64,
    pub sectors_read: u64,
    pub ms_reading: u64,
    pub writes_completed: u64,
    pub writes_merged: u64,
    pub sectors_written: u64,
    pub ms_writing: u64,
    /// Requests issued to the driver and not yet completed.
    pub in_progress: u64,
    pub ms_doing_io: u64,
    pub weighted_ms: u64,
    /// 4.18 and later.
    pub discards_completed: Option<u64>,
    /// 5.5 and later.
    pub flushes_completed: Option<u64>,
}

impl DiskStat {
    /// Every request that finished, whatever its kind (errors count as finished too).
    pub fn completed(&self) -> u64 {
        self.reads_completed
            .wrapping_add(self.writes_completed)
            .wrapping_add(self.discards_completed.unwrap_or(0))
            .wrapping_add(self.flushes_completed.unwrap_or(0))
    }
}

/// `/proc/diskstats` kept open for runs that repeat: see [`sysfile::KeptFile`].
pub fn kept(root: &Root) -> sysfile::KeptFile {
    sysfile::KeptFile::new(root.proc("diskstats"))
}

/// Reads `<root>/proc/diskstats` through a descriptor kept open by [`kept`].
pub fn read_kept(root: &Root, kept: &mut sysfile::KeptFile) -> Result<Vec<DiskStat>, ReadError> {
    let text = kept.read(root, sysfile::TABLE)?;
    parse(&text).map_err(|e| e.in_file(root.node_name(kept.view_path())))
}

/// Parses `/proc/diskstats`: `major minor name` then 11, 15 or 17 counters.
pub fn parse(text: &str) -> Result<Vec<DiskStat>, LineError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(parse_line(line).map_err(|what| LineError::new(i + 1, what))?);
    }
    Ok(out)
}

fn parse_line(line: &str) -> Result<DiskStat, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [major, minor, name, counters @ ..] = fields.as_slice() else {
        return Err(format!("{} fields, expected 14, 18 or 20", fields.len()));
    };
    if counters.len() < 11 {
        return Err(format!(
            "{name}: {} fields, expected 14, 18 or 20",
            fields.len()
        ));
    }
    let mut stat = parse_counters(counters).map_err(|e| format!("{name}: {e}"))?;
    stat.major = major
        .parse()
        .map_err(|_| format!("major `{}` is not a number", sysfile::shorten(major)))?;
    stat.minor = minor
        .parse()
        .map_err(|_| format!("minor `{}` is not a number", sysfile::shorten(minor)))?;
    stat.name = (*name).to_string();
    Ok(stat)
}

const NAMES: [&str; 17] = [
    "reads completed",
    "reads merged",
    "sectors read",
    "ms reading",
    "writes completed",
    "writes merged",
    "sectors written",
    "ms writing",
    "I/Os in progress",
    "ms doing I/O",
    "weighted ms doing I/O",
    "discards completed",
    "discards merged",
    "sectors discarded",
    "ms discarding",
    "flushes completed",
    "ms flushing",
];

/// The counters after the device's name (or the whole of `/sys/block/<dev>/stat`).
fn parse_counters(fields: &[&str]) -> Result<DiskStat, String> {
    let mut v = [0u64; 17];
    for (slot, (text, item)) in v.iter_mut().zip(fields.iter().zip(NAMES)) {
        *slot = sysfile::parse_u64(item, text)?;
    }
    Ok(DiskStat {
        reads_completed: v[0],
        reads_merged: v[1],
        sectors_read: v[2],
        ms_reading: v[3],
        writes_completed: v[4],
        writes_merged: v[5],
        sectors_written: v[6],
        ms_writing: v[7],
        in_progress: v[8],
        ms_doing_io: v[9],
        weighted_ms: v[10],
        discards_completed: (fields.len() >= 15).then_some(v[11]),
        flushes_completed: (fields.len() >= 17).then_some(v[15]),
        ..DiskStat::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured on Linux 6.18 (20 fields); the 18- and 14-field forms are the same lines cut
    // to what 4.18..5.4 and earlier kernels print, with an I/O in flight on the 14-field disk.
    const V20: &str = " 254       0 vda 34545 6727 4157314 14251 5460 10917 2270712 3632 0 4124 18197 4508 53 251872 293 716 20\n 253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
    const V18: &str = " 254       0 vda 34545 6727 4157314 14251 5460 10917 2270712 3632 0 4124 18197 4508 53 251872 293\n 254       1 vda1 34410 6727 4150122 14190 5460 10917 2270712 3632 0 4096 18141 4508 53 251872 293\n";
    const V14: &str = " 254       0 vda 34545 6727 4157314 14251 5460 10917 2270712 3632 2 4124 18197\n 254       1 vda1 34410 6727 4150122 14190 5460 10917 2270712 3632 0 4096 18141\n";

    #[test]
    fn parses_every_field_count_the_kernel_has_shipped() {
        let d = parse(V20).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[0].major, d[0].minor, d[0].name.as_str()),
            (254, 0, "vda")
        );
        assert_eq!(d[0].reads_completed, 34545);
        assert_eq!(d[0].writes_completed, 5460);
        assert_eq!(d[0].discards_completed, Some(4508));
        assert_eq!(d[0].flushes_completed, Some(716));
        assert_eq!(d[0].completed(), 34545 + 5460 + 4508 + 716);

        let d = parse(V18).unwrap();
        assert_eq!(d[0].discards_completed, Some(4508));
        assert_eq!(d[0].flushes_completed, None);
        assert_eq!(d[1].name, "vda1");

        let d = parse(V14).unwrap();
        assert_eq!(d[0].in_progress, 2);
        assert_eq!(d[0].discards_completed, None);
        assert_eq!(d[0].completed(), 34545 + 5460);
    }

    #[test]
    fn fields_a_future_kernel_appends_are_ignored() {
        let d = parse(" 254 0 vda 1 0 0 0 2 0 0 0 0 0 0 3 0 0 0 4 0 9 9 9\n").unwrap();
        assert_eq!(d[0].completed(), 10);
    }

    #[test]
    fn truncated_garbage_and_overflowing_lines_are_errors_naming_line_and_item() {
        let truncated = &V20[..60];
        let e = parse(truncated).unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.what.contains("vda: 10 fields"), "{e:?}");

        let e = parse(" 8 0 sda 1 2 3 4 5 6 7 8 x 10 11\n").unwrap_err();
        assert!(e.what.contains("I/Os in progress `x`"), "{e:?}");

        let e = parse(&format!(
            "{V14} 8 0 sda 1 2 3 4 5 6 7 8 99999999999999999999 10 11\n"
        ))
        .unwrap_err();
        assert_eq!(e.line, 3);

        let e = parse(" 8 0 sda 1 2 3 4 5 6 7 8 -1 10 11\n").unwrap_err();
        assert!(e.what.contains("`-1`"), "{e:?}");

        let e = parse("x 0 sda 1 2 3 4 5 6 7 8 0 10 11\n").unwrap_err();
        assert!(e.what.contains("major `x`"), "{e:?}");

        assert!(parse("\u{0}\u{ff}\n").is_err());
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn huge_input_parses_or_fails_without_panicking() {
        let many: String = (0..50_000)
            .map(|i| format!(" 8 {i} sd{i} 1 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0\n"))
            .collect();
        assert_eq!(parse(&many).unwrap().len(), 50_000);
        let wide = format!(" 8 0 sda {}\n", "1 ".repeat(200_000));
        assert_eq!(parse(&wide).unwrap()[0].completed(), 4);
        assert!(parse(&"9".repeat(1_000_000)).is_err());
    }
}
