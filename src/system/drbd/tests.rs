use super::*;

/// Two resources as DRBD 8.4.11 prints them in the 6.1 kernel (drbd_proc.c): a connected
/// Primary in sync, a Secondary resyncing with its progress lines, a hole, an unconfigured
/// minor, and the counters lines under each.
const TWO_RESOURCES: &str = "\
version: 8.4.11 (api:1/proto:86-101)
srcversion: 211FB288A383ED945B83420
 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----
    ns:1048 nr:0 dw:1048 dr:2193 al:3 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
 1: cs:SyncTarget ro:Secondary/Primary ds:Inconsistent/UpToDate C r-----
    ns:0 nr:9216 dw:9216 dr:0 al:0 bm:0 lo:0 pe:2 ua:0 ap:0 ep:1 wo:f oos:121856
\t[=>..................] sync'ed: 10.0% (121856/131032)K
\tfinish: 0:00:11 speed: 10,240 (10,240) want: 10,240 K/sec

 4: cs:Unconfigured
";

#[test]
fn parses_connected_syncing_and_unconfigured_minors() {
    let p = parse(TWO_RESOURCES).unwrap();
    assert_eq!(p.version, "8.4.11");
    assert_eq!(p.volumes.len(), 3);
    let v0 = p.volume(0).unwrap();
    assert_eq!(v0.role, Role::Primary);
    assert_eq!(v0.disk, "UpToDate");
    assert!(!v0.suspended);
    assert_eq!(
        v0.peers,
        vec![Peer {
            connection: "Connected".into(),
            connected: true,
            role: Role::Secondary,
            disk: "UpToDate".into(),
        }]
    );
    assert_eq!(
        v0.fields,
        "cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----"
    );
    let v1 = p.volume(1).unwrap();
    assert_eq!(
        (v1.role, v1.disk.as_str()),
        (Role::Secondary, "Inconsistent")
    );
    assert!(v1.peers[0].connected, "SyncTarget replicates");
    let v4 = p.volume(4).unwrap();
    assert_eq!((v4.role, v4.disk.as_str()), (Role::Secondary, "Diskless"));
    assert!(v4.peers.is_empty());
    assert!(p.volume(2).is_none());
}

#[test]
fn a_stand_alone_primary_without_network_config_and_suspended_io() {
    // No net_conf: the protocol letter is a space, so two spaces before the flags.
    let p = parse(
        "version: 8.4.11 (api:1/proto:86-101)\nsrcversion: X\n \
         0: cs:StandAlone ro:Primary/Unknown ds:Diskless/DUnknown   s-----\n    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:3 ep:1 wo:f oos:0\n",
    )
    .unwrap();
    let v = p.volume(0).unwrap();
    assert!(v.suspended);
    assert_eq!(v.disk, "Diskless");
    assert_eq!(v.peers[0].role, Role::Unknown);
    assert!(!v.peers[0].connected);
    // WFConnection with the protocol letter, suspended by fencing (s) and user flags.
    let p = parse(
        "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:WFConnection ro:Primary/Unknown ds:UpToDate/DUnknown C s---d-\n",
    )
    .unwrap();
    assert!(p.volume(0).unwrap().suspended);
}

#[test]
fn an_old_build_tag_and_an_empty_module_parse() {
    let p = parse(
        "version: 8.4.3 (api:1/proto:86-101)\nGIT-hash: 89a294209144b68adb3ee85a73221f964d3ee515 build by root@x, 2013-06-23 16:31:23\n",
    )
    .unwrap();
    assert!(p.volumes.is_empty());
}

#[test]
fn drbd_9_is_refused_with_the_reason() {
    let e = parse("version: 9.2.12 (api:2/proto:86-122)\nGIT-hash: abc build by x\nTransports (api:21): tcp (9.2.12)\n")
        .unwrap_err();
    assert_eq!(e.line, 1);
    assert!(
        e.what.contains("DRBD 9.2.12 keeps its state in netlink"),
        "{e:?}"
    );
}

#[test]
fn garbage_is_an_error_that_quotes_at_most_32_escaped_characters() {
    for (text, line, want) in [
        ("", 1, "no `version:` line"),
        (
            "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:Primary ds:UpToDate/UpToDate C r-----\n",
            2,
            "` 0: cs:Connected ro:Primary ds:U...`: not a DRBD 8.4 device line",
        ),
        (
            "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:Primary/Boss ds:UpToDate/UpToDate C r-----\n",
            2,
            "role `Boss` is not one DRBD has",
        ),
        (
            "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C x-----\n",
            2,
            "flags `x-----`",
        ),
        (
            "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:Primary/Secondary ds:Up\u{1b}[31m/UpToDate C r-----\n",
            2,
            "state `Up\\u{1b}[31m` is not a DRBD state name",
        ),
        (
            "version: 8.4.11 (api:1/proto:86-101)\nwho knows what this line is, it goes on and on and on\n",
            2,
            "`who knows what this line is, it ...` is not a line DRBD 8.4 writes",
        ),
        (
            "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n 0: cs:Unconfigured\n",
            3,
            "minor 0 is listed twice",
        ),
        ("\u{0}\u{1}\u{2}", 1, "`\\u{0}\\u{1}\\u{2}` is not a line"),
        ("version: 7.0 (old)\n", 1, "is not a line DRBD 8.4 writes"),
    ] {
        let e = parse(text).unwrap_err();
        assert_eq!(e.line, line, "{text:?}: {e:?}");
        assert!(e.what.contains(want), "{text:?}: {e:?}");
    }
}

#[test]
fn a_missing_proc_drbd_means_the_module_is_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    std::fs::create_dir_all(root.proc("")).unwrap();
    assert_eq!(read(&root).unwrap(), None);
    std::fs::write(root.proc("drbd"), TWO_RESOURCES).unwrap();
    assert_eq!(read(&root).unwrap().unwrap().volumes.len(), 3);
    std::fs::write(root.proc("drbd"), "version: 8.4.11\n 0: cs:Conn\n").unwrap();
    let e = read(&root).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/proc/drbd line 2: ` 0: cs:Conn`: not a DRBD 8.4 device line (cs:, ro:, ds:, flags)"
    );
}

/// debugfs as DRBD lays it out: minors/N -> ../resources/NAME/volumes/V.
pub(crate) fn debugfs_names(root: &Root, names: &[(u32, &str, u32)]) {
    let minors = root.sys("kernel/debug/drbd/minors");
    std::fs::create_dir_all(&minors).unwrap();
    for (minor, res, vol) in names {
        let vdir = root.sys(format!("kernel/debug/drbd/resources/{res}/volumes/{vol}"));
        std::fs::create_dir_all(vdir).unwrap();
        std::os::unix::fs::symlink(
            format!("../resources/{res}/volumes/{vol}"),
            minors.join(minor.to_string()),
        )
        .unwrap();
    }
}

#[test]
fn names_come_from_debugfs_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    let e = names(&root).unwrap_err();
    assert!(
        e.contains("/sys/kernel/debug/drbd/minors is missing"),
        "{e}"
    );
    assert!(e.contains("mount -t debugfs"), "{e}");
    debugfs_names(&root, &[(0, "r0", 0), (5, "data", 1), (4, "data", 0)]);
    let n = names(&root).unwrap();
    assert_eq!(minors_of(&n, "r0"), [0]);
    assert_eq!(minors_of(&n, "data"), [4, 5], "in volume order");
    assert!(minors_of(&n, "r1").is_empty());
    std::os::unix::fs::symlink("/etc/passwd", root.sys("kernel/debug/drbd/minors/7")).unwrap();
    let e = names(&root).unwrap_err();
    assert!(e.contains("minors/7 points to `/etc/passwd`"), "{e}");
}

#[test]
fn resource_names_drbd_can_have() {
    for ok in ["r0", "nfs_data", "a.b-c+d", &"x".repeat(127)] {
        assert_eq!(bad_resource_name(ok), None, "{ok}");
    }
    for bad in [
        "",
        "all",
        "-r0",
        ".r0",
        "r 0",
        "r/0",
        "r0\n",
        "rö",
        &"x".repeat(128),
    ] {
        assert!(bad_resource_name(bad).is_some(), "{bad:?}");
    }
}

/// Captured in a QEMU guest from the 6.1.0-57 kernel's DRBD 8.4.11 (drbdsetup-84 on one node:
/// r0 on minor 0, `data` with minors 3 and 2 never configured), in the order the states came:
/// attached, forced Primary, connecting, `suspend-io`, detached, demoted. The srcversion
/// line ends in a space; the sixth flag `s` is the activity log's suspension, not I/O's.
const CAPTURED_6_1: [&str; 6] = [
    " 0: cs:StandAlone ro:Secondary/Unknown ds:Inconsistent/DUnknown   r----s",
    " 0: cs:StandAlone ro:Primary/Unknown ds:UpToDate/DUnknown   r----s",
    " 0: cs:WFConnection ro:Primary/Unknown ds:UpToDate/DUnknown C r----s",
    " 0: cs:WFConnection ro:Primary/Unknown ds:UpToDate/DUnknown C s----s",
    " 0: cs:WFConnection ro:Primary/Unknown ds:Diskless/DUnknown C r----s",
    " 0: cs:WFConnection ro:Secondary/Unknown ds:Diskless/DUnknown C r----s",
];

#[test]
fn the_6_1_kernels_own_output_parses_state_by_state() {
    let want = [
        (Role::Secondary, "Inconsistent", false, "StandAlone"),
        (Role::Primary, "UpToDate", false, "StandAlone"),
        (Role::Primary, "UpToDate", false, "WFConnection"),
        (Role::Primary, "UpToDate", true, "WFConnection"),
        (Role::Primary, "Diskless", false, "WFConnection"),
        (Role::Secondary, "Diskless", false, "WFConnection"),
    ];
    for (line, (role, disk, suspended, cs)) in CAPTURED_6_1.iter().zip(want) {
        let text = format!(
            "version: 8.4.11 (api:1/proto:86-101)\nsrcversion: F73C670A7EC572DB9CF3E5B \n{line}\n    ns:0 nr:0 dw:0 dr:0 al:8 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:65496\n\n 2: cs:Unconfigured\n 3: cs:Unconfigured\n"
        );
        let p = parse(&text).unwrap_or_else(|e| panic!("{line}: {e:?}"));
        assert_eq!(p.version, "8.4.11");
        assert_eq!(p.volumes.len(), 3, "{line}");
        let v = p.volume(0).unwrap();
        assert_eq!(
            (
                v.role,
                v.disk.as_str(),
                v.suspended,
                v.peers[0].connection.as_str()
            ),
            (role, disk, suspended, cs),
            "{line}"
        );
        assert!(!v.peers[0].connected);
        assert_eq!(
            Some(v.fields.as_str()),
            line.split_once(": ").map(|(_, f)| f)
        );
        assert_eq!(p.volume(3).unwrap().fields, "cs:Unconfigured");
    }
}
