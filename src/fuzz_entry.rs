//! Entry points for the fuzz harness in `fuzz/` and its regression tests: one function per
//! parser family, bytes in, never a panic out. Each decodes the bytes as the real reader does
//! (lossy UTF-8, as [`crate::system::sysfile`] reads kernel files) and hands the text to the
//! private parser. Hidden from the docs: not an API, only a door for the harness, so the
//! parser modules stay crate-private.

use crate::device::sysfs;
use crate::system::{
    blockdev, diskstats, drbd, ext4, loadavg, meminfo, mountinfo, process_table, sysfile,
};

/// The parser families the harness knows, by the name its command line takes.
pub const FAMILIES: [&str; 11] = [
    "config",
    "mountinfo",
    "diskstats",
    "loadavg",
    "meminfo",
    "process",
    "ext4",
    "blockdev",
    "sysfile",
    "sysfs",
    "drbd",
];

/// Runs `family`'s parsers on `data`; false for an unknown family name.
pub fn run(family: &str, data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    match family {
        "config" => {
            // The whole load path after the read: text in, Config or problems out.
            match crate::config::parse(text, "fuzz.yaml") {
                Ok(c) => {
                    for check in &c.checks {
                        let _ = check.worst_detection();
                    }
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
        "mountinfo" => {
            if let Ok(t) = mountinfo::parse(text) {
                for e in &t {
                    let _ = (e.mount_read_only(), e.super_read_only());
                }
                let _ =
                    mountinfo::top(&t, std::path::Path::new(text.lines().next().unwrap_or("/")));
            }
            let _ = mountinfo::unescape(text);
        }
        "diskstats" => {
            if let Ok(d) = diskstats::parse(text) {
                d.iter().for_each(|s| {
                    let _ = s.completed();
                });
            }
        }
        "loadavg" => {
            let _ = loadavg::parse(text);
        }
        "meminfo" => {
            let _ = meminfo::parse_available(text);
        }
        "process" => {
            let _ = process_table::parse_stat(text);
            let _ = process_table::parse_detail(text);
            let _ = process_table::parse_pid(text);
        }
        "ext4" => {
            let _ = ext4::parse_btime(text);
            let _ = sysfile::parse_u64("errors_count", text.trim());
            let _ = ext4::is_ext(text);
        }
        "blockdev" => {
            let _ = blockdev::parse_inflight(text);
            let _ = blockdev::devname(text);
            let _ = blockdev::is_memory_or_loop(text);
            let _ = blockdev::diskstats_name(text);
        }
        "sysfile" => {
            let _ = sysfile::text_of(data.to_vec(), sysfile::SMALL);
            let _ = sysfile::parse_u64("item", text);
            let _ = sysfile::shorten(text);
        }
        "sysfs" => {
            let _ = sysfs::parse_attr_text(text).and_then(|t| sysfs::parse_number(&t));
        }
        "drbd" => {
            if let Ok(p) = drbd::parse(text) {
                for v in &p.volumes {
                    let since = Some(std::time::Duration::from_secs(1));
                    let now = std::time::Duration::from_secs(30);
                    let limit = std::time::Duration::from_secs(20);
                    let _ = crate::health::checks::drbd::judge(v, since, now, limit);
                }
            }
            let _ = drbd::bad_resource_name(text);
        }
        _ => return false,
    }
    true
}
