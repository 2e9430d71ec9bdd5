//! `--root` against a real root, as a container sees its node: this machine's `/` bound
//! recursively (with /proc, /sys, /dev and every other submount) at a directory, read-only
//! where the kernel allows, with only the writable probe's directory bound writable on top,
//! as deploy/kubernetes/daemonset.yaml mounts the host at /host. `wdfeed --root <that
//! directory> check` must give the verdicts `wdfeed check` gives on `/` itself.
//!
//! The mounts live in a private mount namespace (`unshare --mount --propagation private`)
//! that ends with the script: nothing is mounted in this machine's own namespace, and the
//! test checks that afterwards. Needs root (CAP_SYS_ADMIN); otherwise it says why and skips.

mod util;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use serde_json::Value;
use util::*;

/// Runs in the private namespace: `$1` the mount point of the view, `$2` the probe's
/// directory, `$3` the config, `$4` wdfeed, `$5` where the outputs go (a directory of the
/// machine's own tree, reached outside the view).
const SCRIPT: &str = r#"
set -eu
view=$1 probe_dir=$2 config=$3 wdfeed=$4 out=$5
mount --rbind / "$view"
# Read-only where possible, one mount at a time: `remount,bind,ro` sets the read-only flag
# of that mount in this namespace only. (Never `remount,ro` without `bind`: that would make
# the filesystem itself read-only, for the whole machine.)
awk -v v="$view" '$5 == v || index($5, v "/") == 1 { print $5 }' /proc/self/mountinfo |
while read -r m; do
    case $m in *\\*) echo "left read-write (escaped name): $m" >>"$out/view.log"; continue ;; esac
    mount -o remount,bind,ro "$m" 2>>"$out/view.log" || echo "left read-write: $m" >>"$out/view.log"
done
# (A mount stacked under another at the same point keeps its flags: nothing reaches it.)
ro=0 rw=0
while read -r _ _ _ _ point opts _; do
    case $point in "$view"|"$view"/*) ;; *) continue ;; esac
    case ,$opts, in
    *,ro,*) ro=$((ro + 1)) ;;
    *) rw=$((rw + 1)); echo "read-write: ${point#"$view"}" >>"$out/view.log" ;;
    esac
done </proc/self/mountinfo
echo "mounts in the view: $ro read-only, $rw read-write" >>"$out/view.log"
# A regular file cannot be created in the read-only view...
if touch "$view$probe_dir/../outside-the-probe" 2>/dev/null; then echo yes; else echo no; fi >"$out/root-writable"
# ...but a device node on it still opens for writing (/dev/watchdog*, /dev/kmsg in a pod).
if printf '' >"$view/dev/null"; then echo yes; else echo no; fi >"$out/dev-writable"
set +e
"$wdfeed" --root "$view" check --config "$config" --json >"$out/without-probe-mount.json" 2>>"$out/view.log"
mount --bind "$probe_dir" "$view$probe_dir"
"$wdfeed" --root "$view" check --config "$config" --json >"$out/view.json" 2>>"$out/view.log"
echo "exit $?" >>"$out/view.log"
"#;

/// The effective uid.
fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Why this machine cannot run the test, if it cannot.
fn cannot_run() -> Option<String> {
    if euid() != 0 {
        return Some(format!(
            "not root (euid {}): a private mount namespace and bind mounts need CAP_SYS_ADMIN",
            euid()
        ));
    }
    // What matters is that PID 1's mount table, the one the writable check reads, is the
    // one this test sees (PID 1's ns link may not be readable, even by root).
    let table = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
            .map(|t| mount_points(&t))
            .ok()
    };
    if table("1").is_none() || table("1") != table("self") {
        return Some(
            "this test does not see PID 1's mounts (another mount namespace): \
             /proc/1/mountinfo, which the writable check reads, would not describe them"
                .into(),
        );
    }
    match Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .output()
    {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "unshare --mount fails here: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("unshare (util-linux) cannot run: {e}")),
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        match u8::from_str_radix(rest.get(at + 1..at + 4).unwrap_or(""), 8) {
            Ok(b) => {
                out.push(b as char);
                rest = &rest[at + 4..];
            }
            Err(_) => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .collect()
}

/// The mount point (in the init namespace, as the writable check sees it) holding `path`.
fn mount_holding(path: &Path) -> PathBuf {
    let table = std::fs::read_to_string("/proc/1/mountinfo").unwrap();
    mount_points(&table)
        .into_iter()
        .filter(|m| path.starts_with(m))
        .max_by_key(|m| m.components().count())
        .expect("/ is mounted")
}

/// A process this test started, killed when the test ends however it ends.
struct Victim(Child);

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn verdicts(json: &Value) -> Vec<(String, bool)> {
    json.as_array()
        .expect("a JSON list of checks")
        .iter()
        .map(|r| {
            (
                r["check"].as_str().unwrap().to_string(),
                r["healthy"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn evidence<'a>(json: &'a Value, check: &str) -> &'a str {
    json.as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"] == check)
        .and_then(|r| r["evidence"].as_str())
        .unwrap_or_else(|| panic!("no check {check}"))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", path.display()))
}

#[test]
fn check_under_a_read_only_bind_of_the_real_root_matches_check_on_the_root() {
    if let Some(why) = cannot_run() {
        println!("SKIPPED root_bind_mount: {why}");
        return;
    }
    // The probe lives only where no other user can write (root's directories all the way,
    // never under a world-writable /tmp): the test's tree goes in the target directory.
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let base = tmp.path().canonicalize().unwrap();
    if let Some(open) = base.ancestors().find(|a| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(a).is_ok_and(|m| m.uid() != 0 || m.mode() & 0o022 != 0)
    }) {
        println!(
            "SKIPPED root_bind_mount: {} is not root's alone, and wdfeed keeps no probe below it",
            open.display()
        );
        return;
    }
    let view = base.join("root");
    let probe_dir = base.join("probe");
    let out = base.join("out");
    for d in [&view, &probe_dir, &out] {
        std::fs::create_dir(d).unwrap();
    }

    // A uniquely named process for the process check: sleep under a name of our own.
    let name = format!("wdfb{}", std::process::id());
    assert!(name.len() <= 15, "comm holds 15 bytes");
    let exe = base.join(&name);
    std::fs::copy("/bin/sleep", &exe).unwrap();
    let victim = Victim(Command::new(&exe).arg("600").spawn().unwrap());
    let absent = format!("wdfa{}", std::process::id());

    let mount = mount_holding(&probe_dir);
    let probe = probe_dir.join("probe");
    let config = base.join("watchdog.yaml");
    let config_text = format!(
        "devices:
  - path: /dev/watchdog0
    timeout: 30s
interval: 5s
fence:
  kill: []
checks:
  - kind: writable
    label: writable
    mounts: [{mount}]
    probe-paths: {{{mount}: {probe}}}
  - kind: block-io
    label: block-io
    stuck-after: 2s
  - kind: process
    label: process-present
    name: {name}
  - kind: process
    label: process-absent
    name: {absent}
  - kind: load
    label: load
    max-load-1: 10000
  - kind: memory
    label: memory
    min-available: 1MiB
  - kind: memory
    label: memory-impossible
    min-available: 1000000TiB
",
        mount = mount.display(),
        probe = probe.display(),
    );
    std::fs::write(&config, &config_text).unwrap();

    // On / itself.
    let direct = run(&["check", "--config", config.to_str().unwrap(), "--json"]);
    assert_eq!(
        direct.status.code(),
        Some(1),
        "two checks are meant to fail"
    );
    let direct: Value = serde_json::from_str(&stdout(&direct)).unwrap();

    // Under the bind of /, in a private mount namespace.
    let ns = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            SCRIPT,
            "sh",
        ])
        .args([&view, &probe_dir, &config])
        .arg(env!("CARGO_BIN_EXE_wdfeed"))
        .arg(&out)
        .output()
        .unwrap();
    let log = std::fs::read_to_string(out.join("view.log")).unwrap_or_default();
    println!("{log}");
    assert!(ns.status.success(), "{}{}", stdout(&ns), stderr(&ns));

    // Nothing of it is left in this machine's mount namespace.
    let ours = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mount_points(&ours).iter().any(|m| m.starts_with(&base)),
        "a mount leaked out of the private namespace: {ours}"
    );

    // The view was read-only (regular files), device nodes still opened for writing.
    let flag = |f: &str| {
        std::fs::read_to_string(out.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(flag("root-writable"), "no", "the bound root took a write");
    assert_eq!(
        flag("dev-writable"),
        "yes",
        "/dev/null on the read-only view"
    );
    // At least the view's /, /proc, /sys and /dev were made read-only.
    let read_only: usize = log
        .split("mounts in the view: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no mount count in {log}"));
    assert!(read_only >= 4, "{log}");

    // Without its writable mount, the probe cannot be opened: that is why the DaemonSet
    // mounts the probe's directory read-write over the read-only host root.
    let without = read_json(&out.join("without-probe-mount.json"));
    println!(
        "under --root {} before the probe's directory is bound writable: writable: {}",
        view.display(),
        evidence(&without, "writable")
    );
    assert!(
        !verdicts(&without)[0].1
            && evidence(&without, "writable").contains("Read-only file system"),
        "{without:#}"
    );

    let through = read_json(&out.join("view.json"));
    println!(
        "on /:\n{direct:#}\nunder --root {}:\n{through:#}",
        view.display()
    );
    assert_eq!(verdicts(&through), verdicts(&direct));
    let expected = [
        ("writable", true),
        ("process-present", true),
        ("process-absent", false),
        ("load", true),
        ("memory", true),
        ("memory-impossible", false),
    ];
    for (check, healthy) in expected {
        let got = verdicts(&through).into_iter().find(|(c, _)| c == check);
        assert_eq!(got, Some((check.to_string(), healthy)), "{through:#}");
    }
    // The same process was found through the view's /proc (same PID: same PID namespace).
    let pid = victim.0.id().to_string();
    assert!(
        evidence(&through, "process-present").contains(&pid),
        "{through:#}"
    );
    assert!(
        evidence(&direct, "process-present").contains(&pid),
        "{direct:#}"
    );
    // Evidence names node paths, not the view's.
    assert!(
        !evidence(&through, "writable").contains(view.to_str().unwrap()),
        "{through:#}"
    );
}
