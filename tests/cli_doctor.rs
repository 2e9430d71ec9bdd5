//! `wdfeed doctor --root TREE` on node trees built here: no engine at all; sbd on the very
//! device wdfeed pets; sbd on softdog with a timeout too short for the bound; corosync's own
//! watchdog_device; two_node with diskless sbd; the CIB's fencing-watchdog-timeout;
//! systemd's runtime watchdog; a process holding wdfeed's device; unreadable and garbage
//! files of other engines; the doctor as the executable of its own that `wdfeed doctor` runs.

mod util;

use std::os::unix::fs::symlink;

use util::doctor::{assert_no_panic, Node, CONFIG};
use util::*;

fn lines_with<'a>(out: &'a str, prefix: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.starts_with(prefix)).collect()
}

#[test]
fn a_node_without_engines_is_told_so_and_exits_0() {
    let n = Node::new();
    let out = n.doctor_exits(0);
    assert!(
        out.starts_with("wdfeed doctor: config ")
            && out
                .contains("fence bound 13.0 s, devices /dev/watchdog0 (watchdog0, i6300ESB timer)"),
        "{out}"
    );
    assert!(
        out.contains("no HA engine and no other watchdog user found"),
        "{out}"
    );
    assert!(out.contains("Nothing to change."), "{out}");
    assert!(
        lines_with(&out, "warn").is_empty() && lines_with(&out, "error").is_empty(),
        "{out}"
    );
}

#[test]
fn sbd_on_wdfeeds_device_is_an_error_with_its_fix() {
    let n = Node::new();
    n.sbd_running();
    // Debian's /etc/default/sbd as shipped: SBD_WATCHDOG_DEV=/dev/watchdog, the legacy node
    // of watchdog0.
    n.write(
        "etc/default/sbd",
        "# shipped\nSBD_PACEMAKER=yes\nSBD_STARTMODE=always\nSBD_DELAY_START=no\n\
         SBD_WATCHDOG_DEV=/dev/watchdog\nSBD_WATCHDOG_TIMEOUT=5\nSBD_TIMEOUT_ACTION=flush,reboot\n\
         SBD_SYNC_RESOURCE_STARTUP=yes\nSBD_OPTS=\n",
    );
    let o = n.doctor();
    let out = stdout(&o);
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    assert!(
        out.contains("ok    sbd: runs: pid 812 from /run/sbd.pid, executable /usr/sbin/sbd"),
        "{out}"
    );
    let errors = lines_with(&out, "error");
    assert_eq!(errors.len(), 1, "{out}");
    assert!(
        errors[0].contains("SBD_WATCHDOG_DEV=/dev/watchdog (/etc/default/sbd:5) is watchdog0, which wdfeed pets (/dev/watchdog0)"),
        "{out}"
    );
    assert!(
        out.contains("fix: give sbd its own watchdog: `modprobe softdog`"),
        "{out}"
    );
    assert!(out.contains("note  sbd: SBD_DELAY_START (/etc/default/sbd:4) is off: a node reset by a fence can rejoin"), "{out}");
    assert!(
        stderr(&o).contains("doctor found 1 error"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn sbd_on_softdog_with_a_short_timeout_is_told_the_numbers() {
    let n = Node::new();
    // Found by name only: no pidfile.
    n.process(901, "sbd", "/usr/sbin/sbd");
    n.write(
        "etc/default/sbd",
        "SBD_PACEMAKER=yes\nSBD_WATCHDOG_DEV=/dev/watchdog1\nSBD_WATCHDOG_TIMEOUT=5\nSBD_DELAY_START=yes\n",
    );
    let out = n.doctor_exits(0);
    assert!(
        out.contains("Pacemaker's watchdog fencing finds it by name"),
        "{out}"
    );
    assert!(
        out.contains("ok    sbd: sbd arms /dev/watchdog1 (watchdog1, Software Watchdog, /etc/default/sbd:2), not one of wdfeed's devices"),
        "{out}"
    );
    let warns = lines_with(&out, "warn");
    assert!(
        warns.iter().any(|l| l.contains(
            "SBD_WATCHDOG_TIMEOUT=5 (/etc/default/sbd:3) is less than half of wdfeed's fence bound (13.0 s)"
        )),
        "{out}"
    );
    assert!(
        out.contains("fix: SBD_WATCHDOG_TIMEOUT=7 on every node, or keep 5 and set fencing-watchdog-timeout=13s explicitly"),
        "{out}"
    );
    // SBD_DELAY_START=yes waits 2 x 5 = 10 s, less than the 13 s the peer waits.
    assert!(
        out.contains("SBD_DELAY_START (/etc/default/sbd:4) waits only 10 s at start"),
        "{out}"
    );
    assert!(
        out.contains(
            "for this node: Pacemaker beside sbd: SBD_WATCHDOG_TIMEOUT=7 and SBD_DELAY_START=yes"
        ),
        "{out}"
    );
    assert!(out.contains("fencing-watchdog-timeout=14s"), "{out}");
}

#[test]
fn sbd_set_up_as_advised_passes() {
    let n = Node::new();
    n.sbd_running();
    n.write(
        "etc/default/sbd",
        "SBD_WATCHDOG_DEV=/dev/watchdog1\nSBD_WATCHDOG_TIMEOUT=7\nSBD_DELAY_START=yes\n",
    );
    n.write(
        "var/lib/pacemaker/cib/cib.xml",
        "<cib><configuration><crm_config><cluster_property_set id=\"o\">\
         <nvpair id=\"a\" name=\"stonith-watchdog-timeout\" value=\"14s\"/>\
         </cluster_property_set></crm_config></configuration></cib>\n",
    );
    let out = n.doctor_exits(0);
    assert!(lines_with(&out, "warn").is_empty(), "{out}");
    assert!(
        out.contains(
            "ok    pacemaker: stonith-watchdog-timeout=14s: at least wdfeed's fence bound (13.0 s)"
        ),
        "{out}"
    );
    assert!(
        out.contains("SBD_DELAY_START (/etc/default/sbd:3): sbd waits 14 s at start"),
        "{out}"
    );
}

#[test]
fn a_fencing_watchdog_timeout_below_the_bound_is_an_error() {
    let n = Node::new();
    n.sbd_running();
    n.write(
        "etc/default/sbd",
        "SBD_WATCHDOG_DEV=/dev/watchdog1\nSBD_WATCHDOG_TIMEOUT=5\n",
    );
    // -1 means 2 x SBD_WATCHDOG_TIMEOUT = 10 s: shorter than B = 13 s.
    n.write(
        "var/lib/pacemaker/cib/cib.xml",
        "<cib><nvpair id=\"a\" name=\"fencing-watchdog-timeout\" value=\"-1\"/></cib>\n",
    );
    let out = n.doctor_exits(1);
    assert!(
        out.contains("error pacemaker: fencing-watchdog-timeout=-1 (negative: 2 x SBD_WATCHDOG_TIMEOUT = 10 s) is shorter than wdfeed's fence bound (13.0 s)"),
        "{out}"
    );
    assert!(
        out.contains(
            "fix: crm_attribute --type crm_config --name fencing-watchdog-timeout --update 13s"
        ),
        "{out}"
    );
}

#[test]
fn corosyncs_own_watchdog_on_wdfeeds_device_is_a_warning() {
    let n = Node::new();
    n.write(
        "etc/corosync/corosync.conf",
        "totem {\n\tversion: 2\n\tcluster_name: lab\n}\nquorum {\n\tprovider: corosync_votequorum\n}\n\
         resources {\n\twatchdog_device: /dev/watchdog0\n}\n",
    );
    let out = n.doctor_exits(0);
    let warns = lines_with(&out, "warn");
    assert_eq!(warns.len(), 1, "{out}");
    assert!(
        warns[0].contains("corosync's watchdog service opens /dev/watchdog0 (/etc/corosync/corosync.conf:9): watchdog0, which wdfeed pets"),
        "{out}"
    );
    assert!(
        out.contains("fix: remove resources.watchdog_device"),
        "{out}"
    );
}

#[test]
fn two_node_with_diskless_sbd_is_an_error() {
    let n = Node::new();
    n.sbd_running();
    n.write(
        "etc/default/sbd",
        "SBD_WATCHDOG_DEV=/dev/watchdog1\nSBD_WATCHDOG_TIMEOUT=7\nSBD_DELAY_START=yes\n",
    );
    n.write(
        "etc/corosync/corosync.conf",
        "quorum {\n  provider: corosync_votequorum\n  two_node: 1\n}\n",
    );
    let out = n.doctor_exits(1);
    assert!(
        out.contains(
            "error corosync: two_node: 1 (/etc/corosync/corosync.conf:3) with diskless sbd"
        ),
        "{out}"
    );
    assert!(out.contains("corosync-qdevice with a qnetd host"), "{out}");

    // With a qdevice instead, the qdevice sync_timeout must not exceed SBD_WATCHDOG_TIMEOUT.
    n.write(
        "etc/corosync/corosync.conf",
        "quorum {\n  provider: corosync_votequorum\n  device {\n    model: net\n  }\n}\n",
    );
    let out = stdout(&n.doctor());
    assert!(
        out.contains("error corosync: qdevice (/etc/corosync/corosync.conf:4) with quorum.device.sync_timeout 30000 ms (corosync's default)"),
        "{out}"
    );
}

#[test]
fn systemds_runtime_watchdog_on_wdfeeds_device_is_an_error() {
    let n = Node::new();
    n.write(
        "etc/systemd/system.conf",
        "[Manager]\n#RuntimeWatchdogSec=off\n",
    );
    n.write(
        "etc/systemd/system.conf.d/50-watchdog.conf",
        "[Manager]\nRuntimeWatchdogSec=30s\n",
    );
    let out = n.doctor_exits(1);
    assert!(
        out.contains("error systemd: PID 1 opens and pets /dev/watchdog0 (watchdog0, systemd's default; RuntimeWatchdogSec=30s, /etc/systemd/system.conf.d/50-watchdog.conf:2), which wdfeed pets"),
        "{out}"
    );
}

#[test]
fn a_process_holding_wdfeeds_device_is_named() {
    let n = Node::new();
    n.process(4242, "watchdog", "/usr/sbin/watchdog");
    std::fs::create_dir_all(n.fx.path().join("proc/4242/fd")).unwrap();
    symlink("/dev/watchdog0", n.fx.path().join("proc/4242/fd/3")).unwrap();
    let out = n.doctor_exits(1);
    assert!(
        out.contains("error holder: pid 4242 (watchdog) holds /dev/watchdog0 (watchdog0) open now"),
        "{out}"
    );
}

#[test]
fn keepalived_outside_the_kill_list_is_a_warning() {
    let n = Node::new();
    n.process(700, "keepalived", "/usr/sbin/keepalived");
    let out = stdout(&n.doctor());
    assert!(
        out.contains("warn  keepalived: keepalived runs (pid 700) but fence.kill does not list it"),
        "{out}"
    );
}

#[test]
fn unreadable_and_garbage_files_are_reported_by_path_never_a_crash() {
    let n = Node::new();
    n.sbd_running();
    // A directory where sbd's environment file should be: reading it fails for any user.
    std::fs::create_dir_all(n.fx.path().join("etc/default/sbd")).unwrap();
    n.write(
        "etc/corosync/corosync.conf",
        &String::from_utf8_lossy(&[0xff, 0xfe, b'{', 0x01, b'\n', b'}', b'}', b'\n']),
    );
    std::fs::create_dir_all(n.fx.path().join("etc/systemd/system.conf")).unwrap();
    n.write(
        "var/lib/pacemaker/cib/cib.xml",
        "<cib><nvpair name=\"fencing-watchdog-timeout\" value=\"soon\"/>",
    );
    n.write("run/sbd.pid", "not a pid\n");
    let o = n.doctor();
    let out = stdout(&o);
    assert_no_panic(&o);
    assert!(
        out.contains("warn  sbd: cannot read sbd's environment file: /etc/default/sbd: "),
        "{out}"
    );
    assert!(
        out.contains("warn  corosync: /etc/corosync/corosync.conf:1: "),
        "{out}"
    );
    assert!(
        out.contains("warn  systemd: cannot read /etc/systemd/system.conf: "),
        "{out}"
    );
    assert!(
        out.contains("warn  pacemaker: fencing-watchdog-timeout=`soon` (/var/lib/pacemaker/cib/cib.xml) is not a time"),
        "{out}"
    );
    assert!(
        out.contains("warn  sbd: cannot use /run/sbd.pid: "),
        "{out}"
    );
    assert!(out.contains("summary: "), "{out}");
}

#[test]
fn a_bad_wdfeed_config_is_a_config_error() {
    let n = Node::new();
    n.write("watchdog.yaml", "devices: []\nbogus: 1\n");
    let o = n.doctor();
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    assert_no_panic(&o);
}

#[test]
fn the_kill_list_is_weighed_against_the_engines_found() {
    let n = Node::new();
    n.sbd_running();
    n.write(
        "etc/default/sbd",
        "SBD_WATCHDOG_DEV=/dev/watchdog1\nSBD_WATCHDOG_TIMEOUT=7\nSBD_DELAY_START=yes\n",
    );
    n.write("usr/sbin/pacemakerd", "");
    n.write("etc/corosync/corosync.conf", "totem {\n  version: 2\n}\n");
    n.write(
        "watchdog.yaml",
        &CONFIG.replace("[sbd, corosync]", "[pacemakerd]"),
    );
    let out = stdout(&n.doctor());
    assert!(
        out.contains("warn  wdfeed: fence.kill does not list sbd"),
        "{out}"
    );
    assert!(
        out.contains("warn  wdfeed: fence.kill does not list corosync"),
        "{out}"
    );
    assert!(
        out.contains(
            "note  wdfeed: fence.kill lists pacemakerd: systemd restarts pacemaker.service"
        ),
        "{out}"
    );
    assert!(out.contains("fix: fence.kill: [sbd, corosync]"), "{out}");
}

/// The doctor is an executable of its own beside wdfeed's: `wdfeed doctor` runs it with the
/// options it was given, and says what to do when it is missing.
#[test]
fn the_doctor_runs_beside_wdfeed_and_a_missing_one_is_named() {
    let n = Node::new();
    let direct = std::process::Command::new(env!("CARGO_BIN_EXE_wdfeed-doctor"))
        .args(["--root", &n.fx.root_arg(), "-c"])
        .arg(n.fx.path().join("watchdog.yaml"))
        .output()
        .unwrap();
    assert_eq!(stdout(&direct), stdout(&n.doctor()));
    let alone = tempfile::tempdir().unwrap();
    let copy = alone.path().join("wdfeed");
    std::fs::copy(env!("CARGO_BIN_EXE_wdfeed"), &copy).unwrap();
    // Another test thread forking while the copy was open for writing holds it open a
    // moment longer (ETXTBSY).
    let o = (0..100)
        .find_map(|_| {
            match std::process::Command::new(&copy)
                .args(["doctor", "-c", "/nonexistent.yaml"])
                .output()
            {
                Err(e) if e.raw_os_error() == Some(26) => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    None
                }
                other => Some(other.unwrap()),
            }
        })
        .expect("the copy of wdfeed stayed busy");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let want = format!(
        "wdfeed: cannot run the doctor {}: No such file or directory (os error 2); it is installed beside wdfeed",
        alone.path().join("wdfeed-doctor").display()
    );
    assert!(stderr(&o).starts_with(&want), "{}", stderr(&o));
    assert_no_panic(&o);
}

#[test]
fn heartbeats_deadtime_below_the_bound_is_a_warning_and_above_it_ok() {
    let n = Node::new();
    n.write("etc/ha.d/ha.cf", "keepalive 1\ndeadtime 10\nwarntime 5\n");
    let out = stdout(&n.doctor());
    assert!(
        out.contains(
            "warn  heartbeat: deadtime 10s (/etc/ha.d/ha.cf:2) is not longer than wdfeed's \
             fence bound 13.0 s"
        ),
        "{out}"
    );
    assert!(
        out.contains("fix: set `deadtime` in /etc/ha.d/ha.cf above 13.0 s on both nodes"),
        "{out}"
    );
    n.write("etc/ha.d/ha.cf", "keepalive 1\n");
    let out = stdout(&n.doctor());
    assert!(
        out.contains("ok    heartbeat: deadtime 30s (heartbeat's default) is longer than the fence bound 13.0 s"),
        "{out}"
    );
    n.write("etc/ha.d/ha.cf", "deadtime soon\n");
    let out = stdout(&n.doctor());
    assert!(
        out.contains("warn  heartbeat: /etc/ha.d/ha.cf:1: deadtime `soon` is not a time"),
        "{out}"
    );
}

#[test]
fn a_drbd_device_in_block_io_and_a_drbd_mount_without_when_are_warnings() {
    let n = Node::new();
    n.write(
        "watchdog.yaml",
        &format!(
            "{CONFIG}  - kind: block-io\n    devices: [vda, drbd0]\n    stuck-after: 5s\n    \
             every: 1s\n    deadline: 2s\n  - kind: writable\n    label: export\n    mounts: \
             [/srv/nfs]\n    every: 1s\n    deadline: 2s\n  - kind: writable\n    label: \
             other\n    mounts: [/srv/other]\n    every: 1s\n    deadline: 2s\n    when: \
             {{mounted: /srv/other}}\n"
        ),
    );
    // /srv/nfs is mounted here (the Primary); /srv/other is the standby's view, named only
    // in haresources.
    n.write(
        "proc/1/mountinfo",
        &format!("{MOUNTINFO_RW}40 22 147:0 / /srv/nfs rw,relatime - ext4 /dev/drbd0 rw\n"),
    );
    n.write(
        "etc/ha.d/haresources",
        "n1 drbddisk::r1 Filesystem::/dev/drbd1::/srv/other::ext4 IPaddr2::10.99.0.100/24/eth0\n",
    );
    let o = n.doctor();
    let out = stdout(&o);
    assert_no_panic(&o);
    assert!(
        out.contains("warn  drbd: checks[1] (block-io vda,drbd0) lists drbd0, a DRBD device"),
        "{out}"
    );
    assert!(
        out.contains("(10.5s to 42s by DRBD 8.4's defaults), and a stuck-after of 5s"),
        "{out}"
    );
    assert!(
        out.contains("fix: remove drbd0 from block-io's devices"),
        "{out}"
    );
    assert!(
        out.contains(
            "warn  drbd: checks[2] (export) watches /srv/nfs on /dev/drbd0 without `when:`"
        ),
        "{out}"
    );
    assert!(
        out.contains("fix: give that check `when: {mounted: /srv/nfs}`"),
        "{out}"
    );
    assert!(
        out.contains(
            "ok    drbd: checks[3] (other) watches /srv/other on /dev/drbd1 when mounted /srv/other"
        ),
        "{out}"
    );
}

#[test]
fn drbd_resources_named_without_debugfs_are_a_warning() {
    let n = Node::new();
    n.write(
        "watchdog.yaml",
        &format!(
            "{CONFIG}  - kind: drbd\n    resources: [r0]\n    every: 1s\n    deadline: 2s\n    \
             when: {{drbd-primary: r0}}\n"
        ),
    );
    n.write("proc/drbd", "version: 8.4.11 (api:1/proto:86-101)\n");
    let out = stdout(&n.doctor());
    assert!(
        out.contains(
            "warn  drbd: drbd r0 name DRBD resources, but /sys/kernel/debug/drbd/minors is missing"
        ),
        "{out}"
    );
    std::fs::create_dir_all(n.fx.path().join("sys/kernel/debug/drbd/minors")).unwrap();
    let out = stdout(&n.doctor());
    assert!(
        out.contains("ok    drbd: DRBD names its resources in debugfs"),
        "{out}"
    );
}
