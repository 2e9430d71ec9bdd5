"""The one place where the two-node suite's configuration lives: addresses, timings, the
keepalived.conf of each node and the watchdog.yaml of wdfeed. Everything else reads these.
"""

# ---------------------------------------------------------------------------- network
# Only this /24, only inside the suite's own network namespace.
SUBNET_PREFIX = 24
BRIDGE = "br0"
BRIDGE_ADDR = "10.99.0.254"
# the ARP observer's probes: one arping per source address, started 1/len s apart, so the
# bridge asks "who has the service address" len(OBSERVER_ADDRS) times a second
OBSERVER_ADDRS = ("10.99.0.254", "10.99.0.253", "10.99.0.252", "10.99.0.251")
VIP = "10.99.0.100"
NODES = {
    1: {"addr": "10.99.0.1", "mac": "52:54:00:99:00:01", "priority": 150, "tap": "tap1"},
    2: {"addr": "10.99.0.2", "mac": "52:54:00:99:00:02", "priority": 100, "tap": "tap2"},
}
MASTER, PEER = 1, 2

# ---------------------------------------------------------------------------- VRRP
ADVERT_INT_S = 1
VIRTUAL_ROUTER_ID = 51
HANDOVER_FILE = "/run/wdfeed/handover"

# ---------------------------------------------------------------------------- wdfeed
HW_TIMEOUT_S = 10          # i6300esb, /dev/watchdog0
SOFTDOG_TIMEOUT_S = 4      # softdog, /dev/watchdog1: at most the stall threshold
STALL_S = 4
INTERVAL_S = 1
EVERY_S = 1
DEADLINE_S = 2
STUCK_AFTER_S = 5
MAX_D_S = 2
DATA_DEV = "vda"
DATA_MOUNT = "/mnt/data"


def wdfeed_yaml(softdog):
    """wdfeed's watchdog.yaml in both guests. `softdog`: a second device that fires on a
    thaw (i6300esb does not), for the frozen-VM scenario."""
    second = f"""\
  - path: /dev/watchdog1      # softdog: fires on thaw, before the network stack answers
    timeout: {SOFTDOG_TIMEOUT_S}s
""" if softdog else ""
    return f"""\
devices:
  - path: /dev/watchdog0      # i6300esb
    timeout: {HW_TIMEOUT_S}s
{second}interval: {INTERVAL_S}s
on-exit: disarm
fence:
  mode: watchdog
  kill: [keepalived]
  stall-threshold: {STALL_S}s
  isolate: [eth0]
  handover-file: {HANDOVER_FILE}
checks:
  - kind: process
    name: keepalived
    max-uninterruptible: {MAX_D_S}s
    every: {EVERY_S}s
    deadline: {DEADLINE_S}s
  - kind: writable
    mounts: [{DATA_MOUNT}]
    probe: true
    every: {EVERY_S}s
    deadline: {DEADLINE_S}s
  - kind: block-io
    devices: [{DATA_DEV}]
    stuck-after: {STUCK_AFTER_S}s
    every: {EVERY_S}s
    deadline: {DEADLINE_S}s
"""


def keepalived_conf(node, with_wdfeed):
    """keepalived.conf of a node. With wdfeed, the instance tracks wdfeed's handover file:
    FAULT (the address given away at once) while it says anything but 0, and it says 1 from
    keepalived's start until wdfeed has seen every check pass."""
    n = NODES[node]
    track_top = f"""
track_file wdf {{
    file {HANDOVER_FILE}
    weight 0
    init_file 1 overwrite
}}
""" if with_wdfeed else ""
    track_inst = """
    track_file {
        wdf
    }""" if with_wdfeed else ""
    return f"""\
global_defs {{
    router_id node{node}
    vrrp_garp_master_delay 1
}}
{track_top}
vrrp_instance VI_1 {{
    state BACKUP
    nopreempt
    interface eth0
    virtual_router_id {VIRTUAL_ROUTER_ID}
    priority {n['priority']}
    advert_int {ADVERT_INT_S}
    virtual_ipaddress {{
        {VIP}/{SUBNET_PREFIX} dev eth0
    }}
    notify /etc/keepalived/notify.sh{track_inst}
}}
"""


NOTIFY_SH = """\
#!/bin/sh
# keepalived's notify script: $1 INSTANCE|GROUP, $2 name, $3 the new state
echo "$3" > /run/vrrp.state
echo "CL: vrrp $3 up=$(cut -d' ' -f1 /proc/uptime)" > /dev/console
"""
