//! Pacemaker's watchdog-fencing options as the CIB on disk holds them:
//! `fencing-watchdog-timeout` (`stonith-watchdog-timeout` before 3.0.2; 3.0.2 reads both)
//! against SBD_WATCHDOG_TIMEOUT (pacemaker-controld exits when it is shorter) and against
//! wdfeed's fence bound (the peer must not stop waiting before this node is reset), and
//! `stonith-enabled`.

use super::sbd::{yes, Sbd};
use super::{cib, exists, printable, read_file, Level, Report, Wdfeed};
use crate::config::advice;
use crate::system::process_table;

const CIB_FILE: &str = "/var/lib/pacemaker/cib/cib.xml";

pub(super) fn check(wd: &Wdfeed, sbd: Option<&Sbd>, report: &mut Report) {
    let root = wd.root;
    let running = !process_table::find_by_name(root, "pacemakerd").is_empty();
    let cib = read_file(root, CIB_FILE);
    let installed = exists(root, "/usr/sbin/pacemakerd");
    if !running && !installed && matches!(cib, Ok(None)) {
        return;
    }
    report.engines.push("pacemaker");
    if wd.kills("pacemakerd") {
        report.add(
            Level::Note,
            "wdfeed",
            "fence.kill lists pacemakerd: systemd restarts pacemaker.service a second later \
             (Restart=on-failure), and its Requires= starts corosync again on the fenced node"
                .into(),
            Some("fence.kill: [sbd, corosync]".into()),
        );
    }
    let xml = match cib {
        Ok(Some(x)) => x,
        Ok(None) => {
            report.add(
                Level::Note,
                "pacemaker",
                format!("no CIB on disk ({CIB_FILE}): its fencing options are not checked"),
                None,
            );
            return;
        }
        Err(e) => {
            report.add(
                Level::Warn,
                "pacemaker",
                format!("cannot read the CIB: {e}; its fencing options are not checked"),
                Some("run doctor as root".into()),
            );
            return;
        }
    };
    if cib::option(&xml, "stonith-enabled").is_some_and(|v| !yes(v)) {
        report.add(
            Level::Warn,
            "pacemaker",
            "stonith-enabled is false: the peer takes over a lost node's resources without \
             waiting for it to be fenced"
                .into(),
            Some("crm_attribute --type crm_config --name stonith-enabled --update true".into()),
        );
    }
    let (name, value) = match (
        cib::option(&xml, "fencing-watchdog-timeout"),
        cib::option(&xml, "stonith-watchdog-timeout"),
    ) {
        (Some(v), _) => ("fencing-watchdog-timeout", Some(v)),
        (None, Some(v)) => ("stonith-watchdog-timeout", Some(v)),
        (None, None) => ("fencing-watchdog-timeout", None),
    };
    let s = sbd
        .and_then(|s| s.timeout)
        .unwrap_or(advice::SBD_DEFAULT_WATCHDOG_TIMEOUT);
    let want = advice::fencing_watchdog_timeout(wd.bound.total, s);
    let set_it = format!(
        "crm_attribute --type crm_config --name {name} --update {want}s \
         (stonith-watchdog-timeout before Pacemaker 3.0.2)"
    );
    let ms = match value.map(|v| (v, cib::parse_msec(v))) {
        None => 0,
        Some((_, Some(ms))) => ms,
        Some((v, None)) => {
            report.add(
                Level::Warn,
                "pacemaker",
                format!("{name}=`{}` ({CIB_FILE}) is not a time", printable(v)),
                Some(set_it),
            );
            return;
        }
    };
    let shown = value.unwrap_or("0 (unset)");
    if ms == 0 {
        if sbd.is_some() {
            report.add(
                Level::Warn,
                "pacemaker",
                format!(
                    "{name} is {shown}: Pacemaker never assumes that a lost node fenced itself \
                     through sbd; without another fence device the peer recovers nothing"
                ),
                Some(set_it),
            );
        }
        return;
    }
    let f_ms = if ms < 0 {
        2 * 1000 * i64::try_from(s).unwrap_or(i64::MAX / 4000)
    } else {
        ms
    };
    let f_note = if ms < 0 {
        format!(" (negative: 2 x SBD_WATCHDOG_TIMEOUT = {} s)", f_ms / 1000)
    } else {
        String::new()
    };
    if sbd.is_none_or(|s| !s.running) {
        report.add(
            Level::Error,
            "pacemaker",
            format!(
                "{name}={shown}{f_note} but sbd does not run: pacemaker-controld exits \
                 (\"configured but SBD not active\")"
            ),
            Some("run sbd (diskless, on its own watchdog), or set the option to 0".into()),
        );
    }
    let bound_ms = i64::try_from(wd.bound.total.as_millis()).unwrap_or(i64::MAX);
    let s_ms = 1000 * i64::try_from(s).unwrap_or(0);
    if f_ms < s_ms {
        report.add(
            Level::Error,
            "pacemaker",
            format!(
                "{name}={shown}{f_note} is shorter than SBD_WATCHDOG_TIMEOUT ({s} s): \
                 pacemaker-controld exits (\"too short\")"
            ),
            Some(set_it),
        );
    } else if f_ms < bound_ms {
        report.add(
            Level::Error,
            "pacemaker",
            format!(
                "{name}={shown}{f_note} is shorter than wdfeed's fence bound ({}): the peer \
                 may take over while this node is not yet reset",
                wd.b()
            ),
            Some(set_it),
        );
    } else if f_ms < 2 * s_ms {
        report.add(
            Level::Warn,
            "pacemaker",
            format!(
                "{name}={shown}{f_note} is less than 2 x SBD_WATCHDOG_TIMEOUT ({} s): sbd \
                 itself may take up to SBD_WATCHDOG_TIMEOUT to reset a node, with no margin",
                2 * s
            ),
            Some(set_it),
        );
    } else {
        report.add(
            Level::Ok,
            "pacemaker",
            format!(
                "{name}={shown}{f_note}: at least wdfeed's fence bound ({}) and 2 x \
                 SBD_WATCHDOG_TIMEOUT",
                wd.b()
            ),
            None,
        );
    }
}
