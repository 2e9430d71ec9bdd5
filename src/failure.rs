//! Why a command failed, and the exit code that says so. Exit codes are decided here only:
//! 0 success (healthy), 1 unhealthy or a runtime failure, 2 a bad config or command line,
//! 3 a watchdog device problem, 4 an operator request refused (not root, a control socket
//! that is not root's, or the daemon's state forbids it).

use std::fmt;

use crate::config::ConfigError;
use crate::device::DeviceError;

#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub const UNHEALTHY: u8 = 1;
    pub const CONFIG: u8 = 2;
    pub const DEVICE: u8 = 3;
    pub const REFUSED: u8 = 4;

    pub fn config(e: ConfigError) -> Self {
        Failure {
            code: Self::CONFIG,
            message: e.to_string(),
        }
    }

    /// A bad command line (an operator request's duration or reason).
    pub fn usage(message: String) -> Self {
        Failure {
            code: Self::CONFIG,
            message,
        }
    }

    pub fn device(e: DeviceError) -> Self {
        Failure {
            code: Self::DEVICE,
            message: e.to_string(),
        }
    }

    /// An operator request that was not allowed: nothing changed.
    pub fn refused(message: String) -> Self {
        Failure {
            code: Self::REFUSED,
            message,
        }
    }

    pub fn runtime(message: String) -> Self {
        Failure { code: 1, message }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
