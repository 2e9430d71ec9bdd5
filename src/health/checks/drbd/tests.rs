use super::*;
use crate::health::checks::{parse_settings, CheckSettings};
use crate::system::drbd::tests::debugfs_names;

const S: fn(u64) -> Duration = Duration::from_secs;

fn settings(yaml: &str) -> Settings {
    match parse_settings("drbd", serde_yaml::from_str(yaml).unwrap()).unwrap() {
        CheckSettings::Drbd(s) => s,
        other => panic!("{other:?}"),
    }
}

const HEAD: &str = "version: 8.4.11 (api:1/proto:86-101)\nsrcversion: 211FB288A383ED945B83420\n";
const COUNTERS: &str = "    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0\n";

/// /proc/drbd with one device line for minor 0 (and its counters line).
fn proc_with(line: &str) -> String {
    format!("{HEAD} 0: {line}\n{COUNTERS}")
}

fn volume(line: &str) -> Volume {
    drbd::parse(&proc_with(line)).unwrap().volumes.remove(0)
}

fn verdict(line: &str) -> Result<String, String> {
    judge(&volume(line), None, S(100), S(20)).verdict
}

#[test]
fn defaults_keys_and_bad_names() {
    let s = settings("{}");
    assert_eq!(s.resources, None);
    assert_eq!(s.suspended_after.get(), S(20));
    assert_eq!(s.label(), "drbd all resources");
    assert_eq!(s.time_to_see(), S(20));
    let s = settings("resources: [r0, r1]\nsuspended-after: 45s");
    assert_eq!(s.label(), "drbd r0,r1");
    assert_eq!(s.time_to_see(), S(45));
    assert!(s.problems().is_empty());
    let keys = |yaml: &str| {
        settings(yaml)
            .problems()
            .into_iter()
            .map(|p| (p.key, p.message))
            .collect::<Vec<_>>()
    };
    let p = keys("resources: [r0, 'r 1', r0, all]\nsuspended-after: 0s");
    let k: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        k,
        [
            "suspended-after",
            "resources[1]",
            "resources[2]",
            "resources[3]"
        ]
    );
    assert!(p[2].1.contains("listed twice"), "{p:?}");
    assert_eq!(keys("resources: []")[0].0, "resources");
}

#[test]
fn a_secondary_is_healthy_in_every_state() {
    for line in [
        "cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate C r-----",
        "cs:StandAlone ro:Secondary/Unknown ds:Diskless/DUnknown   r-----",
        "cs:WFConnection ro:Secondary/Unknown ds:Failed/DUnknown C s-----",
        "cs:SyncTarget ro:Secondary/Primary ds:Inconsistent/UpToDate C r-----",
        "cs:Unconfigured",
    ] {
        let v = verdict(line);
        assert!(v.is_ok(), "{line}: {v:?}");
        assert!(v.unwrap().starts_with("Secondary ("), "{line}");
    }
}

#[test]
fn a_primary_with_good_data_local_or_from_a_connected_peer_is_healthy() {
    for line in [
        "cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----",
        // the peer froze or left: the local disk is good
        "cs:WFConnection ro:Primary/Unknown ds:UpToDate/DUnknown C r-----",
        "cs:StandAlone ro:Primary/Unknown ds:UpToDate/DUnknown   r-----",
        // the local disk failed and was detached (on-io-error detach): the peer serves
        "cs:Connected ro:Primary/Secondary ds:Diskless/UpToDate C r-----",
        // a resyncing Primary reads from its UpToDate peer
        "cs:SyncTarget ro:Primary/Secondary ds:Inconsistent/UpToDate C r-----",
    ] {
        assert_eq!(verdict(line), Ok(format!("Primary ({line})")), "{line}");
    }
}

#[test]
fn a_primary_without_good_data_fails_with_the_fields() {
    for line in [
        // local disk failed, peer gone
        "cs:WFConnection ro:Primary/Unknown ds:Diskless/DUnknown C r-----",
        "cs:StandAlone ro:Primary/Unknown ds:Failed/DUnknown   r-----",
        // the peer is there but its data is not good either
        "cs:Connected ro:Primary/Secondary ds:Diskless/Outdated C r-----",
        // an UpToDate peer that is not connected does not count
        "cs:NetworkFailure ro:Primary/Unknown ds:Diskless/UpToDate C r-----",
    ] {
        let v = verdict(line).unwrap_err();
        assert!(
            v.starts_with("Primary without good data: local disk "),
            "{v}"
        );
        assert!(v.ends_with(&format!("({line})")), "{v}");
    }
}

#[test]
fn suspended_io_on_a_primary_fails_after_suspended_after_counted_from_the_first_run_that_saw_it() {
    let line = "cs:WFConnection ro:Primary/Unknown ds:UpToDate/DUnknown C s-----";
    let v = volume(line);
    let first = judge(&v, None, S(100), S(20));
    assert_eq!(first.suspended_since, Some(S(100)));
    assert_eq!(first.undecided, Some(S(20)));
    assert!(first.verdict.is_ok(), "{first:?}");
    let later = judge(&v, Some(S(100)), S(119), S(20));
    assert!(later.verdict.is_ok(), "19 s: {later:?}");
    assert_eq!(later.undecided, Some(S(1)));
    let late = judge(&v, Some(S(100)), S(120), S(20));
    assert_eq!(
        late.verdict,
        Err(format!(
            "Primary with I/O suspended for 20 s (suspended-after 20s) ({line})"
        ))
    );
    // A Secondary's suspension is nobody's business.
    let sec = volume("cs:WFConnection ro:Secondary/Unknown ds:UpToDate/DUnknown C s-----");
    assert_eq!(judge(&sec, Some(S(0)), S(500), S(20)).suspended_since, None);
}

/// A node with /proc/drbd and debugfs names.
fn node(proc_drbd: Option<&str>, names: &[(u32, &str, u32)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    std::fs::create_dir_all(root.proc("")).unwrap();
    if let Some(text) = proc_drbd {
        std::fs::write(root.proc("drbd"), text).unwrap();
    }
    if !names.is_empty() {
        debugfs_names(&root, names);
    }
    dir
}

fn check(yaml: &str, dir: &tempfile::TempDir) -> Box<dyn Check> {
    settings(yaml).build(&Root::at(dir.path())).unwrap()
}

#[test]
fn the_check_counts_a_suspension_across_runs_and_forgets_it_when_it_ends() {
    let suspended = proc_with("cs:WFConnection ro:Primary/Unknown ds:UpToDate/DUnknown C s-----");
    let dir = node(Some(&suspended), &[(0, "r0", 0)]);
    let mut c = check("resources: [r0]\nsuspended-after: 10s", &dir);
    let v = c.run(S(50));
    assert!(v.healthy, "{v:?}");
    assert!(
        v.evidence
            .starts_with("r0 (minor 0): Primary, I/O suspended for 0 s"),
        "{v:?}"
    );
    assert_eq!(c.settle_time(), Some(S(10)));
    assert!(c.run(S(55)).healthy);
    let v = c.run(S(60));
    assert!(!v.healthy, "{v:?}");
    assert!(
        v.evidence
            .starts_with("r0 (minor 0): Primary with I/O suspended for 10 s"),
        "{v:?}"
    );
    // Resumed, then suspended again: counted afresh.
    let root = Root::at(dir.path());
    std::fs::write(
        root.proc("drbd"),
        proc_with("cs:WFConnection ro:Primary/Unknown ds:UpToDate/DUnknown C r-----"),
    )
    .unwrap();
    assert!(c.run(S(65)).healthy);
    assert_eq!(c.settle_time(), None);
    std::fs::write(root.proc("drbd"), &suspended).unwrap();
    assert!(c.run(S(70)).healthy);
    assert!(c.run(S(79)).healthy);
    assert!(!c.run(S(80)).healthy);
}

#[test]
fn gone_fails_closed_and_garbage_fails_with_the_line_quoted() {
    let dir = node(None, &[]);
    let v = check("resources: [r0]", &dir).run(S(1));
    assert_eq!(
        v,
        Verdict::unhealthy("no /proc/drbd: DRBD is not loaded, but this check watches r0")
    );
    let v = check("{}", &dir).run(S(1));
    assert!(v.evidence.ends_with("watches every DRBD resource"), "{v:?}");

    let primary = proc_with("cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----");
    let dir = node(Some(&primary), &[(0, "r0", 0)]);
    let v = check("resources: [r0, r1]", &dir).run(S(1));
    assert_eq!(
        v,
        Verdict::unhealthy("r1 is not configured (no DRBD minor of it)")
    );
    // The name is there but its minor is not in /proc/drbd (taken down between the reads).
    let dir = node(Some(&primary), &[(0, "r0", 0), (3, "r1", 0)]);
    let v = check("resources: [r1]", &dir).run(S(1));
    assert_eq!(v, Verdict::unhealthy("r1: minor 3 is not in /proc/drbd"));
    // Names asked for but debugfs not mounted.
    let dir = node(Some(&primary), &[]);
    let v = check("resources: [r0]", &dir).run(S(1));
    assert!(!v.healthy);
    assert!(
        v.evidence.starts_with(
            "cannot tell which minors r0 has: /sys/kernel/debug/drbd/minors is missing"
        ),
        "{v:?}"
    );
    // Every resource: names only dress the evidence.
    assert_eq!(
        check("{}", &dir).run(S(1)),
        Verdict::healthy(
            "minor 0: Primary (cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----)"
        )
    );
    let dir = node(Some(&format!("{HEAD} 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n 1: cs:Connected ro:Primary/Secondary ds:Up\ttoDate/UpToDate C r-----\n")), &[]);
    let v = check("{}", &dir).run(S(1));
    assert!(!v.healthy);
    assert_eq!(
        v.evidence,
        "/proc/drbd line 4: ` 1: cs:Connected ro:Primary/Seco...`: state `Up\\ttoDate` is not a DRBD state name"
    );
    let dir = node(Some(HEAD), &[]);
    assert_eq!(
        check("{}", &dir).run(S(1)),
        Verdict::healthy("no DRBD device is configured here: none is Primary")
    );
}

#[test]
fn every_resource_is_judged_and_named() {
    let text = format!(
        "{HEAD} 0: cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate C r-----\n{COUNTERS} 1: cs:StandAlone ro:Primary/Unknown ds:Diskless/DUnknown   r-----\n{COUNTERS}"
    );
    let dir = node(Some(&text), &[(0, "r0", 0), (1, "data", 0)]);
    let v = check("{}", &dir).run(S(1));
    assert_eq!(
        v,
        Verdict::unhealthy(
            "data/0 (minor 1): Primary without good data: local disk Diskless, no connected \
             peer with UpToDate data (cs:StandAlone ro:Primary/Unknown ds:Diskless/DUnknown   r-----)"
        )
    );
    assert!(check("resources: [r0]", &dir).run(S(1)).healthy);
}
