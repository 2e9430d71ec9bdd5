//! Helpers for the binary tests: run the built `wdfeed`, build fixture roots, follow a
//! running daemon's log.

#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod doctor;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

pub fn wdfeed() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wdfeed"));
    c.env_remove("WDFEED_ROOT")
        .env_remove("JOURNAL_STREAM")
        .env_remove("RUST_LOG");
    c
}

pub fn run(args: &[&str]) -> Output {
    wdfeed().args(args).output().expect("wdfeed runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fixture root with a writable `/` in `proc/1/mountinfo`.
pub struct FixtureRoot {
    pub dir: tempfile::TempDir,
    /// wdfeed's runtime directory (the fence record): on tmpfs, as wdfeed demands.
    runtime: tempfile::TempDir,
}

pub const MOUNTINFO_RW: &str = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
";

pub const MOUNTINFO_RO: &str = "\
22 1 254:1 / / ro,relatime shared:1 - ext4 /dev/vda1 ro,errors=remount-ro
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
";

impl FixtureRoot {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/1")).unwrap();
        std::fs::create_dir_all(dir.path().join("dev")).unwrap();
        let runtime = tempfile::Builder::new()
            .prefix("wdfeed-test-run-")
            .tempdir_in("/dev/shm")
            .unwrap();
        let f = FixtureRoot { dir, runtime };
        f.write("proc/1/mountinfo", MOUNTINFO_RW);
        // The ext4 error record of vda1 and the boot time: writable fails without them.
        f.write("sys/fs/ext4/vda1/errors_count", "0\n");
        f.write("sys/fs/ext4/vda1/last_error_time", "0\n");
        f.write(
            "proc/stat",
            "cpu  1 0 1 100 0 0 0 0 0 0\nbtime 1795551161\n",
        );
        f.write(
            "proc/sys/kernel/random/boot_id",
            "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0\n",
        );
        f.write("proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/vda1 quiet\n");
        f
    }

    /// The state directory the daemon is given (`--state-dir`): inside the fixture, so no
    /// test reads this machine's /var/lib/wdfeed.
    pub fn state_path(&self) -> PathBuf {
        self.path().join("state")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The runtime directory the daemon is given (`--runtime-dir`).
    pub fn runtime_path(&self) -> &Path {
        self.runtime.path()
    }

    /// A status file inside the fixture, so tests never touch /run.
    pub fn status_arg(&self) -> String {
        self.path().join("status.json").display().to_string()
    }

    pub fn root_arg(&self) -> String {
        self.path().display().to_string()
    }

    /// `wdfeed --root <fixture> run [--dry-run] --status-file <fixture>/status.json -c <cfg>`.
    pub fn daemon(&self, cfg: &Path, dry_run: bool) -> Daemon {
        let root = self.root_arg();
        let status = self.status_arg();
        let mut args = vec!["--root", &root, "run"];
        if dry_run {
            args.push("--dry-run");
        }
        let cfg = cfg.display().to_string();
        let runtime = self.runtime.path().display().to_string();
        let state = self.state_path().display().to_string();
        args.extend([
            "--status-file",
            &status,
            "--runtime-dir",
            &runtime,
            "--state-dir",
            &state,
            "-c",
            &cfg,
        ]);
        Daemon::start(&args)
    }

    /// The same daemon, from a command the caller prepared (an environment of its own).
    pub fn daemon_with(&self, command: Command, cfg: &Path) -> Daemon {
        let (root, status) = (self.root_arg(), self.status_arg());
        let runtime = self.runtime.path().display().to_string();
        let state = self.state_path().display().to_string();
        let cfg = cfg.display().to_string();
        Daemon::spawn(
            command,
            &[
                "--root",
                &root,
                "run",
                "--dry-run",
                "--status-file",
                &status,
                "--runtime-dir",
                &runtime,
                "--state-dir",
                &state,
                "-c",
                &cfg,
            ],
        )
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        // Write then rename, so a reader never sees a half-written file.
        let tmp = p.with_extension("tmp~");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        p
    }
}

/// A daemon running in the background whose stderr is read line by line.
pub struct Daemon {
    pub child: Child,
    lines: Receiver<String>,
    pub log: Vec<String>,
}

impl Daemon {
    pub fn start(args: &[&str]) -> Self {
        Self::spawn(wdfeed(), args)
    }

    /// The same, from a command the caller prepared (an environment of its own).
    pub fn spawn(mut command: Command, args: &[&str]) -> Self {
        let mut child = command
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wdfeed starts");
        let err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Daemon {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Waits up to `limit` for a log line containing `needle`; returns it.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> Option<String> {
        let end = Instant::now() + limit;
        loop {
            let left = end.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    pub fn signal(&self, sig: i32) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap()),
            nix::sys::signal::Signal::try_from(sig).unwrap(),
        )
        .unwrap();
    }

    /// Waits for the daemon to exit and returns its code.
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(100)) {
                    self.log.push(l);
                }
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGTERM, then the exit within `limit`, which must be a clean one (exit 0); the
    /// transcript is shown when it is not.
    pub fn stop_cleanly(&mut self, limit: Duration) {
        self.signal(nix::libc::SIGTERM);
        let code = self.wait(limit);
        assert_eq!(code, Some(0), "after SIGTERM: {}", self.transcript());
    }

    pub fn transcript(&self) -> String {
        self.log.join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A short-timed config for daemon tests: interval 1s, checks every 1s, deadline 2s.
pub fn fast_config(extra_checks: &str) -> String {
    format!(
        "devices:\n  - path: /dev/watchdog0\n    timeout: 10s\ninterval: 1s\nfence:\n  stall-threshold: 5s\nchecks:\n  - kind: writable\n    mounts: [/]\n    probe: false\n    every: 1s\n    deadline: 2s\n{extra_checks}"
    )
}

/// The config of a fixture case: `tests/fixtures/base.yaml` with the case's `override.yaml`
/// laid over it. The override's top-level keys replace the base's, except `checks`, whose
/// entries are appended to the base's.
pub fn fixture_config(case_dir: &Path) -> String {
    let read = |p: &Path| -> serde_yaml::Mapping {
        let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        match serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display())) {
            serde_yaml::Value::Mapping(m) => m,
            serde_yaml::Value::Null => serde_yaml::Mapping::new(),
            other => panic!("{}: not a mapping: {other:?}", p.display()),
        }
    };
    let base_path = case_dir.parent().unwrap().join("base.yaml");
    let mut config = read(&base_path);
    let over = case_dir.join("override.yaml");
    let over = if over.exists() {
        read(&over)
    } else {
        serde_yaml::Mapping::new()
    };
    for (key, value) in over {
        match (key.as_str(), config.get_mut(&key), value) {
            (
                Some("checks"),
                Some(serde_yaml::Value::Sequence(base)),
                serde_yaml::Value::Sequence(more),
            ) => base.extend(more),
            (_, _, value) => {
                config.insert(key, value);
            }
        }
    }
    serde_yaml::to_string(&config).unwrap()
}

/// Makes a fixture copy's mountinfo give `/` the `major:minor` of the filesystem the copy
/// really lies on: the write probe opens files there, and writes only to the filesystem
/// mountinfo names (the captured trees say 254:1, the guest's disk).
pub fn root_on_its_real_device(copy: &Path) {
    let path = copy.join("proc/1/mountinfo");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    let st = nix::sys::stat::stat(copy).unwrap();
    let devno = format!(
        "{}:{}",
        nix::sys::stat::major(st.st_dev),
        nix::sys::stat::minor(st.st_dev)
    );
    let fixed: String = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            if f.len() > 4 && f[4] == "/" {
                let mut f = f.clone();
                f[2] = &devno;
                f.join(" ") + "\n"
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(path, fixed).unwrap();
}

/// Every fixture case under tests/fixtures (a directory with an `expect` file), copied to a
/// temporary directory so that start-up (probe files) never writes into the source tree,
/// with its config (base plus override) written there as `watchdog.yaml`.
pub fn fixture_cases() -> Vec<(String, String, tempfile::TempDir)> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(&base).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(expect) = std::fs::read_to_string(dir.join("expect")) else {
            continue;
        };
        let copy = tempfile::tempdir().unwrap();
        let status = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", dir.display()))
            .arg(copy.path())
            .status()
            .unwrap();
        assert!(status.success(), "copy {}", dir.display());
        root_on_its_real_device(copy.path());
        std::fs::write(copy.path().join("watchdog.yaml"), fixture_config(&dir)).unwrap();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        cases.push((name, expect.trim().to_string(), copy));
    }
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    cases
}
