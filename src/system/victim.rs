//! Test victims: copies of `sleep` under names nothing else on the machine has, so that tests
//! of process matching and killing touch only processes they started themselves.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use crate::system::{process_table, Root};

/// A uniquely named copy of `/bin/sleep` in a directory of its own (readable by every user,
/// so a victim can run as another uid).
pub(crate) struct SleepCopy {
    pub name: String,
    exe: PathBuf,
    _dir: tempfile::TempDir,
}

impl SleepCopy {
    /// `prefix` plus this test process's pid: unique on the machine while the test runs.
    pub fn new(prefix: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("{prefix}{}", std::process::id() % 100_000);
        let exe = dir.path().join(&name);
        std::fs::copy("/bin/sleep", &exe).unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        SleepCopy {
            name,
            exe,
            _dir: dir,
        }
    }

    /// Starts `sleep 60` from the copy (as `uid` and its group, when given: needs root) and
    /// waits until /proc shows the copy's name (exec has happened).
    pub fn spawn(&self, uid: Option<u32>) -> Child {
        // Another test thread may be forking while the copy's descriptor was open, so the
        // kernel can still see the file as open for writing for a moment (ETXTBSY).
        let child = (0..100)
            .find_map(|_| {
                let mut cmd = Command::new(&self.exe);
                cmd.arg("60");
                if let Some(u) = uid {
                    cmd.uid(u).gid(u);
                }
                match cmd.spawn() {
                    Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                        std::thread::sleep(Duration::from_millis(10));
                        None
                    }
                    other => Some(other.unwrap()),
                }
            })
            .expect("the copy of sleep stayed busy");
        for _ in 0..200 {
            if process_table::stat(&Root::host(), i32::try_from(child.id()).unwrap())
                .is_some_and(|s| s.comm == self.name)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child
    }
}
