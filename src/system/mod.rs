//! The node as the daemon sees it: the filesystem view ([`root`]), readers of `/proc` and
//! `/sys`, and process hardening; and the plumbing every part shares: the one capped read
//! and atomic write ([`io`]) and the one way to start a thread ([`threads`]). (The one way to
//! run work under a time limit is `time::deadline::within`.)

pub(crate) mod addresses;
pub(crate) mod blockdev;
pub(crate) mod diskstats;
pub(crate) mod drbd;
pub(crate) mod errno_slot;
pub(crate) mod ext4;
pub(crate) mod hardening;
pub(crate) mod io;
pub(crate) mod loadavg;
pub(crate) mod meminfo;
pub(crate) mod mountinfo;
pub(crate) mod notify;
pub(crate) mod process_follow;
pub mod process_table;
pub(crate) mod root;
pub(crate) mod sysfile;
pub(crate) mod threads;
pub(crate) mod users;
#[cfg(test)]
pub(crate) mod victim;

pub use root::Root;
