//! The node as the daemon sees it: the filesystem view ([`root`]), readers of `/proc` and
//! `/sys`, and process hardening.

pub mod blockdev;
pub mod diskstats;
pub mod ext4;
pub mod hardening;
pub mod loadavg;
pub mod meminfo;
pub mod mountinfo;
pub mod notify;
pub mod process_table;
pub mod root;
pub mod sysfile;

pub use root::Root;
