"""The Pacemaker suite's configuration, in one place (docs/PACEMAKER.md, "Test plan"):
addresses of the three guests, corosync.conf (qdevice, or two_node for the baseline of the
defect), sbd's environment file, the CIB script and wdfeed's watchdog.yaml.
"""

from . import config

VIP = config.VIP
NODES = {
    "n1": {"addr": "10.99.0.1", "mac": "52:54:00:99:00:01", "tap": "tap1"},
    "n2": {"addr": "10.99.0.2", "mac": "52:54:00:99:00:02", "tap": "tap2"},
    "q": {"addr": "10.99.0.3", "mac": "52:54:00:99:00:03", "tap": "tap3"},
}
OWNER, PEER, QNETD = "n1", "n2", "q"

TOKEN_MS = 3000
SBD_WATCHDOG_TIMEOUT_S = 11          # S = max(5, ceil(B / 2)) for B = 21.0 s
FENCING_WATCHDOG_TIMEOUT_S = 22      # F = 2 x S
QDEVICE_SYNC_TIMEOUT_MS = 10000      # <= S x 1000, or sbd distrusts quorum

HW_TIMEOUT_S = 10
DATA_DEV = "vda"
DATA_MOUNT = "/srv"

# the lines of corosync's and Pacemaker's logs the host reads (copied to the console)
COROSYNC_LINES = r"membership|quorum|Quorum|lost|left|joined|Failed|error"
PACEMAKER_LINES = (r"self-fence|Self-fencing|SBD not active|too short|Shutting down|crm_exit|"
                   r"emerg|Fatal|fatal|lost|Result of (start|stop) operation|"
                   r"watchdog|Watchdog|fenc.*(complete|succeeded|failed)|Peer .* was terminated")
FATAL_LINES = r"SBD not active|too short|pacemaker-controld.*(Fatal|exited with)|exited pacemakerd"


def corosync_conf(qdevice):
    if qdevice:
        quorum = f"""\
quorum {{
    provider: corosync_votequorum
    device {{
        model: net
        votes: 1
        timeout: 5000
        sync_timeout: {QDEVICE_SYNC_TIMEOUT_MS}
        net {{
            host: {NODES[QNETD]['addr']}
            algorithm: ffsplit
            tls: off
        }}
    }}
}}
"""
    else:
        quorum = """\
quorum {
    provider: corosync_votequorum
    two_node: 1
}
"""
    nodes = "".join(f"""\
    node {{
        name: {n}
        nodeid: {i}
        ring0_addr: {NODES[n]['addr']}
    }}
""" for i, n in ((1, "n1"), (2, "n2")))
    return f"""\
totem {{
    version: 2
    cluster_name: wdfeed-lab
    transport: knet
    crypto_cipher: none
    crypto_hash: none
    token: {TOKEN_MS}
}}
nodelist {{
{nodes}}}
{quorum}logging {{
    to_stderr: no
    to_syslog: no
    to_logfile: yes
    logfile: /var/log/corosync/corosync.log
    timestamp: on
}}
"""


SBD_ENV = f"""\
SBD_PACEMAKER=yes
SBD_WATCHDOG_DEV=/dev/watchdog1
SBD_WATCHDOG_TIMEOUT={SBD_WATCHDOG_TIMEOUT_S}
SBD_DELAY_START=no
SBD_TIMEOUT_ACTION=flush,reboot
SBD_MOVE_TO_ROOT_CGROUP=no
SBD_SYNC_RESOURCE_STARTUP=yes
"""

CIB_SH = f"""\
set -e
crm_attribute --type crm_config --name stonith-enabled --update true
crm_attribute --type crm_config --name stonith-watchdog-timeout --update {FENCING_WATCHDOG_TIMEOUT_S}s
crm_attribute --type crm_config --name no-quorum-policy --update stop
crm_attribute --type rsc_defaults --name resource-stickiness --update 100
cibadmin --create --scope resources --xml-text '
<group id="svc">
  <primitive id="vip" class="ocf" provider="heartbeat" type="IPaddr2">
    <instance_attributes id="vip-ia">
      <nvpair id="vip-ip" name="ip" value="{VIP}"/>
      <nvpair id="vip-cidr" name="cidr_netmask" value="24"/>
      <nvpair id="vip-nic" name="nic" value="eth0"/>
    </instance_attributes>
    <operations><op id="vip-mon" name="monitor" interval="2s" timeout="20s"/></operations>
  </primitive>
  <primitive id="app" class="ocf" provider="heartbeat" type="Dummy">
    <operations><op id="app-mon" name="monitor" interval="2s" timeout="20s"/></operations>
  </primitive>
</group>'
cibadmin --create --scope constraints --xml-text '<rsc_location id="svc-on-n1" rsc="svc" node="n1" score="50"/>'
"""


def wdfeed_yaml():
    return f"""\
devices:
  - path: /dev/watchdog0        # i6300esb; softdog (watchdog1) belongs to sbd
    timeout: {HW_TIMEOUT_S}s
interval: 1s
fence:
  mode: watchdog
  isolate: [eth0]
  kill: [sbd, corosync]
  stall-threshold: 4s
checks:
  - kind: writable
    mounts: [{DATA_MOUNT}]
    probe: true
    every: 1s
    deadline: 2s
  - kind: block-io
    devices: [{DATA_DEV}]
    stuck-after: 5s
    every: 1s
    deadline: 2s
  - kind: process
    name: corosync
    max-uninterruptible: 5s
    every: 1s
    deadline: 2s
"""
