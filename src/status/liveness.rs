//! Whether the daemon that wrote a status file still runs: a SIGKILLed daemon leaves its
//! last file behind, which must not read as a healthy node.

use crate::system::process_table;
use crate::system::Root;

/// The name the kernel gives the daemon's main thread (`/proc/PID/stat`'s comm).
pub const COMM: &str = "wdfeed";

/// This process's start time (clock ticks after boot), for the status file: with the pid
/// it names this daemon even once the pid is reused. Read once.
pub fn own_start_time() -> Option<u64> {
    static START: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *START.get_or_init(|| {
        let pid = i32::try_from(std::process::id()).ok()?;
        process_table::detail(&Root::host(), pid).map(|d| d.start_time)
    })
}

/// `Ok` when `pid` is a live wdfeed that started at `start_time` (when the file says);
/// otherwise why it is not running.
pub fn check(root: &Root, pid: u32, start_time: Option<u64>) -> Result<(), String> {
    let gone = |why: String| Err(format!("wdfeed pid {pid} is not running: {why}"));
    let Some(d) = i32::try_from(pid)
        .ok()
        .and_then(|p| process_table::detail(root, p))
    else {
        return gone(
            "no such process (killed, or crashed, without removing its status file)".into(),
        );
    };
    if d.stat.state == 'Z' || d.stat.state == 'X' {
        return gone("it is a zombie (it died; its parent has not reaped it yet)".into());
    }
    if let Some(want) = start_time {
        if d.start_time != want {
            return gone(format!(
                "pid {pid} now belongs to another process (`{}`, started at tick {} instead of {want})",
                d.stat.comm.escape_debug(),
                d.start_time
            ));
        }
    }
    if d.stat.comm != COMM {
        return gone(format!(
            "pid {pid} is `{}`, not wdfeed",
            d.stat.comm.escape_debug()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(pid: u32, comm: &str, state: char, start: u64) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(format!("proc/{pid}"));
        std::fs::create_dir_all(&p).unwrap();
        let fields = (4..22).map(|_| "0").collect::<Vec<_>>().join(" ");
        std::fs::write(
            p.join("stat"),
            format!("{pid} ({comm}) {state} {fields} {start} 0 0\n"),
        )
        .unwrap();
        dir
    }

    #[test]
    fn a_live_wdfeed_with_its_start_time_is_running() {
        let d = root_with(42, "wdfeed", 'S', 1000);
        let r = Root::at(d.path());
        assert_eq!(check(&r, 42, Some(1000)), Ok(()));
        assert_eq!(check(&r, 42, None), Ok(()));
    }

    #[test]
    fn gone_zombie_reused_or_foreign_pids_are_not_running() {
        let d = root_with(42, "wdfeed", 'S', 1000);
        let r = Root::at(d.path());
        let e = check(&r, 43, Some(1000)).unwrap_err();
        assert!(e.contains("not running: no such process"), "{e}");
        let e = check(&r, 42, Some(999)).unwrap_err();
        assert!(e.contains("another process"), "{e}");
        let d = root_with(42, "wdfeed", 'Z', 1000);
        let e = check(&Root::at(d.path()), 42, Some(1000)).unwrap_err();
        assert!(e.contains("zombie"), "{e}");
        let d = root_with(42, "bash", 'S', 1000);
        let e = check(&Root::at(d.path()), 42, None).unwrap_err();
        assert!(e.contains("not wdfeed"), "{e}");
    }
}
