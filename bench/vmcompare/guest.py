"""Guest-side pieces: the shell fragments (/case.sh) and the daemons' configs.

guest/init (the VM suite's, unchanged) sources /case.sh after defining its helpers; a
fragment here that defines `start_petter` replaces init's for that guest, so the suite's own
scenario steps run unchanged with watchdog 5.16 as the petter.
"""

from .prep import cases

# Helpers every case.sh of the comparison starts with.
COMMON = r"""
# busybox syslogd writes to its stdout, the console: the host stamps watchdog 5.16's log
start_syslog() {
    [ -s /run/syslogd.pid ] && return 0
    syslogd -n -O - &
    echo $! > /run/syslogd.pid
    _i=0
    while [ ! -S /dev/log ]; do
        usleep 20000; _i=$((_i + 1)); [ $_i -ge 250 ] && fail "syslogd made no /dev/log"
    done
    mark "syslogd pid=$(cat /run/syslogd.pid)"
}

wd_state() { cat "/sys/class/watchdog/$(basename $WDDEV)/state" 2>/dev/null; }

# watchdog 5.16 in the foreground (-F), its pid in /run/wdfeed.pid so that the suite's
# scenario steps (kill -KILL $(pid_of wdfeed)) reach it; "armed" once the device is active.
start_wd516() {
    start_syslog
    mkdir -p /var/log/watchdog /etc/watchdog.d
    [ -e /var/run ] || ln -s /run /var/run
    # as on Debian: its shutdown unmounts what /etc/mtab lists
    [ -e /etc/mtab ] || ln -s /proc/self/mounts /etc/mtab
    mark "exec watchdog-5.16"
    ( /usr/sbin/watchdog -F -c /etc/watchdog.conf & echo $! > /run/wdfeed.pid; wait $!
      echo "VMTEST: exited watchdog rc=$? up=$(up)" ) &
    while [ ! -s /run/wdfeed.pid ]; do usleep 20000; done
    _i=0
    while [ "$(wd_state)" != active ]; do
        usleep 100000; _i=$((_i + 1))
        [ $_i -ge $((ARM_TIMEOUT * 10)) ] && fail "watchdog 5.16 did not arm $WDDEV within ${ARM_TIMEOUT}s"
    done
    mark "armed pid=$(pid_of wdfeed) daemon=watchdog-5.16 timeout=$(cat /sys/class/watchdog/$(basename $WDDEV)/timeout)"
}

if [ "$PETTER" = wd516 ]; then
    start_petter() { start_wd516; }
fi

proc_sample() {
    # VmRSS/VmHWM/VmLck in kB, threads, and utime/stime/cutime/cstime/starttime in clock ticks
    _p=$1
    set -- $(cat /proc/$_p/stat 2>/dev/null)
    _cpu="utime=${14} stime=${15} cutime=${16} cstime=${17} starttime=${22}"
    _st=$(awk '/^(VmRSS|VmHWM|VmLck|Threads):/ {printf "%s=%s ", $1, $2}' /proc/$_p/status 2>/dev/null | tr -d :)
    echo "$_st$_cpu uptime=$(up)"
}
"""

# False fences: the healthy node under stress-ng for WATCH_S seconds, then a clean stop.
FALSE_FENCE = r"""
start_petter
settle
stress-ng --cpu 2 --vm 1 --vm-bytes 75% --io 2 --fork 2 --temp-path /tmp \
    --timeout $((WATCH_S + 300))s > /run/stress.log 2>&1 &
_stress=$!
mark "load started pid=$_stress (stress-ng --cpu 2 --vm 1 --vm-bytes 75% --io 2 --fork 2) watch=${WATCH_S}s"
_t=0
while [ $_t -lt $WATCH_S ]; do
    _s=$((WATCH_S - _t)); [ $_s -gt 30 ] && _s=30
    sleep $_s; _t=$((_t + _s))
    mark "load t=$_t loadavg=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' /) free_kib=$(awk '/MemAvailable/ {print $2}' /proc/meminfo) daemon_state=$(wd_state)"
done
mark "watch-done"
if [ "$PETTER" = wdfeed ]; then
    wdfeed status 2>&1 | grep -i -e lateness -e 'wdfeed pid'
fi
kill -TERM $(pid_of wdfeed)
_i=0
while [ -d /proc/$(pid_of wdfeed) ] && [ $_i -lt 200 ]; do usleep 100000; _i=$((_i + 1)); done
mark "daemon stopped state=$(wd_state)"
kill -TERM $_stress 2>/dev/null
sleep 2
mark "stress-ng: $(grep -c . /run/stress.log) log lines; $(grep -i -m1 -e 'successful run' -e 'unsuccessful' -e 'failed' /run/stress.log)"
"""

# Detection, stuck-io-blockio's stand-in check: a file under /mnt/data that a loop rewrites with
# fsync every second (a bare touch would go on updating the in-memory mtime while the disk is
# stuck). Started before the daemon, so the file exists when it starts.
TOUCH_LOOP = r"""
dd if=/dev/zero of=/mnt/data/wd516-touch bs=4k count=1 conv=fsync 2>/dev/null
( while :; do dd if=/dev/zero of=/mnt/data/wd516-touch bs=4k count=1 conv=fsync 2>/dev/null; sleep 1; done ) &
mark "touch loop pid=$!"
"""

# Footprint: serial round trips, then the daemon alone on an idle guest, sampled.
FOOTPRINT = r"""
stty -echo 2>/dev/null
mark "rtt-ready"
_n=0
while [ $_n -lt $RTT_N ]; do
    read -r _x || break
    echo "VMTEST: pong $_x"
    _n=$((_n + 1))
done
settle
if [ "$PETTER" = wd516 ]; then
    start_syslog
    mkdir -p /var/log/watchdog /etc/watchdog.d
    [ -e /var/run ] || ln -s /run /var/run
    [ -e /etc/mtab ] || ln -s /proc/self/mounts /etc/mtab
    mark "exec watchdog-5.16"
    /usr/sbin/watchdog -F -c /etc/watchdog.conf &
else
    mark "exec wdfeed"
    wdfeed run -c /etc/wdfeed/watchdog.yaml > /run/wdfeed.log 2>&1 &
fi
_d=$!
echo $_d > /run/wdfeed.pid
mark "daemon pid=$_d"
sleep $SAMPLE1_S
mark "sample at=${SAMPLE1_S} $(proc_sample $_d)"
sleep $((FOOT_S - SAMPLE1_S))
mark "sample at=${FOOT_S} $(proc_sample $_d)"
[ -f /run/wdfeed.log ] && grep -e armed -e fenc -e 'check failed' /run/wdfeed.log | head -5
kill -TERM $_d
_i=0
while [ -d /proc/$_d ] && [ $_i -lt 100 ]; do usleep 100000; _i=$((_i + 1)); done
mark "footprint-done state=$(wd_state)"
"""


def wd516_conf(timeout, device="/dev/watchdog0", pidfile=False, test_binary=False, touch_file=False,
               change_s=10, test_timeout=2):
    """watchdog.conf of watchdog 5.16 in its nearest configuration to wdfeed's checks; every
    other setting stays at its default (retry-timeout 60, repair-maximum 1, no repair-binary,
    sigterm-delay 5, no load or memory checks)."""
    lines = [
        "# wdfeed comparison: watchdog 5.16, nearest equivalent of wdfeed's checks",
        f"watchdog-device = {device}",
        f"watchdog-timeout = {timeout}",
        "interval = 1",
        "realtime = yes",
        "priority = 1",
    ]
    if pidfile:
        lines += ["pidfile = /run/fakehb.pid"]
    if test_binary:
        lines += ["test-binary = /bin/wd516-writable-test", f"test-timeout = {test_timeout}"]
    if touch_file:
        lines += ["file = /mnt/data/wd516-touch", f"change = {change_s}"]
    return "\n".join(lines) + "\n"


def debian_default_conf(debian_text, device="/dev/watchdog0"):
    """The package's /etc/watchdog.conf (realtime = yes, priority = 1, all else commented out)
    plus the device, which it leaves commented out."""
    return debian_text.rstrip("\n") + f"\n\n# added for the comparison\nwatchdog-device = {device}\n"


def wdfeed_conf(driver, scenario_name="healthy"):
    return cases.config_yaml(driver, cases.SCENARIOS[scenario_name])
