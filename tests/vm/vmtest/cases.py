"""The drivers and scenarios of the suite, as data: what QEMU gets, what the guest runs, what
the host does, and what outcome and timing each case must show.

A case is one scenario on one driver. Its guest steps are a shell fragment (/case.sh) run by
guest/init after the common set-up (modules, watchdog device, data disk, fake heartbeat);
host-side faults (stopping the disk server, freezing the whole VM) are named in `host_fault`.
"""

from dataclasses import dataclass
import math

# Every guest pets with this interval and checks with these periods; the scenarios' timings
# follow from them and from the driver's timeout.
INTERVAL_S = 1
EVERY_S = 1
DEADLINE_S = 2
STUCK_AFTER_S = 5
STALL_S = 4
MAX_D_S = 2           # how long fakehb may sit in D state (it never does)
SETTLE_S = 3          # seconds of steady petting between "armed" and the fault


@dataclass(frozen=True)
class Driver:
    name: str
    doc: str
    machine: list
    modules: list          # [(module, params)] in insmod order; dependencies are added
    wddev: str
    timeout: int
    trace: tuple = ()       # QEMU trace events that show each pet from the host

    def reset_after_last_pet(self):
        """When the hardware acts after the last pet (VM-LAB measurements)."""
        if self.name == "iTCO_wdt":
            # ICH9 TCO v2 counts 0.6 s ticks and resets on the second expiry
            return 2 * (self.timeout * 10 // 6) * 0.6
        return float(self.timeout)


TIMEOUT_S = 6

DRIVERS = {
    d.name: d for d in [
        Driver("i6300esb", "Intel 6300ESB PCI watchdog on the pc machine",
               ["-M", "pc", "-device", "i6300esb", "-action", "watchdog=reset"],
               [("i6300esb", "")], "/dev/watchdog0", TIMEOUT_S),
        Driver("softdog", "the kernel's software watchdog (an hrtimer, no hardware)",
               ["-M", "pc"],
               [("softdog", "")], "/dev/watchdog0", TIMEOUT_S),
        Driver("iTCO_wdt", "ICH9 TCO timer on q35 (resets after two expiries)",
               ["-M", "q35", "-global", "ICH9-LPC.noreboot=false", "-action", "watchdog=reset"],
               [("lpc_ich", ""), ("iTCO_vendor_support", ""), ("intel_pmc_bxt", ""),
                ("iTCO_wdt", f"heartbeat={TIMEOUT_S}")], "/dev/watchdog0", TIMEOUT_S,
               trace=("tco_timer_reload", "tco_timer_expired")),
        Driver("ipmi_watchdog", "IPMI watchdog of QEMU's simulated BMC over KCS (only /dev/watchdog)",
               ["-M", "pc", "-device", "ipmi-bmc-sim,id=bmc0", "-device", "isa-ipmi-kcs,bmc=bmc0"],
               [("ipmi_msghandler", ""), ("ipmi_si", ""), ("ipmi_devintf", ""),
                ("ipmi_watchdog", f"timeout={TIMEOUT_S} action=reset")], "/dev/watchdog", TIMEOUT_S),
    ]
}

# Modules every guest loads before the driver: the virtio disk and ext4.
BASE_MODULES = [("virtio_pci", ""), ("virtio_blk", ""), ("crc32c_generic", ""), ("ext4", "")]


@dataclass(frozen=True)
class Scenario:
    name: str
    doc: str
    guest: str                     # shell fragment, run after the common set-up
    expect: str                    # "reset" or "up"
    timing: str                    # "bound": after <= B + slack; "reset-time": after ~ R;
                                   # "reboot": the guest reboots itself at the fault;
                                   # "stay-up": no reset for `up_for` resets' worth of time
    host_fault: str = ""           # "", "stop-nbd" or "freeze-vm"
    nbd: bool = False              # serve the data disk with qemu-nbd on the host
    disk_mb: int = 256
    on_exit: str = "disarm"
    fences: bool = False           # wdfeed must fence: log it and SIGKILL the kill list
                                   # (fakehb, fakerm) before the reset, and where the host
                                   # sees pets (iTCO), they go on every interval until then
    standin_ok: bool = True        # meaningful with busybox's watchdog as the petter
    trio: bool = False             # one of the basic trio (marked in --list)
    drivers: tuple = ()            # empty: every driver
    modules: tuple = ()            # more modules for this scenario: ((name, params), ...)
    block_devices: tuple = ("vda",)
    stuck_after: int = STUCK_AFTER_S
    evidence: str = ""             # regex the fencing line must match (which path acted)
    window: int = 0                # seconds to watch after the fault (0: from the bound)
    t0_marker: str = ""            # times count from this guest marker, not from the fault
    probe: bool = True             # the writable check's write probe, where supported
    checks: tuple = ("writable", "block-io", "process")
                                   # the config's checks: a fault scenario carries only the
                                   # one under test, so B is that check's own bound
    log_must: tuple = ()           # names in WDFEED_SAYS: each must appear on the serial line
    exits_clean: bool = False      # wdfeed must exit 0 after the fault (SIGTERM)
    restart: bool = False          # wdfeed is started a second time after the fault: it
                                   # must arm again (the gap is reported)
    boot_running: bool = False     # the device runs before wdfeed opens it: wdfeed must
                                   # arm within R of the driver's load
    driver_params: tuple = ()      # ((driver, its module's parameters), ...): only on
                                   # that driver
    interval: int = INTERVAL_S     # the feeder's interval in this scenario's config
    second_boot: str = ""          # the guest boots again on the same disk (BOOT=2 in its
                                   # case.env) after the first boot's outcome, and READY=1
                                   # must then wait for the rejoin delay ("rejoin-delay",
                                   # also across a restart: "rejoin-delay-restart") or
                                   # come at once ("no-delay"), or be held until
                                   # `wdfeed rejoin-now` ("budget-hold"), or it must name
                                   # the dump boot 1 saved ("dump-named")
    boots: int = 2                 # with second_boot: how many boots in all; the ones
                                   # between the first and the last fence again as the first
    pause: int = 0                 # a maintenance pause of this many seconds before the fault
                                   # (PAUSE_S in case.env): the VM must stay up for it and be
                                   # reset within the bound after it ("pause" timing)
    fence_mode: str = "watchdog"   # the config's fence.mode
    crashdump_timeout: int = 0     # fence.crashdump-timeout (mode crashdump)
    dump: str = ""                 # a crash kernel is loaded (Debian's kexec-tools) whose
                                   # dump kernel saves a dump with makedumpfile on the data
                                   # disk ("save") or hangs ("hang"); see dump.py
    append: str = ""               # more kernel command line (crashkernel=)
    device_timeout: int = 0        # the config's device timeout (0: the driver's)
    pretimeout: int = 0            # the config's device pretimeout (0: none)


FAULT = 'mark "fault {what}"'

# The persistent state directory of the rejoin scenarios: on the data disk, which a second
# boot of the guest finds again.
REJOIN_STATE = """
STATE=/mnt/data/wdfeed-state
mkdir -p -m 700 $STATE
WDFEED_ARGS="--state-dir $STATE"
# boot 1 of a fence scenario: a stopped heartbeat
fence_on_stopped_heartbeat() {
    start_petter
    settle
    mark "fault heartbeat-stop"
    kill -STOP $(pid_of fakehb)
}
# boot 2: what the disk brought, then wdfeed
start_boot2() {
    mark "note boot $BOOT of the same disk; state record: $(tr '\\n' ' ' < $STATE/state 2>/dev/null)"
    mark "starting wdfeed"
    start_petter
}
# wait_ready SECONDS: READY=1, then 5 s in which the VM must stay up
wait_ready() {
    wait_log "READY=1 sent" $1 || fail "wdfeed never sent READY=1"
    mark "ready-seen"
    sleep 5
    mark "boot2-done"
}
"""

SCENARIOS = {s.name: s for s in [
    Scenario(
        "healthy",
        "all checks pass and a fake heartbeat lives while the guest runs heavy legitimate "
        "load (CPU spinners, memory churn, 128 MiB writes with fsync in a loop on the checked "
        "filesystem): the VM must stay up for 3 reset times; then SIGTERM, which must disarm "
        "under that load too",
        guest="""
start_petter
settle
( while :; do :; done ) &
( while :; do dd if=/dev/zero of=/dev/null bs=48M count=2 2>/dev/null; done ) &
( while :; do head -c 128m /dev/zero > /run/ballast; rm -f /run/ballast; done ) &
( while :; do dd if=/dev/zero of=/mnt/data/big bs=1M count=128 conv=fsync 2>/dev/null; sync; done ) &
mark "fault none (load started: cpu, memory, disk)"
_t=0
while [ $_t -lt $UP_FOR ]; do
    _s=$((UP_FOR - _t)); [ $_s -gt 5 ] && _s=5
    sleep $_s; _t=$((_t + _s))
    mark "load loadavg=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' /) vda_written_mib=$(( $(awk '{print $7}' /sys/block/vda/stat) / 2048 )) free_kib=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)"
done
# a clean stop under load: wdfeed reports its feeder's wake-up lateness and disarms
kill -TERM $(pid_of wdfeed)
""",
        expect="up", timing="stay-up", disk_mb=512, trio=True),
    Scenario(
        "ro-remount",
        "the checked filesystem is remounted read-only with mount -o remount,ro while wdfeed "
        "runs: the kernel must take it (wdfeed holds no file open there between runs)",
        guest="""
start_petter
settle
mark "fault ro-remount"
if mount -o remount,ro /mnt/data 2>/run/remount.err; then
    mark "note remount,ro done while wdfeed runs"
else
    # only the moment of a probe run may refuse it, once
    mark "note remount,ro refused once ($(cat /run/remount.err)); again 0.1 s later"
    usleep 100000
    mount -o remount,ro /mnt/data 2>/run/remount.err || fail "remount,ro refused twice while wdfeed runs: $(cat /run/remount.err)"
fi
grep ' /mnt/data ' /proc/1/mountinfo
""",
        expect="reset", timing="bound", standin_ok=False, fences=True,
        checks=('writable',)),
    Scenario(
        "ext4-error",
        "ext4 mounted errors=remount-ro takes a real error (trigger_fs_error): mountinfo still "
        "says rw, only the write probe can see it",
        guest="""
start_petter
settle
mark "fault ext4-error"
echo 1 > /sys/fs/ext4/$DISK/trigger_fs_error
grep ' /mnt/data ' /proc/1/mountinfo
mark "note errors_count=$(cat /sys/fs/ext4/$DISK/errors_count)"
""",
        expect="reset", timing="bound", standin_ok=False, fences=True,
        checks=('writable',)),
    Scenario(
        "stuck-io",
        "the data disk is served by qemu-nbd on the host, which gets SIGSTOP: I/O hangs with "
        "requests in flight and the write probe sits in D state",
        guest="""
start_petter
( while :; do dd if=/dev/zero of=/mnt/data/w bs=64k count=16 conv=fsync 2>/dev/null; usleep 200000; done ) &
settle
mark "ready-for-host-fault"
""",
        expect="reset", timing="bound", host_fault="stop-nbd", nbd=True, standin_ok=False,
        fences=True,
        checks=('writable',)),
    Scenario(
        "stuck-io-blockio",
        "as stuck-io, but the data mount has no write probe: block-io's stuck rule alone "
        "(requests in flight, no completion for stuck-after=10s) must fence within the bound",
        guest="""
start_petter
( while :; do dd if=/dev/zero of=/mnt/data/w bs=64k count=16 conv=fsync 2>/dev/null; usleep 200000; done ) &
settle
mark "ready-for-host-fault"
""",
        expect="reset", timing="bound", host_fault="stop-nbd", nbd=True, standin_ok=False,
        fences=True, probe=False, stuck_after=10, evidence=r"vda",
        checks=('block-io',)),
    Scenario(
        "stuck-io-scsi",
        "a scsi_debug disk starts timing out every command (every_nth=1 opts=4, command "
        "timeout 5 s): SCSI error handling gives up and sets the device offline (~73 s "
        "later), and block-io's device-state rule (its stuck rule is set to 120 s here) must "
        "fence: times count from the state change",
        guest="""
_i=0
while [ ! -b /dev/sda ]; do usleep 100000; _i=$((_i + 1)); [ $_i -ge 100 ] && fail "no /dev/sda"; done
echo 5 > /sys/block/sda/device/timeout
start_petter
( while :; do dd if=/dev/zero of=/dev/sda bs=4k count=4 conv=fsync 2>/dev/null; usleep 200000; done ) &
settle
mark "fault scsi-timeouts"
echo 1 > /sys/bus/pseudo/drivers/scsi_debug/every_nth
echo 4 > /sys/bus/pseudo/drivers/scsi_debug/opts
_s=running
while :; do
    _n=$(cat /sys/block/sda/device/state)
    [ "$_n" != "$_s" ] && { mark "scsi-state $_n"; _s=$_n; }
    usleep 200000
done
""",
        expect="reset", timing="bound", standin_ok=False, fences=True,
        modules=(("scsi_debug", "dev_size_mb=16"), ("sd_mod", "")),
        block_devices=("vda", "sda"), stuck_after=120, evidence=r"offline|state", window=150,
        t0_marker=r"VMTEST: scsi-state offline",
        drivers=("i6300esb",),
        checks=('writable', 'block-io')),
    Scenario(
        "heartbeat-kill",
        "the fake heartbeat is SIGKILLed: the fence must SIGKILL the rest of the kill list "
        "(fakerm) and the VM resets",
        guest="""
start_petter
settle
mark "fault heartbeat-kill"
kill -KILL $(pid_of fakehb)
""",
        expect="reset", timing="bound", fences=True, standin_ok=False,
        checks=('process',)),
    Scenario(
        "heartbeat-stop",
        "the fake heartbeat is SIGSTOPped: the fence must SIGKILL the kill list (fakehb, fakerm) "
        "and the VM resets",
        guest="""
start_petter
settle
mark "fault heartbeat-stop"
kill -STOP $(pid_of fakehb)
""",
        expect="reset", timing="bound", fences=True, standin_ok=False,
        checks=('process',)),
    Scenario(
        "wdfeed-killed",
        "wdfeed is SIGKILLed: the kernel pings once on the unclean close, the reset follows "
        "one reset time later",
        guest="""
start_petter
settle
mark "fault wdfeed-killed"
kill -KILL $(pid_of wdfeed)
""",
        expect="reset", timing="reset-time", trio=True),
    Scenario(
        "clean-stop",
        "SIGTERM with on-exit: disarm: wdfeed writes the magic 'V' and exits 0, no reset for "
        "3 reset times",
        guest="""
start_petter
settle
mark "fault sigterm"
kill -TERM $(pid_of wdfeed)
""",
        expect="up", timing="stay-up", trio=True, exits_clean=True),
    Scenario(
        "clean-stop-keep-armed",
        "SIGTERM with on-exit: keep-armed: wdfeed exits without the magic 'V', the reset "
        "follows one reset time later",
        guest="""
start_petter
settle
mark "fault sigterm"
kill -TERM $(pid_of wdfeed)
""",
        expect="reset", timing="reset-time", on_exit="keep-armed", standin_ok=False),
    Scenario(
        "frozen-vm",
        "the whole QEMU process is SIGSTOPped for 2 reset times, then SIGCONT: the node must "
        "be reset (softdog fires on thaw by itself; elsewhere only wdfeed's freeze guard can)",
        guest="""
start_petter
settle
mark "ready-for-host-fault"
""",
        expect="reset", timing="bound", host_fault="freeze-vm"),
    Scenario(
        "device-busy",
        "another process (busybox watchdog) holds the device: wdfeed run must exit non-zero "
        "naming the holder's pid; the holder keeps the VM up",
        guest="""
watchdog -T $TIMEOUT -t 1 -F $WDDEV &
_holder=$!
sleep 1
mark "holder pid=$_holder"
mark "fault start-wdfeed-while-busy"
wdfeed run -c /etc/wdfeed/watchdog.yaml $WDFEED_ARGS 2>&1
mark "exited wdfeed rc=$?"
""",
        expect="up", timing="busy", standin_ok=False),
    Scenario(
        "keep-armed-restart",
        "on-exit: keep-armed, SIGTERM, and wdfeed is started again at once, as systemd's "
        "Restart= does: the new wdfeed must reopen the still-running device within the "
        "timeout, and the VM stays up for 3 reset times",
        guest="""
start_petter
settle
mark "fault sigterm-then-restart"
kill -TERM $(pid_of wdfeed)
wait_exited "exit on SIGTERM"
rm -f /run/wdfeed.pid /run/wdfeed.log
mark "restart wdfeed"
start_petter
""",
        expect="up", timing="stay-up", on_exit="keep-armed", standin_ok=False, restart=True,
        exits_clean=True, log_must=("left-armed",)),
    Scenario(
        "boot-takeover",
        "the watchdog runs from boot, before anything opened it: softdog loaded with "
        "soft_active_on_boot=1 (on 6.1 the kernel does not feed it, like a timer firmware "
        "started behind the driver's back), and iTCO_wdt as QEMU's firmware leaves it. wdfeed "
        "starts half a reset time after the driver loaded and must take the device over before "
        "the running timer fires; the VM then stays up for 3 reset times, and a SIGKILL of "
        "wdfeed resets it one reset time later (wdfeed, not the kernel, was feeding it)",
        guest="""
mark "note $(basename $WDDEV) state=$(cat /sys/class/watchdog/watchdog0/state 2>/dev/null) before anyone opened it"
sleep $((TIMEOUT / 2))
start_petter
sleep $UP_FOR
mark "fault wdfeed-killed after $UP_FOR s of feeding the device it took over"
kill -KILL $(pid_of wdfeed)
""",
        expect="reset", timing="reset-time", standin_ok=False, drivers=("softdog", "iTCO_wdt"),
        boot_running=True, driver_params=(("softdog", f"soft_active_on_boot=1 soft_margin={TIMEOUT_S}"),)),
    Scenario(
        "boot-unhealthy",
        "softdog runs from boot (soft_active_on_boot=1) and the node boots unhealthy (the "
        "heartbeat is dead before wdfeed starts): wdfeed waits for its checks and never "
        "opens the device, and the running timer resets the VM one reset time after the "
        "driver loaded. Times count from the driver's load (the modules-loaded marker)",
        guest="""
kill -KILL $(pid_of fakehb)
mark "fault boot-unhealthy (the heartbeat died before wdfeed started)"
( wdfeed run -c /etc/wdfeed/watchdog.yaml $WDFEED_ARGS 2>&1 & echo $! > /run/wdfeed.pid; wait $!
  echo "VMTEST: exited wdfeed rc=$? up=$(up)" ) 2>&1 | tee /run/wdfeed.log &
""",
        expect="reset", timing="from-load", standin_ok=False, drivers=("softdog",),
        checks=("process",), window=3 * TIMEOUT_S,
        driver_params=(("softdog", f"soft_active_on_boot=1 soft_margin={TIMEOUT_S}"),)),
    Scenario(
        "fenced-restart",
        "the checked filesystem goes read-only, wdfeed fences; then the filesystem is made "
        "writable again, wdfeed gets SIGTERM and a new wdfeed is started, as a careless "
        "`systemctl restart` would: the fenced wdfeed must not stop (nor anything pet "
        "again), and the reset comes within the bound",
        guest="""
start_petter
settle
mark "fault ro-remount, then recovery and a restart"
mount -o remount,ro /mnt/data 2>/dev/null || echo u > /proc/sysrq-trigger
wait_log "fencing check=" 30 || fail "wdfeed did not fence"
mount -o remount,rw /mnt/data && mark "note /mnt/data writable again"
kill -TERM $(pid_of wdfeed)
sleep 1
mark "note SIGTERM sent to the fenced wdfeed; starting another"
wdfeed run -c /etc/wdfeed/watchdog.yaml $WDFEED_ARGS > /run/second.log 2>&1
_rc=$?
sed 's/^/second: /' /run/second.log
mark "note the second wdfeed exited rc=$_rc"
""",
        expect="reset", timing="bound", standin_ok=False, fences=True,
        checks=("writable",), drivers=("softdog",),
        log_must=("not-stopping",)),
    Scenario(
        "fenced-killed-restart",
        "the fake heartbeat is SIGSTOPped and wdfeed fences (it SIGKILLs the kill list); the "
        "fenced wdfeed is SIGKILLed (SIGTERM would not stop it), the heartbeat is started "
        "again and a new wdfeed starts at once, as systemd's Restart= would: the fence record "
        "of this boot must keep it from arming (it says so), nothing pets, and the reset comes "
        "within the bound",
        guest="""
start_petter
settle
mark "fault heartbeat-stop, then SIGKILL of the fenced wdfeed, a new heartbeat and a restart"
kill -STOP $(pid_of fakehb)
wait_log "fencing check=" 30 || fail "wdfeed did not fence"
kill -KILL $(pid_of wdfeed)
rm -f /run/fakehb.pid
spawn fakehb /bin/fakehb
mark "note SIGKILLed the fenced wdfeed, heartbeat back; starting another wdfeed at once"
( wdfeed run -c /etc/wdfeed/watchdog.yaml $WDFEED_ARGS; echo "second wdfeed rc=$?" ) &
""",
        expect="reset", timing="bound", standin_ok=False, fences=True,
        checks=("process",), log_must=("fenced-earlier", "programmed")),
    Scenario(
        "stop-after-revoke",
        "the fake heartbeat is SIGSTOPped, and as soon as wdfeed logs the failed run (which "
        "has revoked its lease) it gets SIGTERM, most likely before the feeder's next tick "
        "(the feeder pets every 2 s here, the guest looks every 10 ms): wdfeed must not stop "
        "while a lease is not valid (it says so, unless the tick fenced first), fence, and "
        "the VM resets within the bound. A stop in that window used to disarm the sick node",
        guest="""
start_petter
settle
mark "fault heartbeat-stop, then SIGTERM right after the failed run"
kill -STOP $(pid_of fakehb)
_p=$(pid_of wdfeed)
_i=0
while ! grep -q "check failed" /run/wdfeed.log; do
    usleep 10000; _i=$((_i + 1)); [ $_i -ge 1000 ] && fail "the process check did not fail"
done
kill -TERM $_p
mark "note SIGTERM sent right after the failed run"
sleep 2
kill -TERM $_p 2>/dev/null && mark "note SIGTERM sent again, 2 s later"
""",
        expect="reset", timing="bound", standin_ok=False, fences=True,
        checks=("process",), drivers=("i6300esb",), interval=2,
        log_must=("not-stopping",)),
    Scenario(
        "rejoin-after-fence",
        "boot 1: the fake heartbeat is SIGSTOPped and wdfeed fences; the reset guest boots "
        "again on the same data disk, where wdfeed's state record (--state-dir) says the "
        "previous boot ended armed: in boot 2 wdfeed must arm and pet at once but hold READY=1 "
        "for the rejoin delay (by default the fence bound recorded in boot 1), and the VM "
        "stays up through it",
        guest=REJOIN_STATE + """
if [ "$BOOT" = 2 ]; then
    start_boot2
    wait_ready 120
else
    fence_on_stopped_heartbeat
fi
""",
        expect="reset", timing="bound", fences=True, standin_ok=False,
        checks=("process",), drivers=("i6300esb",), second_boot="rejoin-delay"),
    Scenario(
        "rejoin-restart-during-delay",
        "as rejoin-after-fence, but in boot 2 wdfeed is SIGKILLed 4 s into the rejoin delay "
        "and started again at once (systemd's Restart=): the delay's end, kept on tmpfs, must "
        "hold: READY=1 comes when the first start's delay ends, neither earlier nor a whole "
        "delay after the restart",
        guest=REJOIN_STATE + """
if [ "$BOOT" = 2 ]; then
    start_boot2
    wait_log "holding READY=1" 30 || fail "wdfeed did not hold READY=1"
    sleep 4
    kill -KILL $(pid_of wdfeed)
    wait_exited "die of SIGKILL"
    rm -f /run/wdfeed.pid /run/wdfeed.log
    mark "restarting wdfeed"
    start_petter
    wait_ready 120
else
    fence_on_stopped_heartbeat
fi
""",
        expect="reset", timing="bound", fences=True, standin_ok=False,
        checks=("process",), drivers=("i6300esb",), second_boot="rejoin-delay-restart"),
    Scenario(
        "rejoin-after-clean-stop",
        "boot 1: wdfeed is stopped cleanly (SIGTERM, disarm) and the guest reboots (sysrq b); "
        "in boot 2 of the same data disk the state record says the previous wdfeed stopped "
        "cleanly: READY=1 must come at once, with no rejoin delay",
        guest=REJOIN_STATE + """
if [ "$BOOT" = 2 ]; then
    start_boot2
    wait_ready 60
else
    start_petter
    settle
    kill -TERM $(pid_of wdfeed)
    wait_exited "exit on SIGTERM"
    sync
    mark "fault reboot after a clean stop"
    echo b > /proc/sysrq-trigger
fi
""",
        expect="reset", timing="reboot", standin_ok=False, drivers=("softdog",),
        checks=("writable",), second_boot="no-delay"),
    Scenario(
        "operator-fence",
        "every check passes and `wdfeed fence --reason` asks the running daemon to fence: it "
        "must fence through its prepared sequence with check=operator and the reason in the "
        "kernel log, SIGKILL the kill list, and the VM resets within the bound",
        guest="""
start_petter
settle
mark "fault operator-fence"
wdfeed fence --reason "vm test: demote of r0 failed"
mark "note wdfeed fence rc=$?"
""",
        expect="reset", timing="bound", fences=True, standin_ok=False,
        checks=("process",), drivers=("i6300esb",), evidence=r"check=operator",
        log_must=("operator-fence-kmsg",)),
    Scenario(
        "pause-heartbeat",
        "`wdfeed pause --for 15s`, then the fake heartbeat is SIGSTOPped: the process check "
        "fails run after run and nothing fences, the VM stays up for the pause; when the pause "
        "ends by itself wdfeed fences (it says the pause just ended, SIGKILLs the kill list) "
        "and the VM resets within the bound of the pause's end",
        guest="""
start_petter
settle
mark "pausing"
wdfeed pause --for ${PAUSE_S}s --reason "vm test: heartbeat upgrade" || fail "wdfeed pause failed"
mark "fault heartbeat-stop during a ${PAUSE_S} s pause"
kill -STOP $(pid_of fakehb)
""",
        expect="reset", timing="pause", fences=True, standin_ok=False,
        checks=("process",), drivers=("i6300esb",), pause=15, window=15 + 35,
        log_must=("pause-ended-fencing",)),
    Scenario(
        "rejoin-budget",
        "three boots in a row on the same data disk each fence on a stopped heartbeat (boots 2 "
        "and 3 after a rejoin delay's arming); the fourth finds the fence budget (3 in 1h, the "
        "default) spent: wdfeed arms and pets but holds READY=1, saying why with the times of "
        "the fences, the VM stays up for 3 reset times with READY=1 held, and `wdfeed "
        "rejoin-now` releases it",
        guest=REJOIN_STATE + """
if [ "$BOOT" -ge 4 ]; then
    start_boot2
    wait_log "READY=1 is held until" 60 || fail "wdfeed did not hold READY=1"
    mark "held"
    sleep $UP_FOR
    grep -q "READY=1 sent" /run/wdfeed.log && fail "READY=1 went while held"
    mark "rejoin-now"
    wdfeed rejoin-now
    wait_ready 20
else
    [ "$BOOT" -gt 1 ] && mark "note boot $BOOT of the same disk; state record: $(tr '\\n' ' ' < $STATE/state 2>/dev/null)"
    fence_on_stopped_heartbeat
fi
""",
        expect="reset", timing="bound", fences=True, standin_ok=False,
        checks=("process",), drivers=("i6300esb",), second_boot="budget-hold", boots=4),
    Scenario(
        "record-other-boot",
        "the runtime directory holds a fence record that says fenced, of another boot (as a "
        "runtime directory kept across a reboot would): wdfeed must say it ignores it, arm, "
        "and keep the VM up for 3 reset times",
        guest="""
mkdir -p /run/wdfeed
printf 'wdfeed fence record 1\\nboot 00000000-0000-4000-8000-000000000000\\nstate fenced\\nat 12.000 1700000000\\nreason writable /mnt/data: read-only\\n' > /run/wdfeed/fence
mark "note planted: $(tr '\\n' ' ' < /run/wdfeed/fence)"
start_petter
settle
mark "fault none (a fenced record of another boot was in place)"
sleep $UP_FOR
""",
        expect="up", timing="stay-up", standin_ok=False, drivers=("softdog",),
        checks=("writable",), log_must=("record-other-boot",)),
]}

# The crash-dump scenarios: a crash kernel reserved on the command line and loaded with
# Debian's kexec-tools; its dump kernel (dump.py) saves the dump on the data disk or hangs.
CRASHKERNEL = "crashkernel=112M"
CRASH_SETUP = REJOIN_STATE + """
# -i (--no-checks): purgatory skips its sha256 of the loaded kernel and initramfs, which
# takes 6 to 9 s under TCG and milliseconds on hardware (kdump-tools does not pass it).
# Purgatory says "I'm in purgatory" on the serial port, and the dump kernel logs its boot
# (earlyprintk, no quiet): the serial log shows where the time after the crash goes.
load_crash_kernel() {
    kexec -p -i --console-serial --serial=0x3f8 --serial-baud=115200 /boot/vmlinuz --initrd=/boot/dump-initrd.cpio \
        --append="console=ttyS0 earlyprintk=serial,ttyS0,115200 rdinit=/init irqpoll nr_cpus=1 reset_devices panic=0 wdfeed_dump=$DUMP" \
        || fail "kexec -p failed"
    mark "crash-kernel-loaded kexec_crash_loaded=$(cat /sys/kernel/kexec_crash_loaded)"
}
"""
CRASHDUMP_TIMEOUT_S = 40

SCENARIOS.update({s.name: s for s in [
    Scenario(
        "crashdump-saved",
        "fence.mode crashdump with a crash kernel loaded: the fake heartbeat is SIGSTOPped, "
        "wdfeed fences, sets the device to the crashdump timeout, pets once and crashes "
        "(sysrq c); the dump kernel saves the dump with makedumpfile on the data disk and "
        "reboots, within the bound wdfeed printed. The host takes the dump out of the disk "
        "image: an ELF core of the guest's kernel holding the fence's kernel log line. Boot 2 "
        "of the same disk names the cause: fenced (crashdump), and where the dump is",
        guest=CRASH_SETUP + """
if [ "$BOOT" = 2 ]; then
    load_crash_kernel
    start_boot2
    wait_log "the previous boot was fenced (crashdump)" 30 || fail "boot 2 did not name the dump"
    sleep 3
    wdfeed status 2>&1 | sed 's/^/status: /'
    mark "boot2-done"
else
    load_crash_kernel
    fence_on_stopped_heartbeat
fi
""",
        expect="reset", timing="bound", standin_ok=False,
        checks=("process",), drivers=("i6300esb",), fence_mode="crashdump",
        crashdump_timeout=CRASHDUMP_TIMEOUT_S, dump="save", append=CRASHKERNEL,
        second_boot="dump-named"),
    Scenario(
        "crashdump-hang",
        "as crashdump-saved, but the dump kernel hangs: the hardware watchdog, still armed "
        "with the crashdump timeout wdfeed set, must reset it that long after the fence's "
        "pet, within the bound",
        guest=CRASH_SETUP + """
load_crash_kernel
fence_on_stopped_heartbeat
""",
        expect="reset", timing="bound", standin_ok=False,
        checks=("process",), drivers=("i6300esb",), fence_mode="crashdump",
        crashdump_timeout=12, dump="hang", append=CRASHKERNEL),
    Scenario(
        "crashdump-timeout-refused",
        "fence.mode crashdump with a crash kernel loaded and crashdump-timeout 3000s, over "
        "i6300esb's maximum of 2046 s (the config is valid: the limit is the driver's): "
        "wdfeed run must set it at arming, read the refusal, exit 3 naming the driver's "
        "max_timeout with nothing armed; the VM then stays up for 3 reset times",
        guest=CRASH_SETUP + """
load_crash_kernel
wdfeed run -c /etc/wdfeed/watchdog.yaml $WDFEED_ARGS > /run/refused.log 2>&1
_rc=$?
cat /run/refused.log
[ "$_rc" = 3 ] || fail "wdfeed run exited rc=$_rc, not 3 (a device problem)"
mark "fault none (wdfeed refused to start, rc=$_rc)"
sleep $UP_FOR
""",
        expect="up", timing="stay-up", standin_ok=False,
        checks=("process",), drivers=("i6300esb",), fence_mode="crashdump",
        crashdump_timeout=3000, dump="hang", append=CRASHKERNEL,
        log_must=("crashdump-refused",)),
    Scenario(
        "pretimeout-panic",
        "ipmi_watchdog with a pretimeout and preop=preop_panic (timeout 30 s, pretimeout "
        "25 s) and a crash kernel loaded: wdfeed itself is SIGSTOPped (a wedged wdfeed: "
        "nothing fences), the BMC's pretimeout panics the kernel 5 s after the last pet, the "
        "dump kernel saves the dump within the 25 s left, and the node is reset within the "
        "bound wdfeed printed (a pretimeout does not change B)",
        guest=CRASH_SETUP + """
load_crash_kernel
start_petter
settle
mark "fault wdfeed-stopped"
kill -STOP $(pid_of wdfeed)
""",
        expect="reset", timing="bound", standin_ok=False,
        checks=("process",), drivers=("ipmi_watchdog",), dump="save", append=CRASHKERNEL,
        device_timeout=30, pretimeout=25,
        driver_params=(("ipmi_watchdog",
                        "timeout=30 pretimeout=25 preaction=pre_int preop=preop_panic action=reset"),)),
]})


CHECK_KINDS = ("writable", "block-io", "process")

# wdfeed's own words on the serial console, the one place the suite spells them: the harness
# and the scenarios (log_must) name them. Each is a regex; groups capture what is measured.
WDFEED_SAYS = {
    # the fence's log line (not its advice on the peer's "fencing delay")
    "fencing": r"fencing check=.*",
    "fence-kmsg": r"wdfeed: FENCE.*",
    "bound": r"fence_bound_s=([0-9.]+)",
    "bound-table": r"fence bound: ([0-9.]+) s",
    "armed": r"fence_bound_s=",
    "check-failed": r"check failed",
    "not-arming": r"not arming.*",
    "lateness": r"feeder wake-up lateness.*",
    "took-over": r"already running before wdfeed opened it",
    "state-before": r"state=(\S+) before anyone opened it",
    "held-by": r"held by pid",
    "left-armed": r"left armed \(on-exit: keep-armed\)",
    "not-stopping": r"fenced: not stopping",
    "not-stopping-unhealthy": r"not stopping: check .* holds no valid lease",
    # GETSUPPORT's option bits and what a close without the magic 'V' does, at arming
    "programmed": r"identity=.*options=\S+ stays_armed_on_close=\S+",
    "fenced-earlier": r"fenced earlier in this boot at .*waiting for the reset",
    "record-other-boot": r"fence record \S+ is of another boot",
    # the rejoin delay: READY=1 (with the delay it waited for), the start-up decision
    "ready": r"READY=1 sent(: the rejoin delay is over)?",
    "ready-delay": r"rejoin_delay_s=([0-9.]+)",
    "rejoin-armed-before": r"the previous boot (ended with a device armed and no clean stop|was fenced)",
    "rejoin-clean-before": r"the previous boot's wdfeed stopped cleanly",
    "rejoin-holding": r"holding READY=1 for the rejoin delay",
    "rejoin-restarted": r"restarted during the rejoin delay of this boot",
    "rejoin-cause": r"previous boot: .*|the kernel names no cause.*",
    # fence.mode crashdump: a device that does not take crashdump-timeout at arming
    "crashdump-refused": r"cannot set the crashdump-timeout of watchdog /dev/watchdog0: .*the driver refuses 50m \(sysfs says its max_timeout is 2046s\).*nothing was armed",
    # operator requests: the fence's kernel log line, a pause's end that fences, the hold
    "operator-fence-kmsg": r"wdfeed: FENCE check=operator evidence=vm test: demote of r0 failed \(wdfeed fence, uid 0, pid \d+\)",
    "pause-ended-fencing": r"maintenance pause ended: its time ran out, and a check still holds no valid lease",
    "pause-fence-note": r"a maintenance pause ended ([0-9.]+) s before",
    "budget-held": r"fence budget spent: (\d+) boots in a row ended armed within \S+ .*READY=1 is held until",
    "rejoin-hold-released": r"READY=1 is no longer held, on the operator's word",
}


def config_yaml(driver, scenario):
    """The watchdog.yaml of a case: the scenario's checks, on the data disk."""
    probe = f"    probe: {'true' if scenario.probe else 'false'}\n"
    blocks = {
        "writable": f"""\
  - kind: writable
    mounts: [/mnt/data]
{probe}    every: {EVERY_S}s
    deadline: {DEADLINE_S}s
""",
        "block-io": f"""\
  - kind: block-io
    devices: [{", ".join(scenario.block_devices)}]
    stuck-after: {scenario.stuck_after}s
    every: {EVERY_S}s
    deadline: {DEADLINE_S}s
""",
        "process": f"""\
  - kind: process
    name: fakehb
    max-uninterruptible: {MAX_D_S}s
    every: {EVERY_S}s
    deadline: {DEADLINE_S}s
""",
    }
    pretimeout = f"    pretimeout: {scenario.pretimeout}s\n" if scenario.pretimeout else ""
    crashdump = (f"  crashdump-timeout: {scenario.crashdump_timeout}s\n"
                 f"  crashdump-dir: /mnt/data/crash\n" if scenario.fence_mode == "crashdump" else "")
    return f"""\
devices:
  - path: {driver.wddev}
    timeout: {scenario.device_timeout or driver.timeout}s
{pretimeout}interval: {scenario.interval}s
on-exit: {scenario.on_exit}
fence:
  mode: {scenario.fence_mode}
  kill: [fakehb, fakerm]
  stall-threshold: {STALL_S}s
{crashdump}metrics:
  textfile: /run/wdfeed.prom
checks:
{"".join(blocks[k] for k in CHECK_KINDS if k in scenario.checks)}"""


def standin_bound(driver):
    """With busybox's watchdog (no checks) the only bound is the hardware's reset time."""
    return driver.reset_after_last_pet()


def slack(bound):
    """Allowance added to every time limit because the guest runs under TCG on a shared
    2-core host (see docs/VM-SUITE.md): a fixed part for the host-side observation and the
    guest's slow scheduling of the check and fence threads, and a part proportional to the
    bound for timer drift and vCPU starvation while the other VM or a build runs."""
    return 1.0 + 0.1 * bound


def fake_process_script():
    return "#!/bin/sh\nwhile :; do sleep 1; done\n"


def selected(args):
    """Cases for the command-line words (drivers or scenarios; none: everything)."""
    drivers = [a for a in args if a in DRIVERS]
    scens = [a for a in args if a in SCENARIOS]
    unknown = [a for a in args if a not in DRIVERS and a not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown driver or scenario {unknown}; drivers: {list(DRIVERS)}; "
                         f"scenarios: {list(SCENARIOS)}")
    cases = []
    for s in (scens or list(SCENARIOS)):
        for d in (drivers or list(DRIVERS)):
            sc = SCENARIOS[s]
            if sc.drivers and d not in sc.drivers:
                continue
            cases.append((DRIVERS[d], sc))
    return cases


def up_for(driver):
    """How long a VM that must stay up is watched: 3 reset times, in whole seconds."""
    return math.ceil(3 * driver.reset_after_last_pet())


def wait_window(driver, scenario, bound):
    """How long after the fault the host watches for the outcome."""
    r = driver.reset_after_last_pet()
    if scenario.window:
        return scenario.window
    if scenario.timing == "stay-up":
        return up_for(driver) + 1
    if scenario.timing == "busy":
        return r + 1          # after wdfeed exited: the holder keeps the VM up
    if scenario.timing == "reset-time":
        return r + slack(bound) + 5
    if scenario.timing == "reboot":
        return 15
    return bound + slack(bound) + 5

