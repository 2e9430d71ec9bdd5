//! The node as the daemon sees it: the filesystem view ([`root`]), readers of `/proc` and
//! `/sys`, and process hardening.

pub(crate) mod blockdev;
pub(crate) mod diskstats;
pub(crate) mod ext4;
pub(crate) mod hardening;
pub(crate) mod loadavg;
pub(crate) mod meminfo;
pub(crate) mod mountinfo;
pub(crate) mod notify;
pub(crate) mod process_follow;
pub mod process_table;
pub(crate) mod root;
pub(crate) mod sysfile;
pub(crate) mod users;
#[cfg(test)]
pub(crate) mod victim;

pub use root::Root;
