//! Helper tools the doctor asks (systemctl): run with a clean locale, no pager, no stdin,
//! and killed when they do not answer in time. The doctor is a CLI, not the daemon: it may
//! fork.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs a helper tool, killing it after `timeout`; stdout on exit 0, else why not.
pub fn run_with_timeout(argv: &[&str], timeout: Duration) -> Result<String, String> {
    let (prog, args) = argv.split_first().ok_or("nothing to run")?;
    let mut child = Command::new(prog)
        .args(args)
        .env("LC_ALL", "C")
        .env("SYSTEMD_PAGER", "")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {prog}: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{prog} did not answer within {} s (killed)",
                    timeout.as_secs_f64()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for {prog}: {e}")),
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("reading {prog}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap_or("").trim();
        Err(format!("{prog} failed ({}): {first}", out.status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_helper_that_hangs_is_killed_at_the_timeout() {
        let err = run_with_timeout(&["sleep", "10"], Duration::from_millis(200)).unwrap_err();
        assert!(err.contains("did not answer within 0.2 s"), "{err}");
        assert_eq!(
            run_with_timeout(&["echo", "hi"], Duration::from_secs(5)).unwrap(),
            "hi\n"
        );
        assert!(run_with_timeout(&["false"], Duration::from_secs(5)).is_err());
        assert!(
            run_with_timeout(&["/nonexistent/tool"], Duration::from_secs(1))
                .unwrap_err()
                .starts_with("cannot run /nonexistent/tool")
        );
    }
}
