//! What an operator should hear about a valid config: a DRBD device listed under `block-io`
//! (a warning), and, for `validate`, which checks follow a condition and which disks
//! `block-io` leaves out by default.

use std::time::Duration;

use super::Config;
use crate::health::checks::block_io;
use crate::health::checks::CheckSettings;
use crate::units::format_duration;

/// DRBD 8.4's defaults for giving up on a peer (drbd_limits.h): a peer that froze is dropped
/// after ping-int + ping-timeout; one that answers pings but completes no write after
/// ko-count x timeout.
const PING_INT: Duration = Duration::from_secs(10);
const PING_TIMEOUT: Duration = Duration::from_millis(500);
const KO_COUNT: u32 = 7;
const NET_TIMEOUT: Duration = Duration::from_secs(6);

/// A DRBD device listed in a `block-io` check's devices.
pub struct DrbdInBlockIo<'a> {
    /// The check's index in `checks:` and its name.
    pub index: usize,
    pub check: &'a str,
    /// The device's kernel name (`drbd0`).
    pub device: &'a str,
    pub stuck_after: Duration,
}

/// Every DRBD device a `block-io` check lists (its default list leaves them out).
pub fn drbd_in_block_io(config: &Config) -> Vec<DrbdInBlockIo<'_>> {
    let mut out = Vec::new();
    for (index, c) in config.checks.iter().enumerate() {
        let CheckSettings::BlockIo(b) = &c.settings else {
            continue;
        };
        for dev in b.devices.iter().flatten() {
            let device = block_io::kernel_name(dev);
            if block_io::is_drbd(device) {
                out.push(DrbdInBlockIo {
                    index,
                    check: &c.name,
                    device,
                    stuck_after: b.stuck_after.get(),
                });
            }
        }
    }
    out
}

/// How long DRBD 8.4 takes by its defaults to give up on a peer: (a frozen peer: ping-int +
/// ping-timeout, a peer whose disk stalls: ko-count x timeout).
pub fn drbd_gives_up_after() -> (Duration, Duration) {
    (PING_INT + PING_TIMEOUT, NET_TIMEOUT * KO_COUNT)
}

/// Warnings for a config that is valid but likely wrong.
pub fn warnings(config: &Config) -> Vec<String> {
    let (frozen, ko) = drbd_gives_up_after();
    drbd_in_block_io(config)
        .iter()
        .map(|d| {
            format!(
                "checks[{}] ({}): {name} is a DRBD device. With protocol C its writes wait for \
                 the peer, so a peer that freezes shows here as I/O stuck on a healthy node until \
                 DRBD gives up on the peer: by DRBD 8.4's defaults after ping-int + ping-timeout \
                 ({}) for a frozen peer, after ko-count x timeout ({KO_COUNT} x {} = {}) for a \
                 peer whose disk stalls. Keep stuck-after ({}) above those (above your \
                 resource's values, if set), or leave {name} to the drbd check",
                d.index,
                d.check,
                format_duration(frozen),
                format_duration(NET_TIMEOUT),
                format_duration(ko),
                format_duration(d.stuck_after),
                name = d.device,
            )
        })
        .collect()
}

/// `validate`'s lines on checks that follow a condition, and on `block-io`'s default disks.
pub fn validate_lines(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let conditional: Vec<String> = config
        .checks
        .iter()
        .filter_map(|c| c.when.as_ref().map(|w| format!("  {}: when {w}", c.name)))
        .collect();
    if !conditional.is_empty() {
        out.push(format!(
            "conditional checks ({}): idle while the condition does not hold (lease held, \
             nothing watched, no part in B); when it holds, as any check (B counts them)",
            conditional.len()
        ));
        out.extend(conditional);
    }
    for c in &config.checks {
        if let CheckSettings::BlockIo(b) = &c.settings {
            if b.devices.is_none() {
                out.push(format!(
                    "{}: every disk in /sys/block except {} (looked up at every run); DRBD \
                     devices are the drbd check's",
                    c.name,
                    block_io::LEFT_OUT
                ));
            }
        }
    }
    out
}
