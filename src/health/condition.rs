//! `when:`: the one condition a check may follow, so that it watches what this node serves
//! and only while it serves it: a filesystem mounted here, a DRBD resource Primary here, a
//! service address held here.
//!
//! This module owns the condition as the config states it ([`Condition`], read by
//! [`parse`]) and its reading on a running node ([`ConditionWatch`]): from the init mount
//! namespace's mountinfo, `/proc/drbd` with debugfs's DRBD names, and the interfaces'
//! addresses (getifaddrs: netlink, no fork). Each is root's to change: an unprivileged user
//! can neither mount in the init namespace (a FUSE mount by a user is not counted), nor add
//! an address, nor change a DRBD role. What a check does while its condition is false is
//! [`crate::health::conditional`]'s business.

use std::fmt;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use crate::health::checks::KeyProblem;
use crate::system::sysfile::KeptFile;
use crate::system::{drbd, mountinfo, Root};

/// One condition, as written under a check's `when:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// `mounted: /srv/nfs`: a filesystem is mounted there (init mount namespace).
    Mounted(PathBuf),
    /// `drbd-primary: r0`: the DRBD resource is Primary on this node.
    DrbdPrimary(String),
    /// `address: 192.0.2.10`: the address is on an interface of this node that is up.
    Address(IpAddr),
}

/// The conditions `when:` knows, as written.
pub const NAMES: [&str; 3] = ["mounted", "drbd-primary", "address"];

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Mounted(p) => write!(f, "mounted {}", p.display()),
            Condition::DrbdPrimary(r) => write!(f, "drbd-primary {r}"),
            Condition::Address(a) => write!(f, "address {a}"),
        }
    }
}

const EXAMPLE: &str = "`{mounted: /srv/nfs}`, `{drbd-primary: r0}` or `{address: 192.0.2.10}`";

/// Reads a `when:` value. A problem's key is relative to `when` (`mounted`, or empty for
/// `when` itself).
pub fn parse(value: &serde_yaml::Value) -> Result<Condition, KeyProblem> {
    let serde_yaml::Value::Mapping(map) = value else {
        return Err(KeyProblem::new(
            "",
            format!("`when` is one condition written as a mapping: {EXAMPLE}"),
        ));
    };
    let mut entries = map.iter();
    let (key, v) = match (entries.next(), map.len()) {
        (None, _) => {
            return Err(KeyProblem::new(
                "",
                format!("`when` is empty: give one condition, {EXAMPLE}"),
            ))
        }
        (Some(kv), 1) => kv,
        (Some(_), n) => {
            let keys: Vec<String> = map.keys().map(key_text).collect();
            return Err(KeyProblem::new(
                "",
                format!(
                    "`when` takes one condition, not {n} ({}): a check follows one role; \
                     write one check per condition",
                    keys.join(", ")
                ),
            ));
        }
    };
    let name = key_text(key);
    let text = |what: &str| match v {
        serde_yaml::Value::String(s) => Ok(s.clone()),
        other => Err(KeyProblem::new(
            &name,
            format!("`{name}` takes {what}, not {}", kind_of(other)),
        )),
    };
    match name.as_str() {
        "mounted" => {
            let s = text("a mount point (an absolute path such as /srv/nfs)")?;
            mount_point(&s)
                .map(Condition::Mounted)
                .map_err(|why| KeyProblem::new("mounted", why))
        }
        "drbd-primary" => {
            let s = text("a DRBD resource name such as r0")?;
            match drbd::bad_resource_name(&s) {
                None => Ok(Condition::DrbdPrimary(s)),
                Some(why) => Err(KeyProblem::new(
                    "drbd-primary",
                    format!(
                        "`{}` {why}: give the resource's name as in drbd.conf (`resource r0 {{ ... }}`)",
                        s.escape_debug()
                    ),
                )),
            }
        }
        "address" => {
            let s = text("an IP address such as 192.0.2.10")?;
            address(&s)
                .map(Condition::Address)
                .map_err(|why| KeyProblem::new("address", why))
        }
        other => Err(KeyProblem::new(
            other,
            format!(
                "unknown condition `{}`; `when` knows {}",
                other.escape_debug(),
                NAMES.join(", ")
            ),
        )),
    }
}

fn key_text(k: &serde_yaml::Value) -> String {
    match k {
        serde_yaml::Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .map(|s| s.trim_end().to_string())
            .unwrap_or_default(),
    }
}

fn kind_of(v: &serde_yaml::Value) -> &'static str {
    match v {
        serde_yaml::Value::Null => "nothing",
        serde_yaml::Value::Bool(_) => "a boolean",
        serde_yaml::Value::Number(_) => "a number",
        serde_yaml::Value::String(_) => "a string",
        serde_yaml::Value::Sequence(_) => "a list",
        serde_yaml::Value::Mapping(_) => "a mapping",
        serde_yaml::Value::Tagged(_) => "a tagged value",
    }
}

fn mount_point(s: &str) -> Result<PathBuf, String> {
    let p = Path::new(s);
    if !p.is_absolute() {
        return Err(format!(
            "`{}` is not an absolute path: write the mount point as mountinfo shows it, e.g. /srv/nfs",
            s.escape_debug()
        ));
    }
    if p.components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        || s.contains('\0')
    {
        return Err(format!(
            "`{}` must not contain `.`, `..` or NUL: write the mount point as mountinfo shows it",
            s.escape_debug()
        ));
    }
    // `/srv/nfs/` and `/srv/nfs` are one mount point.
    Ok(p.components().collect())
}

fn address(s: &str) -> Result<IpAddr, String> {
    if s.contains('/') {
        return Err(format!(
            "`{}`: write the address alone, without its prefix length (192.0.2.10, not 192.0.2.10/24)",
            s.escape_debug()
        ));
    }
    s.parse::<IpAddr>().map_err(|_| {
        format!(
            "`{}` is not an IPv4 or IPv6 address (e.g. 192.0.2.10 or 2001:db8::10)",
            s.escape_debug()
        )
    })
}

/// What a reading of the condition found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reading {
    /// It holds; the words say what was seen (`/srv/nfs is mounted (ext4 /dev/drbd0)`).
    Holds(String),
    /// It does not hold: the reason the check is idle (`/srv/nfs is not mounted`).
    Idle(String),
}

/// Where the addresses of this node come from: the interfaces of this process's network
/// namespace (a test hands in its own).
pub type AddressSource = fn() -> Result<Vec<(String, IpAddr, bool)>, String>;

/// A condition read on a running node, with what it keeps between readings.
pub struct ConditionWatch {
    condition: Condition,
    root: Root,
    mountinfo: Option<KeptFile>,
    addresses: AddressSource,
}

impl ConditionWatch {
    pub fn new(condition: Condition, root: &Root) -> Self {
        let mountinfo =
            matches!(condition, Condition::Mounted(_)).then(|| mountinfo::kept_init(root));
        ConditionWatch {
            condition,
            root: root.clone(),
            mountinfo,
            addresses: crate::system::addresses::of_interfaces,
        }
    }

    /// The same, reading addresses from `source`.
    #[cfg(test)]
    pub fn with_addresses(condition: Condition, root: &Root, source: AddressSource) -> Self {
        ConditionWatch {
            addresses: source,
            ..ConditionWatch::new(condition, root)
        }
    }

    pub fn condition(&self) -> &Condition {
        &self.condition
    }

    /// Reads the condition now. An error means the node's state could not be read: the
    /// caller fails the check with it (missing kernel data never makes a check idle).
    pub fn read(&mut self) -> Result<Reading, String> {
        match &self.condition {
            Condition::Mounted(path) => {
                let kept = self
                    .mountinfo
                    .get_or_insert_with(|| mountinfo::kept_init(&self.root));
                let table = mountinfo::read_kept(&self.root, kept).map_err(|e| e.to_string())?;
                Ok(mounted(&table, path))
            }
            Condition::DrbdPrimary(resource) => drbd_primary(&self.root, resource),
            Condition::Address(addr) => {
                let all = (self.addresses)()?;
                Ok(address_held(&all, *addr))
            }
        }
    }
}

/// `mounted`: the entry on top at `path` in the init namespace, not counting FUSE mounts an
/// unprivileged user made there (`mountinfo::top_by_root`).
pub fn mounted(table: &[mountinfo::MountEntry], path: &Path) -> Reading {
    match mountinfo::top_by_root(table, path) {
        Some(e) => Reading::Holds(format!(
            "{} is mounted ({} {})",
            path.display(),
            e.fs_type,
            e.source
        )),
        None => Reading::Idle(format!("{} is not mounted", path.display())),
    }
}

/// `drbd-primary`: some volume of `resource` is Primary. Without DRBD loaded nothing is
/// Primary; with no Primary at all the names are not needed, so a node where debugfs is not
/// mounted can still tell that it is no resource's Primary.
fn drbd_primary(root: &Root, resource: &str) -> Result<Reading, String> {
    let Some(proc) = drbd::read(root).map_err(|e| e.to_string())? else {
        return Ok(Reading::Idle(format!(
            "{resource} is not Primary: DRBD is not loaded (no /proc/drbd)"
        )));
    };
    if !proc.volumes.iter().any(|v| v.role == drbd::Role::Primary) {
        return Ok(Reading::Idle(format!(
            "{resource} is not Primary: no DRBD device is Primary here"
        )));
    }
    let names = drbd::names(root).map_err(|e| {
        format!("a DRBD device is Primary, but which resource it is cannot be told: {e}")
    })?;
    let minors = drbd::minors_of(&names, resource);
    if minors.is_empty() {
        return Ok(Reading::Idle(format!(
            "{resource} is not Primary: it is not configured here"
        )));
    }
    let mut seen = Vec::new();
    for m in &minors {
        match proc.volume(*m) {
            Some(v) if v.role == drbd::Role::Primary => {
                return Ok(Reading::Holds(format!(
                    "{resource} is Primary (minor {m}: {})",
                    v.fields
                )))
            }
            Some(v) => seen.push(format!("minor {m}: {}", v.fields)),
            None => seen.push(format!("minor {m}: not in /proc/drbd")),
        }
    }
    Ok(Reading::Idle(format!(
        "{resource} is not Primary ({})",
        seen.join("; ")
    )))
}

/// `address`: the address is on an interface that is up.
fn address_held(all: &[(String, IpAddr, bool)], want: IpAddr) -> Reading {
    let mut down = None;
    for (iface, addr, up) in all {
        if *addr == want {
            if *up {
                return Reading::Holds(format!("{want} is on {iface}"));
            }
            down = Some(iface);
        }
    }
    match down {
        Some(iface) => Reading::Idle(format!("{want} is on {iface}, which is down")),
        None => Reading::Idle(format!("{want} is not on any interface here")),
    }
}

#[cfg(test)]
mod tests;
