use super::*;
use crate::system::drbd::tests::debugfs_names;

fn when(yaml: &str) -> Result<Condition, KeyProblem> {
    parse(&serde_yaml::from_str(yaml).unwrap())
}

#[test]
fn the_three_conditions_as_the_contract_writes_them() {
    assert_eq!(
        when("{mounted: /srv/nfs}").unwrap(),
        Condition::Mounted("/srv/nfs".into())
    );
    assert_eq!(
        when("{mounted: /srv/nfs/}").unwrap(),
        Condition::Mounted("/srv/nfs".into()),
        "one mount point, with or without the slash"
    );
    assert_eq!(
        when("{drbd-primary: r0}").unwrap(),
        Condition::DrbdPrimary("r0".into())
    );
    assert_eq!(
        when("{address: 192.0.2.10}").unwrap(),
        Condition::Address("192.0.2.10".parse().unwrap())
    );
    assert_eq!(
        when("address: 2001:db8::10").unwrap(),
        Condition::Address("2001:db8::10".parse().unwrap())
    );
    for (yaml, text) in [
        ("{mounted: /srv/nfs}", "mounted /srv/nfs"),
        ("{drbd-primary: r0}", "drbd-primary r0"),
        ("{address: 192.0.2.10}", "address 192.0.2.10"),
    ] {
        assert_eq!(when(yaml).unwrap().to_string(), text);
    }
}

#[test]
fn bad_conditions_name_the_key_and_say_what_to_write() {
    for (yaml, key, want) in [
        (
            "{mounted: /srv, address: 192.0.2.10}",
            "",
            "takes one condition, not 2 (mounted, address)",
        ),
        ("{}", "", "`when` is empty"),
        ("mounted", "", "one condition written as a mapping"),
        ("[mounted, /srv]", "", "one condition written as a mapping"),
        (
            "{mountd: /srv}",
            "mountd",
            "unknown condition `mountd`; `when` knows mounted, drbd-primary, address",
        ),
        (
            "{mounted: srv/nfs}",
            "mounted",
            "`srv/nfs` is not an absolute path",
        ),
        (
            "{mounted: /srv/../etc}",
            "mounted",
            "must not contain `.`, `..`",
        ),
        ("{mounted: 3}", "mounted", "takes a mount point"),
        ("{mounted: }", "mounted", "not nothing"),
        (
            "{address: 192.0.2.300}",
            "address",
            "`192.0.2.300` is not an IPv4 or IPv6 address",
        ),
        (
            "{address: 192.0.2.10/24}",
            "address",
            "without its prefix length",
        ),
        ("{address: [192.0.2.10]}", "address", "not a list"),
        (
            "{drbd-primary: all}",
            "drbd-primary",
            "drbdadm's word for every resource",
        ),
        (
            "{drbd-primary: r 0}",
            "drbd-primary",
            "holds a character other than",
        ),
        (
            "{drbd-primary: 7}",
            "drbd-primary",
            "takes a DRBD resource name",
        ),
    ] {
        let e = when(yaml).unwrap_err();
        assert_eq!(e.key, key, "{yaml}: {e:?}");
        assert!(e.message.contains(want), "{yaml}: {e:?}");
    }
}

fn table(text: &str) -> Vec<mountinfo::MountEntry> {
    mountinfo::parse(text).unwrap()
}

#[test]
fn mounted_reads_the_top_entry_and_ignores_a_users_fuse_mount() {
    let base = "27 1 254:1 / / rw - ext4 /dev/vda1 rw\n";
    let srv = Path::new("/srv/nfs");
    assert_eq!(
        mounted(&table(base), srv),
        Reading::Idle("/srv/nfs is not mounted".into())
    );
    let with = format!("{base}40 27 147:0 / /srv/nfs rw - ext4 /dev/drbd0 rw\n");
    assert_eq!(
        mounted(&table(&with), srv),
        Reading::Holds("/srv/nfs is mounted (ext4 /dev/drbd0)".into())
    );
    // fusermount by uid 1000 on the (unmounted) mount point does not make it mounted...
    let fuse = format!(
        "{base}41 27 0:50 / /srv/nfs rw,nosuid,nodev - fuse.sshfs me@x: rw,user_id=1000,group_id=1000\n"
    );
    assert!(matches!(mounted(&table(&fuse), srv), Reading::Idle(_)));
    // ...nor does one stacked on top of the real mount hide it.
    let over = format!(
        "{with}41 40 0:50 / /srv/nfs rw,nosuid,nodev - fuse.sshfs me@x: rw,user_id=1000,group_id=1000\n"
    );
    assert_eq!(
        mounted(&table(&over), srv),
        Reading::Holds("/srv/nfs is mounted (ext4 /dev/drbd0)".into())
    );
    // root's FUSE mount counts.
    let roots =
        format!("{base}41 27 0:50 / /srv/nfs rw - fuse.glusterfs g:/v rw,user_id=0,group_id=0\n");
    assert!(matches!(mounted(&table(&roots), srv), Reading::Holds(_)));
}

fn node() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc/1")).unwrap();
    dir
}

const PRIMARY: &str = "version: 8.4.11 (api:1/proto:86-101)\nsrcversion: X\n 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0\n 1: cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate C r-----\n";

#[test]
fn drbd_primary_follows_the_role_of_the_resources_minors() {
    let dir = node();
    let root = Root::at(dir.path());
    let mut w = ConditionWatch::new(Condition::DrbdPrimary("r0".into()), &root);
    assert_eq!(
        w.read().unwrap(),
        Reading::Idle("r0 is not Primary: DRBD is not loaded (no /proc/drbd)".into())
    );
    std::fs::write(
        root.proc("drbd"),
        PRIMARY.replace("ro:Primary/Secondary", "ro:Secondary/Secondary"),
    )
    .unwrap();
    // No Primary at all: no names needed (debugfs is not even mounted here).
    assert_eq!(
        w.read().unwrap(),
        Reading::Idle("r0 is not Primary: no DRBD device is Primary here".into())
    );
    std::fs::write(root.proc("drbd"), PRIMARY).unwrap();
    let e = w.read().unwrap_err();
    assert!(e.contains("which resource it is cannot be told"), "{e}");
    debugfs_names(&root, &[(0, "r0", 0), (1, "r1", 0)]);
    assert_eq!(
        w.read().unwrap(),
        Reading::Holds(
            "r0 is Primary (minor 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----)"
                .into()
        )
    );
    let mut r1 = ConditionWatch::new(Condition::DrbdPrimary("r1".into()), &root);
    assert_eq!(
        r1.read().unwrap(),
        Reading::Idle(
            "r1 is not Primary (minor 1: cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate C r-----)"
                .into()
        )
    );
    let mut r2 = ConditionWatch::new(Condition::DrbdPrimary("r2".into()), &root);
    assert_eq!(
        r2.read().unwrap(),
        Reading::Idle("r2 is not Primary: it is not configured here".into())
    );
    std::fs::write(root.proc("drbd"), "version: 8.4.11\n 0: cs:What\n").unwrap();
    let e = w.read().unwrap_err();
    assert!(e.starts_with("/proc/drbd line 2:"), "{e}");
}

fn addresses() -> Result<Vec<(String, IpAddr, bool)>, String> {
    Ok(vec![
        ("lo".into(), "127.0.0.1".parse().unwrap(), true),
        ("eth0".into(), "192.0.2.10".parse().unwrap(), true),
        ("eth1".into(), "198.51.100.7".parse().unwrap(), false),
        ("eth0".into(), "2001:db8::10".parse().unwrap(), true),
    ])
}

fn no_addresses() -> Result<Vec<(String, IpAddr, bool)>, String> {
    Err("cannot list the interfaces' addresses: EPERM".into())
}

#[test]
fn address_is_held_on_an_interface_that_is_up() {
    let root = Root::at("/nonexistent");
    let read = |a: &str, src: AddressSource| {
        ConditionWatch::with_addresses(Condition::Address(a.parse().unwrap()), &root, src).read()
    };
    assert_eq!(
        read("192.0.2.10", addresses).unwrap(),
        Reading::Holds("192.0.2.10 is on eth0".into())
    );
    assert_eq!(
        read("2001:db8::10", addresses).unwrap(),
        Reading::Holds("2001:db8::10 is on eth0".into())
    );
    assert_eq!(
        read("198.51.100.7", addresses).unwrap(),
        Reading::Idle("198.51.100.7 is on eth1, which is down".into())
    );
    assert_eq!(
        read("192.0.2.11", addresses).unwrap(),
        Reading::Idle("192.0.2.11 is not on any interface here".into())
    );
    assert!(read("192.0.2.10", no_addresses).is_err());
}

#[test]
fn an_unreadable_mount_table_is_an_error_never_idle() {
    let dir = node();
    let root = Root::at(dir.path());
    let mut w = ConditionWatch::new(Condition::Mounted("/srv".into()), &root);
    assert!(w.read().is_err(), "no mountinfo");
    std::fs::write(root.proc("1/mountinfo"), "garbage\n").unwrap();
    assert!(w.read().unwrap_err().contains("/proc/1/mountinfo line 1"));
    std::fs::write(
        root.proc("1/mountinfo"),
        "27 1 254:1 / / rw - ext4 /dev/vda1 rw\n",
    )
    .unwrap();
    assert_eq!(
        w.read().unwrap(),
        Reading::Idle("/srv is not mounted".into())
    );
}
