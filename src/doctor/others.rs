//! keepalived (is it in the kill list) and any process that holds a watchdog open now.

use super::{devices, exists, Level, Report, Wdfeed};
use crate::system::process_table;

pub(super) fn check_keepalived(wd: &Wdfeed, report: &mut Report) {
    let root = wd.root;
    let procs = process_table::find_by_name(root, "keepalived");
    let conf = exists(root, "/etc/keepalived/keepalived.conf");
    if procs.is_empty() && !conf {
        return;
    }
    report.engines.push("keepalived");
    let how = match procs.first() {
        Some(p) => format!("runs (pid {})", p.pid),
        None => "is configured (/etc/keepalived/keepalived.conf)".into(),
    };
    if wd.kills("keepalived") {
        report.add(
            Level::Ok,
            "keepalived",
            format!("keepalived {how}, and fence.kill lists it"),
            None,
        );
    } else {
        report.add(
            Level::Warn,
            "keepalived",
            format!(
                "keepalived {how} but fence.kill does not list it: after a fence it goes on \
                 sending adverts, and the peer does not take the address until the reset"
            ),
            Some("add keepalived to fence.kill".into()),
        );
    }
}

pub(super) fn check_holders(wd: &Wdfeed, report: &mut Report) {
    for h in devices::holders(wd.root) {
        if h.comm == "wdfeed" {
            continue;
        }
        if !report.engines.contains(&"holder") {
            report.engines.push("holder");
        }
        if let Some(ours) = wd.uses(&h.device) {
            report.add(
                Level::Error,
                "holder",
                format!(
                    "pid {} ({}) holds {} ({}) open now: wdfeed cannot open it while it does",
                    h.pid,
                    h.comm,
                    ours.display(),
                    h.device
                ),
                Some(format!(
                    "stop {} or point it at another watchdog; a watchdog has one opener",
                    h.comm
                )),
            );
        } else {
            report.add(
                Level::Ok,
                "holder",
                format!(
                    "pid {} ({}) holds {}, not one of wdfeed's devices",
                    h.pid, h.comm, h.device
                ),
                None,
            );
        }
    }
}
