//! Is sbd running the way Pacemaker finds it: /run/sbd.pid whose executable is
//! /usr/sbin/sbd, else a process named sbd (lib/common/watchdog.c `pcmk__locate_sbd`).

use std::fs;
use std::path::Path;

use super::sbd::{SBD_EXE, SBD_PIDFILE};
use super::{exists, Level, Report};
use crate::system::{process_table, Root};

/// How sbd is running, if it is: Pacemaker looks at /run/sbd.pid whose exe must be
/// /usr/sbin/sbd, then for a process named sbd (lib/common/watchdog.c `pcmk__locate_sbd`).
pub(super) fn sbd_running(root: &Root, report: &mut Report) -> (bool, bool) {
    let mut pidfile_seen = false;
    let mut via_pidfile = None;
    if exists(root, SBD_PIDFILE) {
        pidfile_seen = true;
        match process_table::read_pidfile(root, Path::new(SBD_PIDFILE)) {
            Ok(pid) if root.follow(root.proc(pid.to_string())).exists() => {
                let exe = fs::read_link(root.proc(format!("{pid}/exe"))).map(|t| {
                    t.to_string_lossy()
                        .trim_end_matches(" (deleted)")
                        .to_string()
                });
                match exe {
                    Ok(e) if e == SBD_EXE => via_pidfile = Some(pid),
                    Ok(e) => report.add(
                        Level::Note,
                        "sbd",
                        format!(
                            "{SBD_PIDFILE} names pid {pid}, whose executable is {e}, not \
                             {SBD_EXE}: Pacemaker does not take it for sbd"
                        ),
                        None,
                    ),
                    Err(err) => report.add(
                        Level::Note,
                        "sbd",
                        format!(
                            "{SBD_PIDFILE} names pid {pid}, whose executable cannot be read \
                             ({err}): run doctor as root to see it"
                        ),
                        None,
                    ),
                }
            }
            Ok(pid) => report.add(
                Level::Note,
                "sbd",
                format!("{SBD_PIDFILE} names pid {pid}, which does not run: a stale pidfile"),
                None,
            ),
            Err(e) => report.add(
                Level::Warn,
                "sbd",
                format!("cannot use {e}"),
                Some(format!("remove {SBD_PIDFILE} if sbd is not running")),
            ),
        }
    }
    let procs = process_table::find_by_name(root, "sbd");
    if let Some(pid) = via_pidfile {
        report.add(
            Level::Ok,
            "sbd",
            format!(
                "runs: pid {pid} from {SBD_PIDFILE}, executable {SBD_EXE}: Pacemaker's \
                 watchdog fencing finds it"
            ),
            None,
        );
        return (true, true);
    }
    if let Some(p) = procs.first() {
        report.add(
            Level::Ok,
            "sbd",
            format!(
                "runs: a process named sbd (pid {}{}): Pacemaker's watchdog fencing finds it \
                 by name",
                p.pid,
                if procs.len() > 1 {
                    format!(" and {} more", procs.len() - 1)
                } else {
                    String::new()
                }
            ),
            None,
        );
        return (true, true);
    }
    (false, pidfile_seen)
}
