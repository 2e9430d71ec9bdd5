//! The IP addresses on this node's interfaces, with whether each interface is up: what the
//! `address` condition of `when:` reads. getifaddrs(3) asks the kernel over netlink
//! (RTM_GETADDR, RTM_GETLINK): no fork, no file. It sees the network namespace of this
//! process, which is the node's as long as wdfeed runs without a network namespace of its own
//! (the shipped unit has none).

use std::net::IpAddr;

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;

/// Every address on every interface: (interface, address, interface up).
pub fn of_interfaces() -> Result<Vec<(String, IpAddr, bool)>, String> {
    let all = getifaddrs().map_err(|e| format!("cannot list the interfaces' addresses: {e}"))?;
    let mut out = Vec::new();
    for ifa in all {
        let Some(addr) = ifa.address else { continue };
        let ip = if let Some(v4) = addr.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        out.push((
            ifa.interface_name,
            ip,
            ifa.flags.contains(InterfaceFlags::IFF_UP),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loopback_address_is_on_an_interface_that_is_up() {
        let all = of_interfaces().unwrap();
        assert!(
            all.iter()
                .any(|(_, a, up)| *a == IpAddr::from([127, 0, 0, 1]) && *up),
            "{all:?}"
        );
    }
}
