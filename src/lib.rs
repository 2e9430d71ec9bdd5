//! wdfeed pets the Linux hardware watchdog only while the node is healthy, and fences the
//! node when it is not: it kills the cluster processes so the HA peer takes over at once,
//! stops petting, and the hardware resets the node within a bound it states.
//!
//! The architecture is in DESIGN.md: a feeder thread that reads only in-memory leases, check
//! threads that renew them, and a latched fence.

#![deny(unsafe_code)]

pub mod bound;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod device;
mod failure;
pub mod feeder;
pub mod fence;
#[expect(
    unsafe_code,
    reason = "the one module with unsafe: ioctls and raw syscalls"
)]
pub mod ffi;
pub mod health;
pub mod logging;
pub mod status;
pub mod system;

pub use failure::Failure;
