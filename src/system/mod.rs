//! The node as the daemon sees it: the filesystem view ([`root`]), readers of `/proc` and
//! `/sys`, and process hardening.

pub mod hardening;
pub mod notify;
pub mod process_table;
pub mod root;

pub use root::Root;
