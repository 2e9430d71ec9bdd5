//! `/proc/meminfo`: how much memory the kernel could hand out without swapping
//! (`MemAvailable`, 3.14 and later).

use crate::system::sysfile::{self, ReadError};
use crate::system::Root;

/// Reads `MemAvailable` from `<root>/proc/meminfo`, in bytes.
pub fn available(root: &Root) -> Result<u64, ReadError> {
    let path = root.proc("meminfo");
    let text = sysfile::read_capped(root, &path, sysfile::TABLE)?;
    parse_available(&text).map_err(|what| ReadError::new(root.node_name(&path), None, what))
}

/// Finds `MemAvailable:   24185548 kB` and returns it in bytes.
pub fn parse_available(text: &str) -> Result<u64, String> {
    let rest = text
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .ok_or("no MemAvailable line (kernel older than 3.14?)")?;
    let mut it = rest.split_whitespace();
    let value = it.next().ok_or("MemAvailable has no value")?;
    let kib = sysfile::parse_u64("MemAvailable", value)?;
    match it.next() {
        Some("kB") => kib
            .checked_mul(1024)
            .ok_or_else(|| format!("MemAvailable `{value}` kB is out of range")),
        other => Err(format!(
            "MemAvailable unit `{}` is not kB",
            sysfile::shorten(other.unwrap_or(""))
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from /proc/meminfo on Linux 6.18.
    const REAL: &str = "MemTotal:       24684092 kB\nMemFree:        22307944 kB\nMemAvailable:   24185548 kB\nBuffers:           24032 kB\nCached:          2022240 kB\n";

    #[test]
    fn real_table() {
        assert_eq!(parse_available(REAL), Ok(24_185_548 * 1024));
    }

    #[test]
    fn truncated_garbage_and_huge_are_errors() {
        for bad in [
            &REAL[..40],
            "MemAvailable:\n",
            "MemAvailable: 12\n",
            "MemAvailable: 12 MB\n",
            "MemAvailable: x kB\n",
            "MemAvailable: 18446744073709551615 kB\n",
            "",
        ] {
            assert!(parse_available(bad).is_err(), "{bad:?}");
        }
        assert!(parse_available(&"MemFree: 1 kB\n".repeat(100_000)).is_err());
    }
}
