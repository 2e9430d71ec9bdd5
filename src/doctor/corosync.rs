//! corosync: its own watchdog (`resources.watchdog_device`, a second holder beside wdfeed
//! and sbd), `two_node` with diskless sbd (the survivor resets itself), and a qdevice whose
//! sync_timeout sbd distrusts. The file is /etc/corosync/corosync.conf.

use std::path::Path;

use super::sbd::Sbd;
use super::{corosync_conf, devices, read_file, Level, Report, Wdfeed};
use crate::config::advice;
use crate::system::process_table;

const COROSYNC_CONF: &str = "/etc/corosync/corosync.conf";

pub(super) fn check(wd: &Wdfeed, sbd: Option<&Sbd>, report: &mut Report) {
    let root = wd.root;
    let running = !process_table::find_by_name(root, "corosync").is_empty();
    let text = match read_file(root, COROSYNC_CONF) {
        Ok(None) if !running => return,
        Ok(None) => {
            report.engines.push("corosync");
            report.add(
                Level::Note,
                "corosync",
                format!("corosync runs but {COROSYNC_CONF} does not exist: its settings are not checked"),
                None,
            );
            return;
        }
        Ok(Some(t)) => t,
        Err(e) => {
            report.engines.push("corosync");
            report.add(
                Level::Warn,
                "corosync",
                format!(
                    "cannot read corosync's config: {e}; its watchdog and quorum are not checked"
                ),
                Some("run doctor as root, or fix the file".into()),
            );
            return;
        }
    };
    report.engines.push("corosync");
    if !wd.kills("corosync") {
        report.add(
            Level::Warn,
            "wdfeed",
            "fence.kill does not list corosync: after a fence the node stays in the membership \
             until its interfaces go down or the hardware resets it"
                .into(),
            Some("fence.kill: [sbd, corosync]".into()),
        );
    }
    let keys = match corosync_conf::parse(&text) {
        Ok(k) => k,
        Err(e) => {
            report.add(
                Level::Warn,
                "corosync",
                format!(
                    "{COROSYNC_CONF}:{}: {}; its watchdog and quorum are not checked",
                    e.line, e.what
                ),
                Some("fix the file (corosync refuses it too)".into()),
            );
            return;
        }
    };
    let at = |k: &corosync_conf::Key| format!("{COROSYNC_CONF}:{}", k.line);

    match corosync_conf::get(&keys, "resources.watchdog_device") {
        Some(k) if !(k.value.is_empty() || k.value == "off") => {
            let key = devices::key(root, Path::new(&k.value));
            let holder_of = if let Some(ours) = wd.uses(&key) {
                format!(
                    "{key}, which wdfeed pets ({}): whichever starts second cannot open it \
                     (corosync then runs without it)",
                    ours.display()
                )
            } else if sbd.and_then(|s| s.device.as_deref()) == Some(key.as_str()) {
                format!("{key}, the watchdog sbd arms: one of the two cannot open it")
            } else {
                format!("{key}: a third party petting a watchdog beside wdfeed and sbd")
            };
            report.add(
                Level::Warn,
                "corosync",
                format!(
                    "corosync's watchdog service opens {} ({}): {holder_of}",
                    k.value,
                    at(k)
                ),
                Some(
                    "remove resources.watchdog_device (or set it to off): wdfeed and sbd \
                     already watch corosync"
                        .into(),
                ),
            );
        }
        _ => report.add(
            Level::Ok,
            "corosync",
            "corosync's own watchdog is off (no resources.watchdog_device)".into(),
            None,
        ),
    }

    let two_node = corosync_conf::get(&keys, "quorum.two_node").filter(|k| k.value.trim() == "1");
    let qdevice = corosync_conf::get(&keys, "quorum.device.model").filter(|k| !k.value.is_empty());
    if let (Some(k), Some(s)) = (two_node, sbd) {
        if s.diskless && qdevice.is_none() {
            report.add(
                Level::Error,
                "corosync",
                format!(
                    "two_node: 1 ({}) with diskless sbd: once sbd has seen both nodes, it \
                     treats a node left alone as without quorum and resets it within \
                     SBD_WATCHDOG_TIMEOUT, so the peer that should take over resets too",
                    at(k)
                ),
                Some(
                    "give the cluster a third vote: corosync-qdevice with a qnetd host (and \
                     no two_node), or a third node, or disk-based sbd (SBD_DEVICE)"
                        .into(),
                ),
            );
        }
    }
    if let (Some(model), Some(s)) = (qdevice, sbd) {
        let s_secs = s.timeout.unwrap_or(advice::SBD_DEFAULT_WATCHDOG_TIMEOUT);
        let sync = corosync_conf::get(&keys, "quorum.device.sync_timeout");
        let sync_ms: u64 = sync
            .and_then(|k| k.value.trim().parse().ok())
            .unwrap_or(30_000);
        if sync_ms / 1000 > s_secs {
            report.add(
                Level::Error,
                "corosync",
                format!(
                    "qdevice ({}) with quorum.device.sync_timeout {} ms ({}): more than \
                     SBD_WATCHDOG_TIMEOUT ({s_secs} s), so sbd distrusts quorum and never \
                     reports the node healthy",
                    at(model),
                    sync_ms,
                    sync.map_or_else(|| "corosync's default".to_string(), at)
                ),
                Some(format!(
                    "quorum.device.sync_timeout at most {} (and quorum.device.timeout below \
                     it), or a larger SBD_WATCHDOG_TIMEOUT",
                    s_secs * 1000
                )),
            );
        }
    }
}
