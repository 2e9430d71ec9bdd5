//! A scripted watchdog for tests: it answers each operation as told and records every call,
//! so the device policy and the feeder are tested without a real device.

use std::sync::{Arc, Mutex};

use nix::errno::Errno;

use super::io::WatchdogIo;
use crate::ffi::WatchdogInfo;

/// One call the code under test made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    GetSupport,
    GetBootstatus,
    SetTimeout(i32),
    GetTimeout,
    SetPretimeout(i32),
    Keepalive,
    Write(Vec<u8>),
}

/// How the fake answers. Defaults: a well-behaved driver that grants what it is asked.
#[derive(Clone, Debug)]
pub struct Script {
    pub support: Result<WatchdogInfo, Errno>,
    pub bootstatus: Result<i32, Errno>,
    /// `None`: grant the request; `Some(Ok(v))`: grant `v` instead; `Some(Err(e))`: fail.
    pub set_timeout: Option<Result<i32, Errno>>,
    /// `None`: report the last granted timeout.
    pub get_timeout: Option<Result<i32, Errno>>,
    pub set_pretimeout: Result<i32, Errno>,
    pub keepalive: Result<(), Errno>,
    pub write: Result<(), Errno>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            support: Ok(info("Fake Watchdog", 0x8180)),
            bootstatus: Ok(0),
            set_timeout: None,
            get_timeout: None,
            set_pretimeout: Ok(0),
            keepalive: Ok(()),
            write: Ok(()),
        }
    }
}

/// A `watchdog_info` with this identity and option bits.
pub fn info(identity: &str, options: u32) -> WatchdogInfo {
    let mut i = WatchdogInfo {
        options,
        ..WatchdogInfo::default()
    };
    let n = identity.len().min(31);
    i.identity[..n].copy_from_slice(&identity.as_bytes()[..n]);
    i
}

/// The fake device; clones share the script and the call log.
#[derive(Clone, Default)]
pub struct FakeIo {
    pub script: Arc<Mutex<Script>>,
    pub calls: Arc<Mutex<Vec<Call>>>,
    granted: Arc<Mutex<i32>>,
}

impl FakeIo {
    pub fn new(script: Script) -> Self {
        FakeIo {
            script: Arc::new(Mutex::new(script)),
            ..FakeIo::default()
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// How many times the device was petted, by ioctl or by write.
    pub fn pets(&self) -> usize {
        self.calls()
            .iter()
            .filter(|c| {
                matches!(c, Call::Keepalive) || matches!(c, Call::Write(b) if b.as_slice() != b"V")
            })
            .count()
    }

    fn log(&self, call: Call) {
        if let Ok(mut c) = self.calls.lock() {
            c.push(call);
        }
    }

    fn script(&self) -> Script {
        self.script.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl WatchdogIo for FakeIo {
    fn get_support(&mut self) -> Result<WatchdogInfo, Errno> {
        self.log(Call::GetSupport);
        self.script().support
    }
    fn get_bootstatus(&mut self) -> Result<i32, Errno> {
        self.log(Call::GetBootstatus);
        self.script().bootstatus
    }
    fn set_timeout(&mut self, secs: i32) -> Result<i32, Errno> {
        self.log(Call::SetTimeout(secs));
        let granted = match self.script().set_timeout {
            None => secs,
            Some(r) => r?,
        };
        if let Ok(mut g) = self.granted.lock() {
            *g = granted;
        }
        Ok(granted)
    }
    fn get_timeout(&mut self) -> Result<i32, Errno> {
        self.log(Call::GetTimeout);
        match self.script().get_timeout {
            None => Ok(self.granted.lock().map(|g| *g).unwrap_or(0)),
            Some(r) => r,
        }
    }
    fn set_pretimeout(&mut self, secs: i32) -> Result<i32, Errno> {
        self.log(Call::SetPretimeout(secs));
        self.script().set_pretimeout.map(|_| secs)
    }
    fn keepalive(&mut self) -> Result<(), Errno> {
        self.log(Call::Keepalive);
        self.script().keepalive
    }
    fn write(&mut self, bytes: &[u8]) -> Result<(), Errno> {
        self.log(Call::Write(bytes.to_vec()));
        self.script().write
    }
}
