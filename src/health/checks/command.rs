//! `command`: the escape hatch for site checks. Runs an argv (no shell) with a clean
//! environment; exit status 0 is healthy, anything else (including failing to start it) is
//! a failed check, never a wdfeed error.
//!
//! This is the one check that forks and execs, so it is the one that can fail for reasons
//! unrelated to the node's health (no memory for a fork, a missing binary after an upgrade):
//! that is why the built-in checks exist and why this one is off unless configured.
//!
//! The child runs in a process group of its own, and the check kills that whole group with
//! SIGKILL when it runs past `timeout`: the runner abandons a hung run, but it cannot kill
//! what the run started. The first 200 bytes of stdout and stderr go into the evidence.
//!
//! What it cannot see: whatever the command does not check. Background processes the
//! command leaves behind when it exits in time are not killed.

use std::io::{ErrorKind, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::Deserialize;

use super::{CheckKind, KeyProblem};
use crate::health::{Check, Verdict};
use crate::system::Root;
use crate::units::HumanDuration;

/// The only environment a command gets.
pub const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
/// Bytes of output kept for the evidence.
pub const OUTPUT_LIMIT: usize = 200;
/// How often a running command is looked at.
const POLL: Duration = Duration::from_millis(10);
/// How long a SIGKILLed command may take to die before the run gives up waiting for it.
const REAP_GRACE: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Program and arguments, e.g. `[/usr/local/sbin/check-san, --quiet]`. A program without
    /// a `/` is looked up in PATH.
    pub argv: Vec<String>,
    /// Kill the command (and its process group) when it runs longer than this; absent:
    /// [`default_timeout`] of the check's deadline.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
}

/// The default `timeout`: 10 s, but never more than three quarters of the check's deadline,
/// so that the default always validates and a killed command is reaped before the deadline.
pub fn default_timeout(deadline: Duration) -> Duration {
    Duration::from_secs(10).min(deadline * 3 / 4)
}

impl Settings {
    /// The timeout in force (the default until the schedule settled it).
    fn timeout(&self) -> Duration {
        self.timeout
            .map_or(Duration::from_secs(10), HumanDuration::get)
    }
}

impl CheckKind for Settings {
    const KIND: &'static str = "command";

    fn label(&self) -> String {
        format!(
            "command {}",
            self.argv.first().map(String::as_str).unwrap_or("")
        )
    }

    fn problems(&self) -> Vec<KeyProblem> {
        let mut out = Vec::new();
        match self.argv.first() {
            None => out.push(KeyProblem::new(
                "argv",
                "give the program to run, e.g. [/usr/local/sbin/check-san]",
            )),
            Some(p) if p.is_empty() => out.push(KeyProblem::new("argv[0]", "empty program name")),
            Some(p) if !p.starts_with('/') => out.push(KeyProblem::new(
                "argv[0]",
                format!(
                    "`{}` is not an absolute path: a relative program depends on the daemon's PATH and working directory; write e.g. `/usr/local/sbin/{}`",
                    p.escape_debug(),
                    p.rsplit('/').next().unwrap_or(p).escape_debug()
                ),
            )),
            Some(_) => {}
        }
        for (i, a) in self.argv.iter().enumerate() {
            if a.contains('\0') {
                out.push(KeyProblem::new(format!("argv[{i}]"), "contains a NUL byte"));
            }
        }
        if self.timeout.is_some_and(|t| t.get().is_zero()) {
            out.push(KeyProblem::new("timeout", "must be longer than 0s"));
        }
        out
    }

    fn build(&self, root: &Root) -> Result<Box<dyn Check>, String> {
        // Runs on this machine whatever the root: a command is not a file to read.
        let _ = root;
        Ok(Box::new(CommandCheck::new(self.clone())?))
    }

    fn own_time_limit(&self) -> Option<(&'static str, Duration)> {
        Some(("timeout", self.timeout()))
    }

    fn settle_defaults(&mut self, schedule: &crate::health::Schedule) {
        if self.timeout.is_none() {
            self.timeout = Some(HumanDuration(default_timeout(schedule.deadline)));
        }
    }
}

pub struct CommandCheck {
    settings: Settings,
    /// Killed children that had not died yet when their run ended; reaped by later runs.
    stragglers: Vec<Child>,
}

impl CommandCheck {
    pub fn new(settings: Settings) -> Result<Self, String> {
        Ok(CommandCheck {
            settings,
            stragglers: Vec::new(),
        })
    }
}

impl Check for CommandCheck {
    fn run(&mut self, _now: Duration) -> Verdict {
        self.stragglers
            .retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_)) | Err(_)));
        let argv = self.settings.argv.clone();
        let Some((program, args)) = argv.split_first() else {
            return Verdict::unhealthy("no program to run");
        };
        let child = match Command::new(program)
            .args(args)
            .env_clear()
            .env("PATH", PATH)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
        {
            Ok(c) => c,
            Err(e) => return Verdict::unhealthy(format!("cannot run {program}: {e}")),
        };
        let mut output = Output::default();
        let outcome = self.wait(child, &mut output);
        let shown = output.text();
        match outcome {
            Ok(status) if status.success() => Verdict::healthy(format!("{program} exit 0{shown}")),
            Ok(status) => Verdict::unhealthy(format!("{program} {}{shown}", describe(status))),
            Err(e) => Verdict::unhealthy(format!("{program}: {e}{shown}")),
        }
    }
}

impl CommandCheck {
    /// Waits for the child within `timeout`, reading its output as it goes (a child blocked on
    /// a full pipe would otherwise look hung).
    fn wait(&mut self, mut child: Child, output: &mut Output) -> Result<ExitStatus, String> {
        let timeout = self.settings.timeout();
        let started = Instant::now();
        // Without O_NONBLOCK a read waits for output the child may never write.
        if let Some(out) = &child.stdout {
            let _ = fcntl(out, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
        }
        if let Some(err) = &child.stderr {
            let _ = fcntl(err, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
        }
        loop {
            output.drain(&mut child);
            match child.try_wait() {
                Ok(Some(status)) => {
                    output.drain(&mut child);
                    return Ok(status);
                }
                Ok(None) => {}
                Err(e) => return Err(format!("cannot wait for it: {e}")),
            }
            if started.elapsed() >= timeout {
                self.kill(child);
                return Err(format!(
                    "killed (SIGKILL) after its timeout of {}",
                    HumanDuration(self.settings.timeout())
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGKILLs the child's process group: the child and whatever it started (it has not been
    /// reaped, so the group id is still ours), then reaps it if it dies soon.
    fn kill(&mut self, mut child: Child) {
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = child.kill();
        let until = Instant::now() + REAP_GRACE;
        while Instant::now() < until {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(POLL);
        }
        // Stuck in D state: keep it so a later run reaps it instead of leaving a zombie.
        child.stdout.take();
        child.stderr.take();
        self.stragglers.push(child);
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => format!("ended: {status}"),
    }
}

/// The first [`OUTPUT_LIMIT`] bytes of stdout and stderr, in the order they were read.
#[derive(Default)]
struct Output {
    kept: Vec<u8>,
    cut: bool,
}

impl Output {
    fn drain(&mut self, child: &mut Child) {
        let mut buf = [0u8; 4096];
        let readers: [Option<&mut dyn Read>; 2] = [
            child.stdout.as_mut().map(|r| r as &mut dyn Read),
            child.stderr.as_mut().map(|r| r as &mut dyn Read),
        ];
        for r in readers.into_iter().flatten() {
            loop {
                match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => self.keep(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = OUTPUT_LIMIT.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.cut |= bytes.len() > room;
    }

    /// `: first line / second line...`, or nothing when the command printed nothing.
    fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.kept);
        let mut out: String = text
            .split(['\n', '\r'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" / ")
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        if out.is_empty() {
            return String::new();
        }
        if self.cut {
            out.push_str("...");
        }
        format!(": {out}")
    }
}

#[cfg(test)]
mod tests;
