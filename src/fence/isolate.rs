//! Isolation at fence: the interfaces in `fence.isolate` are taken down, so the node stops
//! answering for its service addresses (ARP included) at once, before the kill list.
//!
//! Everything is prepared at start-up: one datagram socket and, per interface, its name as
//! `struct ifreq` carries it and its index (which proves it exists). The fence then only
//! issues two ioctls per interface (SIOCGIFFLAGS, then SIOCSIFFLAGS without IFF_UP): no
//! fork, no exec, no file, no allocation. ioctl rather than an RTM_NEWLINK netlink message:
//! the answer is the call's own errno, with no message to build, no acknowledgement to
//! read and no receive buffer; the kernel takes the same path (`dev_change_flags`) as
//! `ip link set DEV down`. A failure (the interface vanished, EPERM) is recorded with its
//! errno and logged after the kills; it never stops the rest of the fence.

use std::os::fd::{AsFd, OwnedFd};

use crate::ffi::{self, IfName};
use crate::system::errno_slot::ErrnoSlot;

/// IFF_UP as `struct ifreq`'s short flags carry it (the flag is bit 0).
const IFF_UP: libc::c_short = 1;
const _: () = assert!(IFF_UP as libc::c_int == libc::IFF_UP);

struct Link {
    name: String,
    ifname: IfName,
    index: i32,
    /// Taken down, or the errno of the failed call.
    outcome: ErrnoSlot,
}

/// The prepared isolation step (empty when `fence.isolate` is).
#[derive(Default)]
pub struct Isolator {
    socket: Option<OwnedFd>,
    links: Box<[Link]>,
}

impl Isolator {
    /// Prepares every listed interface; an interface that does not exist (or a socket that
    /// cannot be made) is a start-up error naming `fence.isolate[i]`.
    pub fn prepare(names: &[String]) -> Result<Isolator, String> {
        if names.is_empty() {
            return Ok(Isolator::default());
        }
        let socket = ffi::interface_socket().map_err(|e| {
            format!("fence.isolate: cannot open a socket to take interfaces down at fence: {e}")
        })?;
        let mut links = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let ifname = IfName::new(name).ok_or_else(|| {
                format!("fence.isolate[{i}]: `{name}` is not a valid interface name")
            })?;
            let index = ffi::interface_index(socket.as_fd(), &ifname).map_err(|e| {
                format!(
                    "fence.isolate[{i}]: interface `{name}` does not exist on this node ({}: {}); list only interfaces `ip -br link` shows, and start wdfeed after they exist",
                    e,
                    e.desc()
                )
            })?;
            links.push(Link {
                name: name.clone(),
                ifname,
                index,
                outcome: ErrnoSlot::new(),
            });
        }
        Ok(Isolator {
            socket: Some(socket),
            links: links.into_boxed_slice(),
        })
    }

    /// The fence step: takes every interface down, in order, and records each outcome.
    /// In a dry run it touches nothing. Allocates nothing, logs nothing (see [`Self::report`]).
    pub fn isolate(&self, dry_run: bool) {
        let Some(sock) = self.socket.as_ref().filter(|_| !dry_run) else {
            return;
        };
        for link in self.links.iter() {
            link.outcome.set(
                ffi::interface_flags(sock.as_fd(), &link.ifname).and_then(|f| {
                    let down = f & !IFF_UP;
                    ffi::set_interface_flags(sock.as_fd(), &link.ifname, down)
                }),
            );
        }
    }

    /// What the isolation step did, one line each, for the log after the kills.
    pub fn report(&self, dry_run: bool) -> Vec<String> {
        self.links
            .iter()
            .map(|l| {
                if dry_run {
                    return format!(
                        "would isolate {} (ifindex {}): take it down",
                        l.name, l.index
                    );
                }
                match l.outcome.get() {
                    None => format!("isolate {}: not tried", l.name),
                    Some(Ok(())) => {
                        format!("isolated {} (ifindex {}): link down", l.name, l.index)
                    }
                    Some(Err(e)) => {
                        format!(
                            "could not take {} (ifindex {}) down: {e} ({}); the fence goes on",
                            l.name,
                            l.index,
                            e.desc()
                        )
                    }
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interface_that_does_not_exist_is_a_start_up_error() {
        let err = Isolator::prepare(&["lo".into(), "wdft-none9".into()])
            .err()
            .expect("must refuse");
        assert!(
            err.starts_with("fence.isolate[1]: interface `wdft-none9` does not exist"),
            "{err}"
        );
        assert!(err.contains("ENODEV"), "{err}");
    }

    #[test]
    fn a_dry_run_touches_nothing_and_says_what_it_would_do() {
        let iso = Isolator::prepare(&["lo".into()]).unwrap();
        iso.isolate(true);
        assert_eq!(iso.links[0].outcome.get(), None);
        let lines = iso.report(true);
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with("would isolate lo (ifindex 1)"),
            "{lines:?}"
        );
    }

    #[test]
    fn an_interface_that_vanished_before_the_fence_is_logged_and_the_rest_goes_on() {
        // Prepared for `lo` (so the start-up check passes), then pointed at names that no
        // longer exist, as if both interfaces had been deleted after start-up. No real
        // interface of this machine is ever touched.
        let mut iso = Isolator::prepare(&["lo".into(), "lo".into()]).unwrap();
        let mut links = std::mem::take(&mut iso.links).into_vec();
        for (l, name) in links.iter_mut().zip(["wdft-gone0", "wdft-gone1"]) {
            l.name = name.into();
            l.ifname = IfName::new(name).unwrap();
        }
        iso.links = links.into_boxed_slice();
        iso.isolate(false);
        let lines = iso.report(false);
        for (line, name) in lines.iter().zip(["wdft-gone0", "wdft-gone1"]) {
            assert!(
                line.starts_with(&format!("could not take {name} (ifindex 1) down: ENODEV")),
                "{lines:?}"
            );
            assert!(line.ends_with("the fence goes on"), "{lines:?}");
        }
    }

    /// The parent's network namespace, set only in the child that [`isolation_takes_a_dummy_interface_down_in_a_private_namespace`]
    /// starts under `unshare --net`.
    const IN_PRIVATE_NETNS: &str = "WDFEED_TEST_IN_PRIVATE_NETNS";

    fn own_net_namespace() -> String {
        std::fs::read_link("/proc/self/ns/net")
            .unwrap()
            .display()
            .to_string()
    }

    #[test]
    fn isolation_takes_a_dummy_interface_down_in_a_private_namespace() {
        use std::os::unix::fs::MetadataExt;
        // /proc/self belongs to the effective user.
        if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() != Some(0) {
            eprintln!("skipped: creating a network namespace and a dummy interface needs root");
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new("unshare")
            .args(["--net", "--"])
            .arg(exe)
            .args([
                "--exact",
                "fence::isolate::tests::in_private_netns_take_wdft0_down",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(IN_PRIVATE_NETNS, own_net_namespace())
            .output();
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                eprintln!("skipped: cannot run unshare (util-linux): {e}");
                return;
            }
        };
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains(" was up, is down"), "{text}");
        assert!(
            text.contains("1 passed"),
            "the inner test did not run: {text}"
        );
    }

    /// Runs only inside the private namespace the test above creates (it refuses anywhere
    /// else): a dummy interface (or the namespace's own lo), up, is taken down by the prepared
    /// isolator.
    #[test]
    #[ignore = "run by isolation_takes_a_dummy_interface_down_in_a_private_namespace"]
    fn in_private_netns_take_wdft0_down() {
        let parent = std::env::var(IN_PRIVATE_NETNS).expect("started by the test above");
        assert_ne!(
            own_net_namespace(),
            parent,
            "refusing: not in a private network namespace"
        );
        let ip = |args: &[&str]| {
            std::process::Command::new("ip")
                .args(args)
                .status()
                .is_ok_and(|s| s.success())
        };
        // A dummy interface where the kernel has the dummy driver; else the namespace's own
        // loopback (private to it as well).
        let name = if ip(&["link", "add", "wdft0", "type", "dummy"]) {
            "wdft0"
        } else {
            println!("no dummy driver: using the private namespace's own lo");
            "lo"
        };
        assert!(ip(&["link", "set", name, "up"]), "ip link set {name} up");
        let iso = Isolator::prepare(&[name.into()]).unwrap();
        let sock = iso.socket.as_ref().unwrap();
        let up = |flags: libc::c_short| flags & IFF_UP != 0;
        let before = ffi::interface_flags(sock.as_fd(), &iso.links[0].ifname).unwrap();
        assert!(up(before));
        iso.isolate(false);
        let after = ffi::interface_flags(sock.as_fd(), &iso.links[0].ifname).unwrap();
        assert!(!up(after), "flags {after:#x}");
        let lines = iso.report(false);
        assert!(
            lines[0].starts_with(&format!("isolated {name}")),
            "{lines:?}"
        );
        println!("{name} was up, is down");
    }

    #[test]
    fn names_the_kernel_cannot_take_are_refused() {
        assert!(IfName::new("").is_none());
        assert!(IfName::new("abcdefghijklmnop").is_none(), "16 bytes");
        assert!(IfName::new("abcdefghijklmno").is_some(), "15 bytes");
        assert!(IfName::new("a\0b").is_none());
    }
}
