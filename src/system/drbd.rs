//! DRBD as the kernel shows it: the state of each DRBD device from `/proc/drbd` (DRBD 8.4,
//! the version in mainline kernels), and which resource and volume each minor belongs to
//! (debugfs, `drbd/minors/<minor>`).
//!
//! The state is put in a model that does not depend on where it came from ([`Volume`], one
//! per minor, each with its peers): DRBD 9 keeps its state in netlink (events2) and has a
//! `/proc/drbd` with only its version, and a reader of that would fill the same model.
//!
//! Why these two sources: `/proc/drbd` is produced under RCU and never waits on DRBD's
//! configuration lock; DRBD's generic netlink does (a `drbdadm primary` holds it while its
//! fence-peer handler runs, seconds), and a check that waits there could miss its deadline
//! during the very switchover it must not disturb. The debugfs symlinks are names only and
//! take no DRBD lock either. `/proc/drbd` is opened at every read and closed at once: an
//! open `/proc/drbd` holds a reference on the module, and a kept one would make `rmmod drbd`
//! fail.

use std::io::ErrorKind;

use crate::system::sysfile::{self, LineError, ReadError};
use crate::system::Root;

/// A DRBD minor's role as DRBD prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Primary,
    Secondary,
    Unknown,
}

impl Role {
    fn parse(s: &str) -> Result<Role, String> {
        match s {
            "Primary" => Ok(Role::Primary),
            "Secondary" => Ok(Role::Secondary),
            "Unknown" => Ok(Role::Unknown),
            other => Err(format!(
                "role `{}` is not one DRBD has",
                sysfile::shorten(other)
            )),
        }
    }
}

/// This node's view of one peer of a volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The connection state as DRBD names it (`Connected`, `SyncTarget`, `WFConnection`...).
    pub connection: String,
    /// Whether the connection carries replication (DRBD 8.4: `Connected` or beyond).
    pub connected: bool,
    pub role: Role,
    /// The peer's disk state (`UpToDate`, `DUnknown`, ...).
    pub disk: String,
}

/// One configured DRBD minor (a volume of a resource).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    pub minor: u32,
    pub role: Role,
    /// The local disk state (`UpToDate`, `Diskless`, `Failed`, ...).
    pub disk: String,
    /// I/O of the volume is suspended (`s` in /proc/drbd's flags: by the user, for fencing,
    /// or because no data is accessible).
    pub suspended: bool,
    pub peers: Vec<Peer>,
    /// The source's own words for the state, for evidence
    /// (`cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----`).
    pub fields: String,
}

/// What `/proc/drbd` said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcDrbd {
    /// `8.4.11`.
    pub version: String,
    /// Every minor listed, in order. An unconfigured one (`cs:Unconfigured`: DRBD prints that
    /// for a diskless, stand-alone Secondary) is a Secondary without disk or peer.
    pub volumes: Vec<Volume>,
}

impl ProcDrbd {
    /// The volume with this minor, if configured.
    pub fn volume(&self, minor: u32) -> Option<&Volume> {
        self.volumes.iter().find(|v| v.minor == minor)
    }
}

/// `/proc/drbd` is bounded by the number of minors, which only root configures.
const PROC_DRBD_CAP: u64 = sysfile::TABLE;

/// Reads `<root>/proc/drbd`. `Ok(None)`: the file does not exist (the DRBD module is not
/// loaded). Any other problem is an error; DRBD 9 is an error too (its state is not there).
pub fn read(root: &Root) -> Result<Option<ProcDrbd>, ReadError> {
    let path = root.proc("drbd");
    match std::fs::symlink_metadata(root.follow(&path)) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        _ => {}
    }
    let text = sysfile::read_capped(root, &path, PROC_DRBD_CAP)?;
    parse(&text)
        .map(Some)
        .map_err(|e| e.in_file(root.node_name(&path)))
}

/// Parses `/proc/drbd` as DRBD 8.4 writes it (drbd_proc.c, `drbd_seq_show`):
///
/// ```text
/// version: 8.4.11 (api:1/proto:86-101)
/// srcversion: 211FB288A383ED945B83420
///  0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----
///     ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
///  1: cs:Unconfigured
/// ```
///
/// Lines that start with white space continue the device above them (counters, resync
/// progress, activity log statistics) and are not judged. Any other line that is not a
/// header or a device line is an error that quotes it: a file half understood could hide
/// the very device asked about.
pub fn parse(text: &str) -> Result<ProcDrbd, LineError> {
    let mut version = None;
    let mut volumes: Vec<Volume> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("version: ") {
            let v = rest.split_whitespace().next().unwrap_or_default();
            if v.starts_with("9.") || v.starts_with("10.") {
                return Err(LineError::new(
                    n,
                    format!(
                        "DRBD {} keeps its state in netlink, not in /proc/drbd; this check \
                         reads DRBD 8.4",
                        sysfile::shorten(v)
                    ),
                ));
            }
            if !v.starts_with("8.") {
                return Err(LineError::new(n, unexpected(line)));
            }
            version = Some(v.to_string());
            continue;
        }
        // The build tag: "srcversion: ..." or "GIT-hash: ... build by ...".
        if line.starts_with("srcversion: ") || line.starts_with("GIT-hash: ") {
            continue;
        }
        if let Some(device) = device_line(line) {
            let volume = device.map_err(|what| {
                LineError::new(n, format!("`{}`: {what}", sysfile::shorten(line)))
            })?;
            if volumes.iter().any(|v| v.minor == volume.minor) {
                return Err(LineError::new(
                    n,
                    format!("minor {} is listed twice", volume.minor),
                ));
            }
            volumes.push(volume);
            continue;
        }
        if line.starts_with([' ', '\t']) && version.is_some() {
            continue;
        }
        return Err(LineError::new(n, unexpected(line)));
    }
    let Some(version) = version else {
        return Err(LineError::new(1, "no `version:` line"));
    };
    Ok(ProcDrbd { version, volumes })
}

fn unexpected(line: &str) -> String {
    format!("`{}` is not a line DRBD 8.4 writes", sysfile::shorten(line))
}

/// ` 0: cs:...` as a volume; `None` if the line is not a device line at all.
fn device_line(line: &str) -> Option<Result<Volume, String>> {
    let trimmed = line.trim_start();
    let (minor, rest) = trimmed.split_once(": ")?;
    if minor.is_empty() || !minor.bytes().all(|b| b.is_ascii_digit()) || !rest.starts_with("cs:") {
        return None;
    }
    Some(parse_device(minor, rest))
}

/// One device line's fields; an error says what is wrong in it (the caller quotes the line).
fn parse_device(minor: &str, rest: &str) -> Result<Volume, String> {
    let minor: u32 = minor
        .parse()
        .map_err(|_| format!("minor `{}` is not a number", sysfile::shorten(minor)))?;
    let fields = rest.trim_end();
    if fields == "cs:Unconfigured" {
        return Ok(Volume {
            minor,
            role: Role::Secondary,
            disk: "Diskless".into(),
            suspended: false,
            peers: Vec::new(),
            fields: fields.to_string(),
        });
    }
    let bad = || "not a DRBD 8.4 device line (cs:, ro:, ds:, flags)".to_string();
    let mut words = fields.split(' ').filter(|w| !w.is_empty());
    let cs = words
        .next()
        .and_then(|w| w.strip_prefix("cs:"))
        .ok_or_else(bad)?;
    let (role, peer_role) = words
        .next()
        .and_then(|w| w.strip_prefix("ro:"))
        .and_then(|w| w.split_once('/'))
        .ok_or_else(bad)?;
    let (disk, peer_disk) = words
        .next()
        .and_then(|w| w.strip_prefix("ds:"))
        .and_then(|w| w.split_once('/'))
        .ok_or_else(bad)?;
    // Then the protocol letter (a space when there is no network config, so the word may be
    // missing) and six flag characters, the first `r` (running) or `s` (suspended).
    let rest: Vec<&str> = words.collect();
    let flags = match rest.as_slice() {
        [proto, flags] if proto.len() == 1 => *flags,
        [flags] => *flags,
        _ => return Err(bad()),
    };
    let suspended = match flags.as_bytes() {
        [b'r', ..] if flags.len() == 6 => false,
        [b's', ..] if flags.len() == 6 => true,
        _ => {
            return Err(format!(
                "flags `{}` are not six characters starting with r or s",
                sysfile::shorten(flags)
            ))
        }
    };
    for word in [cs, disk, peer_disk] {
        if word.is_empty() || !word.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!(
                "state `{}` is not a DRBD state name",
                sysfile::shorten(word)
            ));
        }
    }
    let peer = Peer {
        connection: cs.to_string(),
        connected: connection_replicates(cs),
        role: Role::parse(peer_role)?,
        disk: peer_disk.to_string(),
    };
    Ok(Volume {
        minor,
        role: Role::parse(role)?,
        disk: disk.to_string(),
        suspended,
        peers: vec![peer],
        fields: fields.to_string(),
    })
}

/// DRBD 8.4's connection states from `Connected` on (drbd_strings.c: `C_CONNECTED` and every
/// state after it in `enum drbd_conns`): the peer is there and replication runs.
fn connection_replicates(cs: &str) -> bool {
    [
        "Connected",
        "StartingSyncS",
        "StartingSyncT",
        "WFBitMapS",
        "WFBitMapT",
        "WFSyncUUID",
        "SyncSource",
        "SyncTarget",
        "VerifyS",
        "VerifyT",
        "PausedSyncS",
        "PausedSyncT",
        "Ahead",
        "Behind",
    ]
    .contains(&cs)
}

/// Which resource and volume a minor belongs to: debugfs's `drbd/minors/<minor>` is a symlink
/// to `../resources/<name>/volumes/<volume>` (drbd_debugfs.c, the same on DRBD 8.4 in
/// mainline kernels and on DRBD 9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinorName {
    pub minor: u32,
    pub resource: String,
    pub volume: u32,
}

/// Every minor's resource name, from `<root>/sys/kernel/debug/drbd/minors`. An error names
/// what is missing: debugfs not mounted, or the directory unreadable.
pub fn names(root: &Root) -> Result<Vec<MinorName>, String> {
    let dir = root.sys("kernel/debug/drbd/minors");
    let node = root.node_name(&dir);
    let entries = std::fs::read_dir(root.follow(&dir)).map_err(|e| {
        if e.kind() == ErrorKind::NotFound {
            let debug = root.sys("kernel/debug/drbd");
            if std::fs::symlink_metadata(root.follow(&debug)).is_ok() {
                format!("{}: {e}", node.display())
            } else {
                format!(
                    "{} is missing: DRBD names its resources there, in debugfs (mount it: \
                     mount -t debugfs debugfs /sys/kernel/debug)",
                    node.display()
                )
            }
        } else {
            format!("{}: {e}", node.display())
        }
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", node.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(minor) = name.parse::<u32>() else {
            continue;
        };
        let target = std::fs::read_link(entry.path())
            .map_err(|e| format!("{}/{name}: {e}", node.display()))?;
        let target = target.to_string_lossy();
        let (resource, volume) = parse_minor_link(&target).ok_or_else(|| {
            format!(
                "{}/{name} points to `{}`, not ../resources/<name>/volumes/<volume>",
                node.display(),
                sysfile::shorten(&target)
            )
        })?;
        out.push(MinorName {
            minor,
            resource,
            volume,
        });
    }
    out.sort_by_key(|m| m.minor);
    Ok(out)
}

fn parse_minor_link(target: &str) -> Option<(String, u32)> {
    let rest = target.strip_prefix("../resources/")?;
    let (resource, volume) = rest.split_once("/volumes/")?;
    if resource.is_empty() || resource.contains('/') {
        return None;
    }
    Some((resource.to_string(), volume.parse().ok()?))
}

/// The minors of `resource`, in volume order (empty: no such resource is configured).
pub fn minors_of(names: &[MinorName], resource: &str) -> Vec<u32> {
    let mut v: Vec<&MinorName> = names.iter().filter(|m| m.resource == resource).collect();
    v.sort_by_key(|m| m.volume);
    v.into_iter().map(|m| m.minor).collect()
}

/// Whether `name` is a resource name DRBD can have: 1 to 127 bytes (the kernel's
/// `ctx_resource_name` holds 128 with its NUL) of letters, digits, `_`, `-`, `.` and `+`,
/// not starting with `-` or `.`, and not `all` (drbdadm's word for every resource).
pub fn bad_resource_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.len() > 127 {
        Some("is longer than 127 bytes")
    } else if name == "all" {
        Some("is drbdadm's word for every resource, not a resource name")
    } else if name.starts_with(['-', '.']) {
        Some("starts with `-` or `.`")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_-.+".contains(&b))
    {
        Some("holds a character other than letters, digits, `_`, `-`, `.` and `+`")
    } else {
        None
    }
}

#[cfg(test)]
pub(crate) mod tests;
