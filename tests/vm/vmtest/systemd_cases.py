"""The scenarios of the systemd guest (systemd_guest.py), as data: each one's config, its
script and any files it adds to the root. A script is sourced after guest/systemd/lib.sh
by vmtest.service and ends with `done_case` or `fail <reason>`."""

from .systemd_guest import Scenario

TIMEOUT_S = 6          # the i6300esb card's timeout: the reset comes one timeout after the last pet

UNIT_CONFIG = f"""\
devices:
  - path: /dev/watchdog0
    timeout: {TIMEOUT_S}s
interval: 1s
on-exit: disarm
fence:
  mode: watchdog
  kill: [fakehb]
  stall-threshold: 4s
checks:
  - kind: writable
    label: root
    mounts: [/]
    every: 1s
    deadline: 2s
  - kind: process
    name: fakehb
    every: 1s
    deadline: 2s
  # The DRBD-backed data mount, watched only where it is mounted, often (every 250 ms) so
  # that the unmounts below meet the check in every phase of its run.
  - kind: writable
    label: data
    mounts: [/srv/data]
    every: 250ms
    deadline: 2s
    when: {{mounted: /srv/data}}
  - kind: drbd
    resources: [r0]
    every: 250ms
    deadline: 2s
    when: {{drbd-primary: r0}}
  - kind: block-io
    stuck-after: 5s
    every: 1s
    deadline: 2s
"""

CYCLES = 100

UNIT_CASE = f"""\
# wdfeed.service waits for its checks: fakehb (its process check) is not running yet.
sleep 2
st=$(unit_state wdfeed.service)
[ "$st" = activating ] || fail "wdfeed.service is $st before its checks can pass, not activating"
wdfeed_log | grep -q "fence_bound_s=" && fail "wdfeed armed before its checks passed"
note "wdfeed.service activating while its process check fails ($(wdfeed_log | grep -o 'not arming.*' | tail -n 1 | cut -c1-120))"
t0=$(up)
/usr/local/bin/fakehb &
wait_state wdfeed.service active 30
note "wdfeed.service active $(echo "$(up) $t0" | awk '{{printf "%.2f", $1 - $2}}') s after fakehb started"
# READY=1 (systemd's "Started") only after wdfeed armed, i.e. after every check passed
armed=$(journalctl -q -b -o short-monotonic --no-pager | grep -m1 "fence_bound_s=" | sed 's/^\\[ *\\([0-9.]*\\)\\].*/\\1/')
started=$(journalctl -q -b -o short-monotonic --no-pager | grep -m1 "Started wdfeed" | sed 's/^\\[ *\\([0-9.]*\\)\\].*/\\1/')
[ -n "$armed" ] && [ -n "$started" ] || fail "no armed line ($armed) or no Started line ($started) in the journal"
awk -v a="$armed" -v s="$started" 'BEGIN {{ exit !(a <= s) }}' || fail "systemd saw READY ($started) before wdfeed armed ($armed)"
note "armed at $armed s, systemd's Started at $started s (monotonic)"
wdfeed status | sed 's/^/status: /' > /dev/console
pid=$(main_pid wdfeed.service)
[ "$(readlink /proc/$pid/ns/mnt)" != "$(readlink /proc/1/ns/mnt)" ] || fail "wdfeed runs in PID 1's mount namespace: is PrivateMounts= still in the unit?"
note "wdfeed (pid $pid) runs in a mount namespace of its own (PrivateMounts=yes and the unit's other sandboxing)"

# DRBD r0 on vdb, Primary alone (its peer never answers)
drbdadm -- --force create-md r0 > /tmp/drbd.log 2>&1 || fail "drbdadm create-md: $(tail -n 3 /tmp/drbd.log)"
drbdadm up r0 >> /tmp/drbd.log 2>&1 || fail "drbdadm up: $(tail -n 3 /tmp/drbd.log)"
drbdadm primary --force r0 >> /tmp/drbd.log 2>&1 || fail "drbdadm primary --force: $(tail -n 3 /tmp/drbd.log)"
note "$(grep ' 0: ' /proc/drbd | head -n 1)"
note "debugfs: minors/0 -> $(readlink /sys/kernel/debug/drbd/minors/0)"
wait_log "check active.*drbd-primary r0" 10 || fail "the drbd check never turned active on the Primary"

# {CYCLES} times: mount, use a moment, unmount, release the device (drbdadm secondary fails
# with the device held open), promote again.
busy=0
i=0
before=$(wdfeed_log | wc -l)
t0=$(up)
while [ $i -lt {CYCLES} ]; do
    i=$((i + 1))
    mount -t ext4 /dev/drbd0 /srv/data || fail "cycle $i: mount /dev/drbd0"
    usleep $(( (RANDOM % 500 + 100) * 1000 ))
    if ! umount /srv/data 2> /tmp/umount.err; then
        busy=$((busy + 1))
        note "cycle $i: umount: $(cat /tmp/umount.err); again 0.1 s later"
        usleep 100000
        umount /srv/data 2> /tmp/umount.err || fail "cycle $i: umount failed twice: $(cat /tmp/umount.err)"
    fi
    drbdadm secondary r0 > /tmp/sec.err 2>&1 || fail "cycle $i: drbdadm secondary after the unmount: $(tail -n 2 /tmp/sec.err)"
    drbdadm primary r0 > /tmp/pri.err 2>&1 || fail "cycle $i: drbdadm primary: $(tail -n 2 /tmp/pri.err)"
done
took=$(echo "$(up) $t0" | awk '{{printf "%.1f", $1 - $2}}')
active=$(wdfeed_log | grep -c "check active.*when=mounted /srv/data")
note "{CYCLES} cycles of mount, umount, drbdadm secondary, primary in $took s: every one succeeded; umount refused at the first attempt $busy times; the data check turned active $active times"
wdfeed_log | tail -n +$((before + 1)) | grep -E "check failed|fencing|missed its deadline" > /tmp/bad && fail "wdfeed failed a check during the cycles: $(head -n 1 /tmp/bad)"

# systemctl restart: a new wdfeed arms again; the VM stays up through it.
mount -t ext4 /dev/drbd0 /srv/data || fail "mount /dev/drbd0"
old=$(main_pid wdfeed.service)
t0=$(up)
systemctl restart wdfeed.service || fail "systemctl restart wdfeed failed"
wait_state wdfeed.service active 30
new=$(main_pid wdfeed.service)
[ "$new" != "$old" ] || fail "systemctl restart left the same pid $old"
note "systemctl restart: pid $old -> $new, active again $(echo "$(up) $t0" | awk '{{printf "%.2f", $1 - $2}}') s later"

# systemctl stop with on-exit: disarm: exits 0, the watchdog stops (the host watches the VM
# stay up), and the watched mount is free.
systemctl stop wdfeed.service || fail "systemctl stop wdfeed failed"
st=$(unit_state wdfeed.service)
rc=$(systemctl show -p ExecMainStatus --value wdfeed.service)
[ "$st" = inactive ] && [ "$rc" = 0 ] || fail "after systemctl stop: $st, exit status $rc"
journalctl -q -b --no-pager -u wdfeed.service | grep -q "disarmed" || fail "wdfeed did not say it disarmed"
umount /srv/data || fail "umount after the stop"
note "systemctl stop: inactive, exit status 0, disarmed"
done_case
"""

FLOOD_CONFIG = f"""\
devices:
  - path: /dev/watchdog0
    timeout: {TIMEOUT_S}s
interval: 1s
fence:
  mode: watchdog
  kill: [fakehb]
  stall-threshold: 4s
checks:
  - kind: process
    name: fakehb
    every: 1s
    deadline: 2s
"""

FLOOD_SECONDS = 15

# The writers run in a unit of their own that may notify (NotifyAccess=all), two as root and
# two as nobody: PID 1 then takes each datagram as a status update of that unit instead of
# warning of it in the journal, so it keeps reading (the queue stays full because four blocking
# writers outpace one reader) without drowning the console. While the queue is full PID 1
# serves its notify socket before anything else, so the script asks it nothing (no systemctl)
# until the node is reset.
FLOOD_UNIT = """\
[Unit]
Description=four writers that keep PID 1's notify queue full (vmtest)

[Service]
NotifyAccess=all
ExecStart=/bin/sh -c '/usr/local/bin/notify-flood 2 65534 & exec /usr/local/bin/notify-flood 2 0'
"""

FLOOD_CASE = f"""\
/usr/local/bin/fakehb &
hb=$!
wait_state wdfeed.service active 60
pid=$(main_pid wdfeed.service)
note "wdfeed.service active (pid $pid)"
before=$(wdfeed_log | wc -l)
systemctl start --no-block notify-flood.service || fail "systemctl start notify-flood.service"
note "flood started: 4 writers on /run/systemd/notify, 2 of them uid 65534"
sleep {FLOOD_SECONDS}
wait_log "notifications are dropped" 5 || fail "the flood never filled the queue: wdfeed dropped no notification"
# only what wdfeed logged from the flood on (fakehb may start after wdfeed's first run)
wdfeed_log | tail -n +$((before + 1)) | grep -E "fencing|check failed|missed its deadline" > /tmp/bad && fail "during the flood: $(head -n 1 /tmp/bad)"
[ "$(cat /proc/$pid/comm 2>/dev/null)" = wdfeed ] || fail "wdfeed (pid $pid) is gone: it was stopped or restarted during the flood"
json=$(wdfeed status --format json)
max=$(echo "$json" | grep -o '"max_us": *[0-9]*' | grep -o '[0-9]*$')
p99=$(echo "$json" | grep -o '"p99_us": *[0-9]*' | grep -o '[0-9]*$')
n=$(echo "$json" | grep -o '"wakeups": *[0-9]*' | grep -o '[0-9]*$')
[ -n "$max" ] || fail "no lateness in wdfeed status: $(echo "$json" | head -c 200)"
# The stall threshold is 4 s: a feeder held up for seconds would fence a node that never froze.
[ "$max" -lt 1000000 ] || fail "the feeder woke up $max us late during the flood"
note "{FLOOD_SECONDS} s of flood: $n wake-ups, the latest $max us late (p99 $p99 us), no check failed, no fence, same pid"
# A fault under the flood: the fence comes on time, and the hardware resets the node.
mark "fault heartbeat-stop under the flood"
kill -STOP $hb
wait_log "fencing check=process" 10 || fail "no fence within 10 s of the fault, under the flood"
note "$(wdfeed_log | grep -m1 'fencing check=' | cut -c1-160)"
done_case
"""

# A resource whose stop (here: its start) fails, with the recipe of docs/DEPLOY.md.
DEMOTE_UNIT = """\
[Unit]
Description=a demotion that fails (vmtest)
OnFailure=wdfeed-fence@%n.service
OnFailureJobMode=replace-irreversibly

[Service]
Type=oneshot
ExecStart=/bin/false
"""

ONFAILURE_CASE = """\
/usr/local/bin/fakehb &
wait_state wdfeed.service active 60
wait_log "operator requests" 10 || fail "wdfeed serves no operator requests"
note "wdfeed.service active; control socket $(stat -c '%A %U' /run/wdfeed/control)"
sleep 3
mark "fault demote-fail.service fails; OnFailure=wdfeed-fence@%n.service"
systemctl start demote-fail.service
wait_log "fencing check=operator evidence=OnFailure of demote-fail.service (wdfeed fence, uid 0" 10 || fail "wdfeed did not fence for the failed unit: $(journalctl -q --no-pager -u 'wdfeed-fence@*' | tail -n 3 | tr '\\n' ' ')"
note "$(wdfeed_log | grep -m1 'fencing check=' | cut -c1-200)"
done_case
"""

SCENARIOS = {
    s.name: s for s in [
        Scenario(
            "systemd-unit",
            "Debian's systemd as PID 1 on an ext4 root, wdfeed from the shipped unit: READY "
            f"only after the checks pass; {CYCLES} cycles of mount, umount and drbdadm "
            "secondary of a DRBD-backed data mount watched `when: mounted` while wdfeed "
            "runs; systemctl restart and stop",
            UNIT_CASE, UNIT_CONFIG,
            stay_up_s=3 * TIMEOUT_S,
        ),
        Scenario(
            "notify-flood",
            "systemd as PID 1, wdfeed from the shipped unit (WatchdogSec=20s), and PID 1's "
            "notify socket flooded by four writers (two of uid 65534) so that its queue stays "
            f"full for {FLOOD_SECONDS} s: wdfeed drops the notifications that find no room "
            "and says so, its feeder keeps its rhythm (latest wake-up under 1 s late, no "
            "freeze-guard fence, no restart); then the fake heartbeat is stopped under the "
            "flood: wdfeed fences, and the watchdog resets the node within the bound",
            FLOOD_CASE, FLOOD_CONFIG,
            programs=(("/usr/local/bin/notify-flood", "systemd/notify-flood.c"),),
            files=(("/etc/systemd/system/notify-flood.service", FLOOD_UNIT, 0o644),),
            reset_after=r"VMTEST: fault heartbeat-stop under the flood",
            limit_s=200,
        ),
        Scenario(
            "systemd-onfailure-fence",
            "a unit with the recipe `OnFailure=wdfeed-fence@%n.service` fails under systemd: "
            "the shipped template runs `wdfeed fence`, the daemon of the shipped unit (its "
            "sandboxing included) fences with check=operator and the unit's name as the "
            "reason, and the watchdog resets the node within the bound",
            ONFAILURE_CASE, FLOOD_CONFIG,
            files=(("/etc/systemd/system/demote-fail.service", DEMOTE_UNIT, 0o644),),
            reset_after=r"VMTEST: fault demote-fail\.service fails",
            limit_s=200,
        ),
    ]
}
