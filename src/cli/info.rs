//! `wdfeed info`: the watchdog devices as sysfs describes them, read without opening them
//! (opening arms a watchdog), and the fence bound of the config.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config;
use crate::config::bound::{self, Bound};
use crate::device::flags::{decode, describe_bootstatus};
use crate::device::sysfs::{self, SysfsWatchdog};
use crate::system::Root;
use crate::Failure;

#[derive(Serialize)]
struct Report {
    devices: Vec<SysfsWatchdog>,
    /// Device nodes sysfs says nothing about (ipmi_watchdog registers only /dev/watchdog).
    nodes_without_sysfs: Vec<PathBuf>,
    config: String,
    bound: Bound,
}

const HOW_TO_GET_ONE: &str = "no watchdog device found (nothing in /sys/class/watchdog, no /dev/watchdog*).
To get one:
  - in a VM: modprobe softdog (or give the VM an emulated card: QEMU/libvirt i6300esb, then modprobe i6300esb)
  - on Intel boards: modprobe iTCO_wdt
  - on servers with a BMC: modprobe ipmi_si ipmi_watchdog
Then run `wdfeed info` again.";

pub fn run(
    root: &Root,
    only: &[PathBuf],
    config_path: Option<&Path>,
    json: bool,
) -> Result<(), Failure> {
    let loaded = config::load(config_path).map_err(Failure::config)?;
    let all = sysfs::list(root);
    let nodes = sysfs::nodes_without_sysfs(root, &all);
    let wanted = |p: &Path| only.is_empty() || only.iter().any(|o| o == p);
    let devices: Vec<SysfsWatchdog> = all.into_iter().filter(|w| wanted(&w.device)).collect();
    let nodes: Vec<PathBuf> = nodes.into_iter().filter(|n| wanted(n)).collect();
    let identities =
        sysfs::identities(root, loaded.config.devices.iter().map(|d| d.path.as_path()));
    let bound = bound::compute(&loaded.config, &identities, None);

    if json {
        let report = Report {
            devices,
            nodes_without_sysfs: nodes,
            config: loaded.origin.name(),
            bound,
        };
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| Failure::runtime(e.to_string()))?;
        outln!("{text}");
        return Ok(());
    }
    if devices.is_empty() && nodes.is_empty() {
        if only.is_empty() {
            outln!("{HOW_TO_GET_ONE}");
        } else {
            let names: Vec<String> = only.iter().map(|p| p.display().to_string()).collect();
            outln!(
                "no such watchdog device: {} (run `wdfeed info` to list them)",
                names.join(", ")
            );
        }
    }
    for w in &devices {
        print_device(w);
    }
    for n in &nodes {
        outln!("{}  (no sysfs entry: a legacy driver such as ipmi_watchdog; wdfeed learns its identity and timeout when it opens it)\n", n.display());
    }
    outln!("config: {}", loaded.origin.name());
    outln!("{bound}");
    Ok(())
}

fn print_device(w: &SysfsWatchdog) {
    let num = |v: Option<u32>, unit: &str| {
        v.map(|n| format!("{n}{unit}"))
            .unwrap_or_else(|| "-".into())
    };
    outln!("{}  {}", w.name, w.device.display());
    outln!("  identity     {}", w.identity.as_deref().unwrap_or("-"));
    outln!("  state        {}", w.state.as_deref().unwrap_or("-"));
    outln!(
        "  timeout      {} (min {}, max {})",
        num(w.timeout, " s"),
        num(w.min_timeout, " s"),
        num(w.max_timeout, " s")
    );
    outln!("  pretimeout   {}", num(w.pretimeout, " s"));
    outln!("  time left    {}", num(w.timeleft, " s"));
    outln!(
        "  boot status  {}",
        w.bootstatus
            .map(describe_bootstatus)
            .unwrap_or_else(|| "-".into())
    );
    outln!(
        "  nowayout     {}",
        match w.nowayout {
            Some(true) => "yes (once opened, it cannot be stopped: on-exit: disarm has no effect)",
            Some(false) => "no",
            None => "-",
        }
    );
    outln!(
        "  options      {}",
        w.options
            .map(|o| decode(o).join(", "))
            .unwrap_or_else(|| "-".into())
    );
    outln!();
}
