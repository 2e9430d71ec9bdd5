//! wdfeed pets the Linux hardware watchdog only while the node is healthy, and fences the
//! node when it is not: it takes the service links down and kills the cluster processes so
//! the HA peer takes over at once, stops petting, and the hardware resets the node within a
//! bound it states.
//!
//! A feeder thread reads only in-memory leases, check threads renew them, and a latched
//! fence runs once (README.md, "How it works").
//!
//! # Layout
//!
//! - `main.rs`, `bin/wdfeed-doctor.rs`: the two executables; the doctor is one of its own,
//!   so the daemon neither maps nor locks its code.
//! - `cli/`: the command line, one file per command (`run`, `check`, `info`, `validate`,
//!   `status`, `stop`, `rejoin-now`; `fence`, `pause` and `resume` in `operator`; `doctor`
//!   runs the doctor's executable).
//! - `doctor/`: `wdfeed-doctor`: the node's HA configuration (systemd, sbd, corosync,
//!   Pacemaker, keepalived, heartbeat and DRBD) checked against the config; not on the
//!   daemon's path.
//! - `daemon/`: `wdfeed run`: start-up and exit order, the threads, signals, arming, READY=1,
//!   the control socket (operator requests: fence now, pause, resume; root only) and the
//!   maintenance pause's bookkeeping.
//! - `config/`: `watchdog.yaml`: raw mirror, rules, the checked `Config`, and the fence bound.
//! - `units/`: durations and sizes as operators write them, shared by config, checks, device.
//! - `time/`: the daemon's clock (CLOCK_BOOTTIME), the lock-free sleep a stop cuts short, and
//!   work under a time limit.
//! - `health/`: `Verdict` and the one pass rule, the run note the fence reads, the lease
//!   table, the runner, the conditions a check may follow (`when:`) and `checks/`.
//! - `feeder/`: the petting loop, its pure `decide()`, and its wake-up lateness histogram.
//! - `fence/`: the latch, the fence record of this boot, the kernel log line, isolation of
//!   the service links, the kill list, the handover file, an operator's request, and the
//!   fence sequence.
//! - `rejoin/`: the state record across boots, the rejoin delay, the fence budget and the
//!   holds an operator ends.
//! - `device/`: the kernel watchdog API, its policy, and what sysfs says of a device.
//! - `status/`: the status file and the metrics (Prometheus text and the node_exporter
//!   textfile): their formats, what goes in them, the thread that writes them and logs what
//!   the feeder and the fence did.
//! - `system/`: `/proc` and `/sys` readers under an injected root (mounts, disks, DRBD,
//!   processes followed by pidfd, addresses); hardening; sd_notify; and the plumbing every
//!   part shares: the capped read and atomic write of a regular file (`io`), starting a
//!   thread (`threads`), a step's outcome in one atomic word (`errno_slot`).
//! - `ffi.rs`: every unsafe block, each with its SAFETY line.
//! - `failure.rs`, `logging.rs`: exit codes; log set-up. `parked.rs` (tests only): threads
//!   parked while holding a lock, for the tests that the feeder and the fence wait on none.
//! - `fuzz_entry.rs`: the parsers as the fuzzer (fuzz/) and tests/fuzz_regressions.rs call
//!   them.

#![deny(unsafe_code)]

pub mod cli;
pub mod config;
mod daemon;
mod device;
mod doctor;
mod failure;
mod feeder;
mod fence;
#[expect(
    unsafe_code,
    reason = "the one module with unsafe: ioctls and raw syscalls"
)]
mod ffi;
#[doc(hidden)]
pub mod fuzz_entry;
pub mod health;
mod logging;
#[cfg(test)]
mod parked;
mod rejoin;
mod status;
pub mod system;
mod time;
mod units;

pub use doctor::main as doctor_main;
pub use failure::Failure;
