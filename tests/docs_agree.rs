//! The user's pages agree with the program: README's command table names every command,
//! and docs/METRICS.md lists exactly the metric families wdfeed exports.

mod util;

use std::collections::BTreeSet;
use std::path::Path;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

#[test]
fn the_readme_command_table_names_every_command() {
    let readme = read("README.md");
    let listed: BTreeSet<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `wdfeed "))
        .map(|rest| rest.split([' ', '`']).next().unwrap().to_string())
        .collect();
    let cmd = <wdfeed::cli::Cli as clap::CommandFactory>::command();
    let commands: BTreeSet<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    assert_eq!(
        listed, commands,
        "README.md's command table and the CLI differ"
    );
}

/// The families `wdfeed status --format prometheus` prints for a status file.
fn families_of(status: &serde_json::Value) -> BTreeSet<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("status.json");
    std::fs::write(&file, status.to_string()).unwrap();
    let o = util::run(&[
        "status",
        "--format",
        "prometheus",
        "--status-file",
        file.to_str().unwrap(),
    ]);
    util::stdout(&o)
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

#[test]
fn metrics_md_lists_exactly_the_families_wdfeed_exports() {
    let mut base: serde_json::Value =
        serde_json::from_str(&read("tests/fixtures/status-stuck-io-fenced.json")).unwrap();
    // Written by a daemon that runs: a process of ours named wdfeed (a copy of sleep) stands
    // in for it.
    let dir = tempfile::tempdir().unwrap();
    let stand_in = dir.path().join("wdfeed");
    std::fs::copy("/bin/sleep", &stand_in).unwrap();
    let mut child = std::process::Command::new(&stand_in)
        .arg("60")
        .spawn()
        .unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let start_time: u64 = after_comm.split(' ').nth(19).unwrap().parse().unwrap();
    base["pid"] = child.id().into();
    base["start_time"] = start_time.into();
    // Some families exist only in some states: no device listed, a textfile configured.
    let mut bare = base.clone();
    bare["devices"] = serde_json::json!([]);
    let mut textfile = base.clone();
    textfile["textfile"] =
        serde_json::json!({"path": "/x.prom", "warning": null, "skipped_rounds": 0, "writes": 1});
    // An operator's fence, a pause, and the fence budget with a boot counted.
    let mut operator = base.clone();
    operator["fence"] =
        serde_json::json!({"check": "operator", "evidence": "x (wdfeed fence, uid 0, pid 1)"});
    operator["pause"] = serde_json::json!({"uid": 0, "pid": 1, "reason": "upgrade", "since_s": 1.0, "left_s": 60.0});
    operator["budget"] = serde_json::json!({"fences": 3, "within_s": 3600.0, "recent": [
        {"at": 1, "boot": "11111111-4f50-6172-8394-a5b6c7d8e9f0", "what": "fenced: x"}]});
    let mut exported = BTreeSet::new();
    for s in [&base, &bare, &textfile, &operator] {
        exported.extend(families_of(s));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(exported.len() > 10, "{exported:?}");
    let doc = read("docs/METRICS.md");
    let documented: BTreeSet<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter(|l| l.starts_with("wdfeed_"))
        .map(|l| l.split('`').next().unwrap().to_string())
        .collect();
    assert_eq!(
        documented, exported,
        "docs/METRICS.md and the exported families differ"
    );
}
