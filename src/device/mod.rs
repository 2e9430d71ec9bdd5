//! The kernel watchdog API: opening a device ([`open`]), the raw operations as a trait with
//! a kernel and a fake implementation ([`io`], [`fake`]), the policy that programs and pets
//! a device without trusting what it says of itself ([`watchdog`]), and what sysfs tells
//! without opening anything ([`sysfs`], [`flags`], [`takeover`]).
//!
//! A device that is dropped is closed without the magic `V`: it stays armed. Only
//! [`watchdog::Watchdog::disarm`], on a clean exit the config asks for, stops it.

#[cfg(test)]
pub mod fake;
pub mod flags;
pub mod io;
pub mod open;
pub mod sysfs;
pub mod takeover;
pub mod watchdog;

use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;

pub use watchdog::{DeviceError, Request, Watchdog};

/// An armed device as the feeder sees it: something to pet, and to disarm on a clean exit.
pub trait Armed: Send {
    fn path(&self) -> &Path;
    /// One pet; allocates nothing.
    fn pet(&mut self) -> Result<(), Errno>;
    fn disarm(self: Box<Self>) -> Result<(), DeviceError>;
    /// Whether closing it without the magic `V` (any exit, a SIGKILL) leaves it counting
    /// down; if not, a fenced wdfeed must never exit.
    fn stays_armed_on_close(&self) -> bool;
    /// The timeout it was armed with (read back at arming).
    fn timeout(&self) -> Duration;
    /// Sets another timeout and reads back what the driver runs with; allocates nothing.
    /// The watchdog core pings a device whose timeout it changed.
    fn retime(&mut self, timeout: Duration) -> Result<Duration, Errno>;
}

impl<I: io::WatchdogIo> Armed for Watchdog<I> {
    fn path(&self) -> &Path {
        Watchdog::path(self)
    }
    fn pet(&mut self) -> Result<(), Errno> {
        Watchdog::pet(self)
    }
    fn disarm(self: Box<Self>) -> Result<(), DeviceError> {
        Watchdog::disarm(*self)
    }
    fn stays_armed_on_close(&self) -> bool {
        self.stays_armed_on_close
    }
    fn timeout(&self) -> Duration {
        self.timeout
    }
    fn retime(&mut self, timeout: Duration) -> Result<Duration, Errno> {
        Watchdog::retime(self, timeout)
    }
}
