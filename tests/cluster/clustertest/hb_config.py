"""The heartbeat suite's configuration, in one place (docs/SEED.md, "The recipe"): addresses
of the three guests, heartbeat's ha.cf, haresources and authkeys, DRBD's r0, the NFS
server's resource script and export, the client's mount, and wdfeed's watchdog.yaml.
"""

from . import config

VIP = config.VIP
NODES = {
    "n1": {"addr": "10.99.0.1", "mac": "52:54:00:99:00:01", "tap": "tap1", "mem": 384},
    "n2": {"addr": "10.99.0.2", "mac": "52:54:00:99:00:02", "tap": "tap2", "mem": 384},
    "c": {"addr": "10.99.0.3", "mac": "52:54:00:99:00:03", "tap": "tap3", "mem": 256},
}
PRIMARY, STANDBY, CLIENT = "n1", "n2", "c"

# ---------------------------------------------------------------------------- heartbeat
KEEPALIVE_S = 1
WARNTIME_S = 5
DEADTIME_S = 10
INITDEAD_S = 30
EXPORT = "/srv/nfs"
RESOURCE_GROUP = f"drbddisk::r0 Filesystem::/dev/drbd0::{EXPORT}::ext4::errors=remount-ro nfsd IPaddr2::{VIP}/24/eth0"

HA_CF = f"""\
logfile /var/log/ha-log
debugfile /var/log/ha-debug
logfacility none
keepalive {KEEPALIVE_S}
warntime {WARNTIME_S}
deadtime {DEADTIME_S}
initdead {INITDEAD_S}
udpport 694
ucast eth0 {NODES['n1']['addr']}
ucast eth0 {NODES['n2']['addr']}
auto_failback off
crm off
node n1
node n2
"""
HARESOURCES = f"n1 {RESOURCE_GROUP}\n"
AUTHKEYS = "auth 1\n1 sha1 wdfeed-lab\n"
# heartbeat's log lines the host judges by, copied to the console
HA_LINES = (r"Late heartbeat|is dead|returning after partition|Resources being acquired|"
            r"acquired|[Gg]iving up|[Rr]elease|restart|foreign|Both machines|Takeover|standby|"
            r"STOP failure|CRIT|ERROR|Initial resource acquisition|Local Resource acquisition|"
            r"remote resource transition|Heartbeat restart|Performing heartbeat|Shutdown|"
            r"Running /etc/ha.d/+resource.d/[^ ]+ .*(start|stop)")

# ---------------------------------------------------------------------------- DRBD
DRBD_DISK_MB = 128
DRBD_FS_KB = 130048          # the ext4 leaves the disk's last MiB for DRBD's internal meta data
# DRBD gives up on a silent peer after ping-int + ping-timeout: 1 s + 0.5 s. The Primary's
# writes (protocol C) wait that long when the peer freezes; `timeout` must stay below
# ping-int and connect-int.
PING_INT_S = 1
PING_TIMEOUT_DS = 5
TIMEOUT_DS = 9
CONNECT_INT_S = 2
PEER_TIMEOUT_S = PING_INT_S + PING_TIMEOUT_DS / 10

DRBD_CONF = f"""\
global {{ usage-count no; }}
resource r0 {{
  device /dev/drbd0;
  disk /dev/vdb;
  meta-disk internal;
  disk {{ on-io-error detach; }}
  net {{
    protocol C;
    ping-int {PING_INT_S};
    ping-timeout {PING_TIMEOUT_DS};
    timeout {TIMEOUT_DS};
    connect-int {CONNECT_INT_S};
    after-sb-0pri discard-zero-changes;
    after-sb-1pri discard-secondary;
    after-sb-2pri disconnect;
  }}
  handlers {{ split-brain "/bin/sh -c 'echo CL: drbd split-brain $DRBD_RESOURCE > /dev/console'"; }}
  on n1 {{ address {NODES['n1']['addr']}:7789; }}
  on n2 {{ address {NODES['n2']['addr']}:7789; }}
}}
"""

# ---------------------------------------------------------------------------- NFS
GRACE_S = 10
LEASE_S = 10
EXPORTS = f"{EXPORT} 10.99.0.0/24(rw,sync,no_subtree_check,no_root_squash,fsid=1)\n"

# haresources' `nfsd`: a v1 resource script (ResourceManager judges `status` by its stdout).
# NFSv4.2 only (no rpcbind); the client records live on the DRBD filesystem, so the node that
# takes over knows the client and lets it reclaim its state in the grace period.
NFSD_SCRIPT = f"""\
#!/bin/sh
# its errors on the console: ResourceManager sends them to a log on the root, which a
# failing root may never write
exec 2>/dev/console
case "$1" in
start)
    exec >/dev/console
    mkdir -p {EXPORT}/.nfsdcltrack
    grep -q ' /proc/fs/nfsd ' /proc/mounts || mount -t nfsd nfsd /proc/fs/nfsd || {{ echo "nfsd: mount nfsd failed" >&2; exit 1; }}
    exportfs -r || {{ echo "nfsd: exportfs -r failed" >&2; exit 1; }}
    pidof rpc.mountd >/dev/null || rpc.mountd -N 2 -N 3 || {{ echo "nfsd: rpc.mountd failed" >&2; exit 1; }}
    rpc.nfsd -N 3 -G {GRACE_S} -L {LEASE_S} 8 || {{ echo "nfsd: rpc.nfsd failed" >&2; exit 1; }}
    echo "CL: nfsd started up=$(cut -d' ' -f1 /proc/uptime)" > /dev/console ;;
stop)
    rpc.nfsd 0
    killall rpc.mountd 2>/dev/null
    exportfs -ua
    echo "CL: nfsd stopped up=$(cut -d' ' -f1 /proc/uptime)" > /dev/console
    exit 0 ;;
status)
    t=$(cat /proc/fs/nfsd/threads 2>/dev/null)
    if [ "${{t:-0}}" -gt 0 ]; then echo running; else echo stopped; fi ;;
esac
exit 0
"""

CLIENT_MOUNT_OPTS = f"vers=4.2,hard,timeo=10,retrans=3,addr={VIP},clientaddr={NODES['c']['addr']}"
WRITE_INTERVAL_MS = 200

# ---------------------------------------------------------------------------- wdfeed
HW_TIMEOUT_S = 10            # i6300esb, /dev/watchdog0
SOFTDOG_TIMEOUT_S = 4        # softdog, /dev/watchdog1: the thaw guard, at most the stall threshold
STALL_S = 4


def wdfeed_yaml(role_aware):
    """wdfeed on n1 and n2: i6300esb, softdog as the thaw guard, heartbeat watched as a
    process, the root written, the physical disks watched (never drbd0: with protocol C it
    stalls whenever the peer does). `role_aware`: a wdfeed with checks that follow the node's
    role also writes the DRBD-backed export while it is mounted here, and judges DRBD itself
    (a Primary without good data, or with its I/O suspended too long); block-io's default
    list then leaves DRBD out by itself."""
    head = f"""\
devices:
  - path: /dev/watchdog0      # i6300esb
    timeout: {HW_TIMEOUT_S}s
  - path: /dev/watchdog1      # softdog: fires on a thaw, before the node sends a packet
    timeout: {SOFTDOG_TIMEOUT_S}s
interval: 1s
on-exit: disarm
fence:
  mode: watchdog
  kill: [heartbeat]
  stall-threshold: {STALL_S}s
  isolate: [eth0]
checks:
  - kind: process
    name: heartbeat
    max-uninterruptible: 2s
    every: 1s
    deadline: 2s
  - kind: writable
    mounts: [/]
    probe: true
    every: 1s
    deadline: 2s
"""
    if not role_aware:
        return head + """\
  - kind: block-io
    devices: [vda, vdb]
    stuck-after: 5s
    every: 1s
    deadline: 2s
"""
    return head + f"""\
  - kind: writable
    mounts: [{EXPORT}]
    probe: true
    when: {{mounted: {EXPORT}}}
    every: 1s
    deadline: 2s
  - kind: drbd
    resources: [r0]
    suspended-after: 5s       # above DRBD's own peer timeout here (ping-int 1 s + ping-timeout 0.5 s)
    every: 1s
    deadline: 2s
  - kind: block-io
    stuck-after: 5s
    every: 1s
    deadline: 2s
"""


PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "hacluster:x:100:101::/var/lib/heartbeat:/bin/false\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = "root:x:0:\nhaclient:x:101:hacluster\nnogroup:x:65534:\n"
