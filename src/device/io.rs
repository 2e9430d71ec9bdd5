//! Raw operations on an open watchdog, as a trait: [`KernelIo`] talks to the kernel through
//! [`crate::ffi`]; tests use [`super::fake::FakeIo`]. All policy (fallbacks, read-back,
//! clamping) lives above this, in [`super::watchdog`], so the fake exercises it unchanged.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;

use nix::errno::Errno;

use crate::ffi::{self, WatchdogInfo};

pub trait WatchdogIo: Send {
    fn get_support(&mut self) -> Result<WatchdogInfo, Errno>;
    fn get_bootstatus(&mut self) -> Result<i32, Errno>;
    fn set_timeout(&mut self, secs: i32) -> Result<i32, Errno>;
    fn get_timeout(&mut self) -> Result<i32, Errno>;
    fn set_pretimeout(&mut self, secs: i32) -> Result<i32, Errno>;
    fn keepalive(&mut self) -> Result<(), Errno>;
    /// write(2) of `bytes`: any byte pets; `V` also arms the magic close.
    fn write(&mut self, bytes: &[u8]) -> Result<(), Errno>;
}

/// An open `/dev/watchdog*`. Dropping it closes the descriptor without the magic `V`: the
/// device stays armed and the hardware resets the node unless it is reopened in time.
pub struct KernelIo {
    file: File,
}

impl KernelIo {
    pub fn new(file: File) -> Self {
        KernelIo { file }
    }
}

impl WatchdogIo for KernelIo {
    fn get_support(&mut self) -> Result<WatchdogInfo, Errno> {
        ffi::wd_get_support(self.file.as_fd())
    }
    fn get_bootstatus(&mut self) -> Result<i32, Errno> {
        ffi::wd_get_bootstatus(self.file.as_fd())
    }
    fn set_timeout(&mut self, secs: i32) -> Result<i32, Errno> {
        ffi::wd_set_timeout(self.file.as_fd(), secs)
    }
    fn get_timeout(&mut self) -> Result<i32, Errno> {
        ffi::wd_get_timeout(self.file.as_fd())
    }
    fn set_pretimeout(&mut self, secs: i32) -> Result<i32, Errno> {
        ffi::wd_set_pretimeout(self.file.as_fd(), secs)
    }
    fn keepalive(&mut self) -> Result<(), Errno> {
        ffi::wd_keepalive(self.file.as_fd())
    }
    fn write(&mut self, bytes: &[u8]) -> Result<(), Errno> {
        self.file
            .write_all(bytes)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
    }
}
