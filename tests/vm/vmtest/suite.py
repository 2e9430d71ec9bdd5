"""Runs cases: builds each guest, boots it, injects the fault, watches the outcome, and
judges it against the fence bound the guest's wdfeed printed."""

import argparse
import concurrent.futures
import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from . import assets, cases, dump, second_boot, systemd_cases, systemd_guest
from .qemu import Guest

BOOT_TIMEOUT_S = 180      # boot, modules, mount and arming, on a loaded TCG host
ARM_TIMEOUT_S = 60        # inside the guest: from starting wdfeed to its "armed" line
APPEND = "console=ttyS0 panic=0 quiet rdinit=/init"
# Serial lines are stamped by the host as they arrive; two written a few ms apart in the guest
# can arrive with their gap shortened by the console's buffering.
ARRIVAL_JITTER_S = 0.25
SAYS = cases.WDFEED_SAYS
BASE_MODULE_SET = [m for m, _ in cases.BASE_MODULES] + [
    m for d in cases.DRIVERS.values() for m, _ in d.modules] + [
    m for s in cases.SCENARIOS.values() for m, _ in s.modules]


@dataclass
class Result:
    driver: str
    scenario: str
    ok: bool = False
    skipped: str = ""      # why the case means nothing with this petter
    outcome: str = "none"
    after: float = float("nan")
    bound: float = float("nan")
    reason: str = ""
    notes: list = field(default_factory=list)
    tail: list = field(default_factory=list)
    wall: float = 0.0

    def line(self):
        if self.skipped:
            return f"SKIP {self.driver} {self.scenario} {self.skipped}"
        return (f"{'PASS' if self.ok else 'FAIL'} {self.driver} {self.scenario} "
                f"outcome={self.outcome} after={self.after:.2f} bound={self.bound:.2f}")


class Context:
    def __init__(self, petter, outdir):
        self.petter = petter
        self.outdir = outdir
        self.vmlinuz = None
        self.moddir = None
        self.base = None
        self.mods = None
        self.wdfeed = None
        self.prebuilt = None
        self.systemd_selected = False
        self.systemd_root = None
        self.systemd_initramfs = None


def prepare(ctx):
    assets.ensure_host_packages()
    ctx.vmlinuz, ctx.moddir = assets.ensure_kernel()
    binaries = {}
    if ctx.petter == "wdfeed" and ctx.prebuilt:
        ctx.wdfeed = ctx.prebuilt
        binaries["wdfeed"] = ctx.wdfeed
    elif ctx.petter == "wdfeed":
        ctx.wdfeed = assets.build_release("wdfeed")
        binaries["wdfeed"] = ctx.wdfeed
    guest_dir = os.path.join(assets.VMDIR, "guest")
    init_path = os.path.join(guest_dir, "init")
    digest = assets.file_digest([shutil.which("busybox"), init_path, ctx.vmlinuz] + list(binaries.values()))
    digest += "-" + hashlib.sha256(" ".join(sorted(BASE_MODULE_SET)).encode()).hexdigest()[:8]
    ctx.base = os.path.join(assets.CACHE, f"initramfs-{ctx.petter}-{digest}.cpio")
    with open(init_path) as f:
        init = f.read()
    fake = cases.fake_process_script()
    guest_files = {"init": (init, 0o755), "bin/fakehb": (fake, 0o755), "bin/fakerm": (fake, 0o755)}
    if not os.path.exists(ctx.base):
        for old in os.listdir(assets.CACHE):
            if old.startswith(f"initramfs-{ctx.petter}-"):
                os.unlink(os.path.join(assets.CACHE, old))
        assets.log("building the base initramfs")
        assets.build_base_initramfs(ctx.base, ctx.moddir, BASE_MODULE_SET, binaries, guest_files)
    ctx.mods = assets.Modules(ctx.moddir)
    if ctx.petter == "wdfeed" and ctx.systemd_selected:
        systemd_guest.prepare(ctx)


def validate(ctx, text, name):
    """`wdfeed validate` of a config on the host: (rc, output)."""
    path = os.path.join(ctx.outdir, name)
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run([ctx.wdfeed, "validate", path], capture_output=True, text=True)
    return r.returncode, (r.stdout + r.stderr).strip()


def case_archive(ctx, driver, scen, config, path, extra_env=None):
    cpio = assets.Cpio()
    wanted = cases.BASE_MODULES + driver.modules + list(scen.modules)
    mods = [(m, "") for m in ctx.mods.closure([m for m, _ in wanted])]
    params = dict(wanted)
    params.update((d, p) for d, p in scen.driver_params if d == driver.name)
    cpio.file("case.modules", "".join(f"{m} {params.get(m, '')}\n" for m, _ in mods))
    env = {
        "DRIVER": driver.name, "WDDEV": driver.wddev, "TIMEOUT": driver.timeout, "DISK": "vda",
        "PETTER": ctx.petter, "STANDIN_BOUND": f"{cases.standin_bound(driver):.1f}",
        "ARM_TIMEOUT": ARM_TIMEOUT_S, "SETTLE": cases.SETTLE_S, "WDFEED_ARGS": "",
        "UP_FOR": cases.up_for(driver), "BOOT": 1, "PAUSE_S": scen.pause,
    }
    if scen.dump:
        env["DUMP"] = scen.dump
    env.update(extra_env or {})
    cpio.file("case.env", "".join(f"{k}='{v}'\n" for k, v in env.items()))
    if scen.dump:
        for guest_path, host_path in dump.guest_files(ctx):
            cpio.copy(guest_path, host_path)
    cpio.file("case.sh", scen.guest)
    cpio.file("etc/wdfeed/watchdog.yaml", config)
    with open(path, "wb") as f:
        f.write(cpio.finish())


def run_case(ctx, driver, scen):
    res = Result(driver.name, scen.name)
    t_case = time.monotonic()
    workdir = os.path.join(ctx.outdir, f"{driver.name}-{scen.name}")
    os.makedirs(workdir, exist_ok=True)
    if ctx.petter == "standin" and not scen.standin_ok:
        res.skipped = "not meaningful with the busybox stand-in (it runs no checks)"
        return res
    config = cases.config_yaml(driver, scen)
    if ctx.wdfeed:
        rc, out = validate(ctx, config, f"{driver.name}-{scen.name}.yaml")
        if rc != 0:
            res.reason = f"wdfeed validate rejects the case's config (rc={rc}):\n{out}"
            return res
    disk = os.path.join(workdir, "data.img")
    assets.make_ext4(disk, scen.disk_mb)
    case_cpio = os.path.join(workdir, "case.cpio")
    case_archive(ctx, driver, scen, config, case_cpio)
    guest = Guest(workdir, driver.machine, ctx.vmlinuz, [ctx.base, case_cpio],
                  " ".join(filter(None, [APPEND, scen.append])),
                  disk=None if scen.nbd else disk, nbd_image=disk if scen.nbd else None,
                  trace=driver.trace)
    try:
        guest.start()
        drive(ctx, guest, driver, scen, res)
        if scen.second_boot and res.ok:
            guest.stop()
            second_boot.run(ctx, driver, scen, res, disk, workdir,
                            lambda path, env: case_archive(ctx, driver, scen, config, path, env),
                            " ".join(filter(None, [APPEND, scen.append])))
    except Exception as e:  # a harness error is a failed case, with its cause
        res.ok = False
        res.reason = f"harness error: {type(e).__name__}: {e}"
    finally:
        if res.outcome == "none":
            # stopped short of a verdict: still say what state the VM was in
            end = guest.wait_outcome(0)
            res.outcome = end[1] if end else "up"
        guest.stop()
        res.tail = guest.tail(60) + res.tail
        err = "\n".join(ln for ln in guest.qemu_stderr().splitlines()
                        if "terminating on signal" not in ln)
        if err:
            res.notes.append(f"qemu stderr: {err[-500:]}")
        res.wall = time.monotonic() - t_case
        if res.ok:
            # the logs stay; the disk image and the initrd copy only matter for a FAIL
            for big in (disk, os.path.join(workdir, "initrd.cpio")):
                if os.path.exists(big):
                    os.unlink(big)
    return res


def drive(ctx, guest, driver, scen, res):
    r_hw = driver.reset_after_last_pet()
    first = guest.wait_line(r"VMTEST: (armed|error|holder|fault)", BOOT_TIMEOUT_S)
    if first is None:
        res.reason = (f"guest never armed within {BOOT_TIMEOUT_S}s"
                      + (f" (qemu exited: {guest.qemu_stderr()[-300:]})" if guest.exited_at else ""))
        return
    if first[1].group(1) == "error":
        res.reason = "guest set-up failed: " + first[1].string.split("VMTEST: error", 1)[1].strip()
        return
    res.bound = guest_bound(guest)
    if res.bound != res.bound:  # NaN: wdfeed printed no bound
        res.reason = "wdfeed printed no fence bound (no fence_bound_s= nor 'fence bound:' line)"
        return
    bound = res.bound
    res.notes.append(f"reset time of {driver.name} after the last pet: R={r_hw:.1f}s; "
                     f"slack={cases.slack(bound):.2f}s")

    # the fault: injected by the guest (it prints "fault" just before) or by the host
    if scen.host_fault:
        ready = guest.wait_line(r"VMTEST: (ready-for-host-fault|error)", 60)
        if ready is None or ready[1].group(1) == "error":
            res.reason = "guest never got ready for the host fault" + ended_early(guest, res)
            return
        if scen.host_fault == "stop-nbd":
            t0 = guest.sigstop("nbd")
            res.notes.append("qemu-nbd SIGSTOPped")
        else:
            freeze = 2 * r_hw
            guest.sigstop("qemu")
            time.sleep(freeze)
            t0 = guest.sigcont("qemu")
            res.notes.append(f"QEMU SIGSTOPped for {freeze:.1f}s; times count from SIGCONT")
    else:
        fault = guest.wait_line(r"VMTEST: (fault|error)", 60)
        if fault is None or fault[1].group(1) == "error":
            res.reason = "guest never injected the fault" + ended_early(guest, res)
            return
        t0 = fault[0]

    if scen.timing == "busy":
        guest.wait_line(r"VMTEST: exited wdfeed", 30)
    window = cases.wait_window(driver, scen, bound)
    end = guest.wait_outcome(window)
    if scen.t0_marker:
        marker = guest.first_line(scen.t0_marker, after=t0)
        if marker is None:
            res.reason = f"the guest never printed /{scen.t0_marker}/ (times count from it)"
            res.outcome = end[1] if end else "up"
            return
        res.notes.append(f"{marker[1].group(0)} came {marker[0] - t0:.2f}s after the fault; "
                         "times count from it")
        t0 = marker[0]
    if end is None:
        res.outcome = "up"
        res.after = time.monotonic() - t0
    else:
        res.outcome = end[1]
        res.after = end[0] - t0
        res.notes.append(f"ended by {end[2]}")
    note_daemon_lines(guest, t0, res)
    judge(guest, driver, scen, res, t0, r_hw)
    if driver.trace:
        judge_pets(guest, scen, res, t0, end[0] if end else time.monotonic())


def judge_pets(guest, scen, res, t0, t_end):
    """Where QEMU shows every pet (iTCO's timer reloads), the feeder's rhythm around the
    fault: it must go on petting every interval until the fence, whatever the checks do
    (the fence may come before the next pet was due)."""
    with guest.cond:
        pets = list(guest.pets)
    before = [t for t in pets if t < t0]
    after = [t for t in pets if t0 <= t <= t_end]
    if not before:
        return
    seq = [before[-1]] + after
    gaps = [b - a for a, b in zip(seq, seq[1:])]
    worst = max(gaps) if gaps else float("inf")
    if after:
        res.notes.append(f"pets seen by QEMU after the fault: {len(after)}, largest gap {worst:.2f}s, "
                         f"last at +{after[-1] - t0:.2f}s; the end came {t_end - after[-1]:.2f}s after it")
    else:
        res.notes.append(f"no pet seen by QEMU after the fault; the last came {t0 - before[-1]:.2f}s "
                         f"before it")
    if scen.fences and res.ok:
        # On time up to the fence: a failed run revokes its lease, so the fence may come
        # before the next pet was due; from the last pet to the fence is one more gap.
        limit = scen.interval + cases.slack(res.bound)
        fencing = guest.first_line(SAYS["fencing"], after=t0)
        t_fence = fencing[0] if fencing else t_end
        upto = [t for t in seq if t <= t_fence]
        gaps = [b - a for a, b in zip(upto, upto[1:])] + [t_fence - upto[-1]]
        worst = max(gaps)
        if worst > limit:
            res.ok = False
            res.reason = (f"the feeder did not keep petting until the fence "
                          f"({len(upto) - 1} pets after the fault, largest gap {worst:.2f}s "
                          f"> {limit:.2f}s)")


def ended_early(guest, res):
    """Why the guest is gone before its fault (a false fence, a panic), for the reason."""
    end = guest.wait_outcome(0)
    if end is None:
        return ""
    res.outcome = end[1]
    return f": the VM ended before it ({end[2]})"


def guest_bound(guest):
    m = guest.first_line(SAYS["bound"])
    if m is None:
        m = guest.first_line(SAYS["bound-table"])
    return float(m[1].group(1)) if m else float("nan")


def note_daemon_lines(guest, t0, res):
    programmed = guest.first_line(SAYS["programmed"])
    if programmed:
        res.notes.append(f"device: {programmed[1].group(0)[:200]}")
    fencing = guest.first_line(SAYS["fencing"], after=t0)
    if fencing:
        res.notes.append(f"wdfeed fenced {fencing[0] - t0:.2f}s after the fault: {fencing[1].group(0)[:200]}")
    refused = guest.first_line(SAYS["not-stopping-unhealthy"], after=t0)
    if refused:
        res.notes.append(f"stop refused {refused[0] - t0:.2f}s after the fault: {refused[1].group(0)[:160]}")
    soft = guest.first_line(r"softdog: Initiating system (reboot|poweroff)", after=t0)
    if soft:
        res.notes.append(f"softdog fired {soft[0] - t0:.2f}s after the fault")
    kmsg = guest.first_line(SAYS["fence-kmsg"], after=t0)
    if kmsg:
        res.notes.append(f"kernel log: {kmsg[1].group(0)[:160]}")
    failed = guest.matching(SAYS["check-failed"], after=t0)
    if failed and not fencing:
        res.notes.append(f"{len(failed)} 'check failed' lines without a fence, the first: "
                         + failed[0][1].string.strip()[:200])
    if guest.exited_at is None:
        guest.wait_line(SAYS["lateness"], 3 if res.outcome == "up" else 0)
    late = guest.first_line(SAYS["lateness"], after=t0)
    if late:
        res.notes.append(late[1].group(0))


def res_last_load(guest):
    with guest.cond:
        times = [t for t, text in guest.lines if "VMTEST: load " in text]
    return times[-1] if times else float("inf")


def judge(guest, driver, scen, res, t0, r_hw):
    """The verdict on a case, from the scenario's fields alone: what wdfeed must have said,
    then the outcome and its timing, then what the fence must have done."""
    for name in scen.log_must:
        seen = guest.first_line(SAYS[name])
        if seen is None:
            res.reason = f"no serial line matches /{SAYS[name]}/ ({name})"
            return
        res.notes.append(f"seen: {seen[1].string.strip()[:200]}")
    steps = UP_STEPS if scen.expect == "up" else RESET_STEPS
    for applies, step in steps:
        if applies(scen) and not step(guest, driver, scen, res, t0, r_hw):
            return
    res.ok = True


def judge_stayed_up(guest, driver, scen, res, t0, r_hw):
    if res.outcome != "up":
        res.reason = f"expected the VM to stay up, got {res.outcome} {res.after:.2f}s after the fault"
        return False
    if scen.timing == "stay-up" and res.after < cases.up_for(driver):
        res.reason = f"observed only {res.after:.2f}s"
        return False
    return True


def exited(guest, t0):
    """wdfeed's first exit after the fault: (host time, match) or None."""
    return guest.first_line(r"VMTEST: exited wdfeed rc=(\d+)", after=t0)


def judge_exit_clean(guest, driver, scen, res, t0, r_hw):
    ex = exited(guest, t0)
    if ex is None or ex[1].group(1) != "0":
        res.reason = f"wdfeed did not exit 0 on SIGTERM ({ex[1].group(0) if ex else 'still running'})"
        return False
    return True


def judge_refused_busy(guest, driver, scen, res, t0, r_hw):
    """busy-device: wdfeed run must fail, naming the process that holds the device."""
    holder = guest.first_line(r"VMTEST: holder pid=(\d+)")
    ex = exited(guest, t0)
    if ex is None:
        res.reason = "wdfeed run did not exit while another process held the device"
        return False
    if ex[1].group(1) == "0":
        res.reason = "wdfeed run exited 0 while another process held the device"
        return False
    want = SAYS["held-by"] + (f" {holder[1].group(1)}" if holder else "")
    named = guest.first_line(want, after=t0)
    if named is None:
        res.reason = f"wdfeed's error does not say '{want}'"
        return False
    res.after = ex[0] - t0
    res.notes.append(f"wdfeed exited rc={ex[1].group(1)}: {named[1].string.strip()[:200]}")
    return True


def note_last_load(guest, driver, scen, res, t0, r_hw):
    load = guest.first_line(r"VMTEST: load .*", after=res_last_load(guest))
    if load:
        res.notes.append("last load sample: " + load[1].group(0)[len("VMTEST: load "):])
    return True


def judge_was_reset(guest, driver, scen, res, t0, r_hw):
    if res.outcome != "reset":
        res.reason = f"expected a reset, got {res.outcome}"
        return False
    return True


def judge_paused(guest, driver, scen, res, t0, r_hw):
    """A maintenance pause over the fault: the VM stayed up for the pause (no fence before
    its end) and was reset within the bound of its end. The pause began at most the gap
    between the guest's `pausing` and `fault` markers before the fault."""
    pausing = guest.first_line(r"VMTEST: pausing")
    lead = t0 - pausing[0] if pausing else 0.0
    end_earliest = t0 - lead + scen.pause
    bound, sl = res.bound, cases.slack(res.bound)
    fencing = guest.first_line(SAYS["fencing"], after=t0)
    failed = guest.matching(SAYS["check-failed"], after=t0)
    res.notes.append(f"pause of {scen.pause}s asked {lead:.2f}s before the fault; {len(failed)} "
                     f"'check failed' lines; reset {res.after:.2f}s after the fault")
    if fencing is None:
        res.reason = "wdfeed never fenced after the pause"
        return False
    if fencing[0] < end_earliest - ARRIVAL_JITTER_S:
        res.reason = (f"wdfeed fenced {fencing[0] - t0:.2f}s after the fault, inside the "
                      f"{scen.pause}s pause")
        return False
    if not failed or failed[0][0] > end_earliest:
        res.reason = "the process check never failed during the pause: the pause hid nothing"
        return False
    note = guest.first_line(SAYS["pause-fence-note"], after=t0)
    if note is None:
        res.reason = "the fence after the pause does not say the pause had just ended"
        return False
    res.notes.append(f"fenced {fencing[0] - end_earliest:.2f}s after the pause's end "
                     f"({note[1].group(0)})")
    if res.after < scen.pause - lead - ARRIVAL_JITTER_S:
        res.reason = f"the VM was reset {res.after:.2f}s after the fault, inside the pause"
        return False
    if res.after > scen.pause + bound + sl:
        res.reason = (f"reset {res.after:.2f}s after the fault > pause {scen.pause}s + bound "
                      f"{bound:.2f}s + slack {sl:.2f}s")
        return False
    res.notes.append(f"reset {res.after - (scen.pause - lead):.2f}s after the pause's end "
                     f"(bound {bound:.2f}s)")
    return True


def judge_within_bound(guest, driver, scen, res, t0, r_hw):
    bound, sl = res.bound, cases.slack(res.bound)
    if res.after > bound + sl:
        res.reason = f"reset after {res.after:.2f}s > bound {bound:.2f}s + slack {sl:.2f}s"
        return False
    return True


def judge_reset_time(guest, driver, scen, res, t0, r_hw):
    sl = cases.slack(res.bound)
    if abs(res.after - r_hw) > sl:
        res.reason = (f"reset after {res.after:.2f}s, expected {r_hw:.2f}s +- {sl:.2f}s "
                      f"(one reset time after the petting stopped)")
        return False
    return True


def judge_fenced(guest, driver, scen, res, t0, r_hw):
    """wdfeed logged its fence, SIGKILLed the kill list before the reset, with the
    scenario's evidence."""
    t_end = t0 + res.after
    fencing = guest.first_line(SAYS["fencing"], after=t0)
    if fencing is None or fencing[0] > t_end:
        res.reason = "wdfeed never logged 'fencing': the reset came from elsewhere"
        return False
    for name in ("fakehb", "fakerm"):
        killed = guest.first_line(rf"VMTEST: exited {name} rc=(\d+)", after=t0)
        if killed is None or killed[1].group(1) != "137" or killed[0] > t_end:
            res.reason = f"{name} (fence.kill) was not SIGKILLed before the reset"
            return False
        res.notes.append(f"{name} SIGKILLed {killed[0] - t0:.2f}s after the fault")
    if scen.evidence and not re.search(scen.evidence, fencing[1].string):
        res.reason = f"the fence's evidence does not match /{scen.evidence}/: {fencing[1].string.strip()}"
        return False
    return True


def note_scsi_states(guest, driver, scen, res, t0, r_hw):
    for t, m in guest.matching(r"VMTEST: scsi-state (\S+)", after=t0):
        res.notes.append(f"SCSI device state {m.group(1)} at +{t - t0:.2f}s"
                         + (f", {t0 + res.after - t:.2f}s before the reset" if res.outcome == "reset" else ""))
    return True


def note_who_acted(guest, driver, scen, res, t0, r_hw):
    fencing = guest.first_line(SAYS["fencing"], after=t0)
    soft = guest.first_line(r"softdog: Initiating", after=t0)
    acted = [(t, who) for t, who in [(fencing[0] if fencing else None, "wdfeed"),
                                     (soft[0] if soft else None, "softdog")] if t is not None]
    res.notes.append("acted: " + (", ".join(f"{who} at +{t - t0:.2f}s" for t, who in sorted(acted))
                                  or "hardware only (no fence line)"))
    return True


def judge_restart_step(guest, driver, scen, res, t0, r_hw):
    return judge_restart(guest, driver, res, t0, exited(guest, t0)[0])


def judge_from_load_step(guest, driver, scen, res, t0, r_hw):
    return judge_from_load(guest, res, t0, r_hw, cases.slack(res.bound))


def judge_boot_running_step(guest, driver, scen, res, t0, r_hw):
    return judge_boot_running(guest, res, r_hw)


# What each kind of scenario must show, in order: (does it apply to the scenario, the step).
# A step returns False with res.reason set when the case fails.
UP_STEPS = [
    (lambda s: True, judge_stayed_up),
    (lambda s: s.exits_clean, judge_exit_clean),
    (lambda s: s.restart, judge_restart_step),
    (lambda s: s.timing == "busy", judge_refused_busy),
    (lambda s: True, note_last_load),
]
RESET_STEPS = [
    (lambda s: True, judge_was_reset),
    (lambda s: s.timing == "from-load", judge_from_load_step),
    (lambda s: s.boot_running, judge_boot_running_step),
    (lambda s: s.timing == "bound", judge_within_bound),
    (lambda s: s.timing == "pause", judge_paused),
    (lambda s: s.timing == "reset-time", judge_reset_time),
    (lambda s: s.fences, judge_fenced),
    (lambda s: True, note_scsi_states),
    (lambda s: s.host_fault == "freeze-vm", note_who_acted),
    (lambda s: bool(s.dump), lambda g, d, s, r, t0, rh: dump.judge(g, s, r, t0, rh)),
]


def judge_restart(guest, driver, res, t0, t_exit):
    """keep-armed-restart: the second wdfeed armed again, and how long the device went
    unfed: from the first wdfeed's exit to the second one's first pet (its armed line)."""
    again = guest.first_line(SAYS["armed"], after=t_exit)
    if again is None:
        res.reason = "the restarted wdfeed never armed"
        return False
    gap = again[0] - t_exit
    res.notes.append(f"restart: the first wdfeed exited {t_exit - t0:.2f}s after SIGTERM; the "
                     f"second armed {gap:.2f}s after that exit, {again[0] - t0:.2f}s after "
                     f"SIGTERM (reset time R={driver.reset_after_last_pet():.1f}s)")
    took = guest.first_line(SAYS["took-over"], after=t_exit)
    if took:
        res.notes.append("the second wdfeed saw the device still running (sysfs state active)")
    return True


def since_load(guest):
    """Host time of the modules-loaded marker: the watchdog driver has just registered."""
    loaded = guest.first_line(r"VMTEST: modules-loaded")
    return loaded[0] if loaded else None


def judge_boot_running(guest, res, r_hw):
    """boot-takeover: wdfeed armed a device that had been running since the driver loaded
    before that running timer could fire."""
    loaded = since_load(guest)
    armed = guest.first_line(SAYS["armed"])
    if loaded is None or armed is None:
        res.reason = "no modules-loaded marker or no armed line to time the takeover"
        return False
    took = armed[0] - loaded
    state = guest.first_line(SAYS["state-before"])
    res.notes.append(f"wdfeed armed {took:.2f}s after the driver loaded (sysfs state before: "
                     f"{state[1].group(1) if state else 'unknown'}); a timer running since then "
                     f"fires at R={r_hw:.1f}s")
    seen = guest.first_line(SAYS["took-over"])
    if seen:
        res.notes.append("wdfeed logged that it took over a running device")
    if took >= r_hw:
        res.reason = f"wdfeed armed {took:.2f}s after the driver loaded, not within R={r_hw:.1f}s"
        return False
    return True


def judge_from_load(guest, res, t0, r_hw, sl):
    """boot-unhealthy: wdfeed never armed, and the device's own running timer reset the VM
    one reset time after the driver loaded."""
    loaded = since_load(guest)
    armed = guest.first_line(SAYS["armed"] + "|VMTEST: armed")
    if armed is not None:
        res.reason = f"wdfeed armed on an unhealthy node: {armed[1].string.strip()}"
        return False
    if loaded is None:
        res.reason = "no modules-loaded marker to count from"
        return False
    since = t0 + res.after - loaded
    res.notes.append(f"reset {since:.2f}s after the driver loaded (R={r_hw:.1f}s, slack={sl:.2f}s)")
    waiting = guest.first_line(SAYS["not-arming"])
    if waiting:
        res.notes.append(f"wdfeed said: {waiting[1].group(0)[:200]}")
    if since > r_hw + sl:
        res.reason = f"reset {since:.2f}s after the driver loaded > R {r_hw:.1f}s + slack {sl:.2f}s"
        return False
    return True


def main(argv):
    ap = argparse.ArgumentParser(prog="tests/vm/run", description=__doc__)
    ap.add_argument("names", nargs="*", help="drivers and/or scenarios (none: everything)")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="VMs at a time (default 2)")
    ap.add_argument("--standin", action="store_true",
                    help="pet with busybox's watchdog applet instead of wdfeed (harness development)")
    ap.add_argument("--wdfeed", metavar="PATH",
                    help="use this wdfeed binary instead of building this tree's")
    ap.add_argument("--list", action="store_true", help="list drivers and scenarios")
    args = ap.parse_args(argv)
    if args.list:
        for d in cases.DRIVERS.values():
            print(f"driver   {d.name:22} {d.doc}")
        for s in cases.SCENARIOS.values():
            print(f"scenario {s.name:22} {'(trio) ' if s.trio else ''}{s.doc}"
                  + (f" [only on {', '.join(s.drivers)}]" if s.drivers else ""))
        for s in systemd_cases.SCENARIOS.values():
            print(f"scenario {s.name:22} {s.doc} [the systemd guest: i6300esb]")
        return 0
    # `systemd` (or a systemd scenario's name) picks the systemd guest's cases; driver and
    # scenario words pick the busybox guests' cases; no word picks everything.
    sd_words = [a for a in args.names if a == "systemd" or a in systemd_cases.SCENARIOS]
    other = [a for a in args.names if a not in sd_words]
    sd_selection = [] if other and not sd_words else [
        s for s in systemd_cases.SCENARIOS.values()
        if not sd_words or "systemd" in sd_words or s.name in sd_words]
    selection = cases.selected(other) if other or not sd_words else []
    t_suite = time.monotonic()
    outdir = os.path.join(assets.REPO, "target", "vm", time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(outdir, exist_ok=True)
    ctx = Context("standin" if args.standin else "wdfeed", outdir)
    ctx.prebuilt = os.path.abspath(args.wdfeed) if args.wdfeed else None
    ctx.systemd_selected = bool(sd_selection)
    try:
        prepare(ctx)
    except (assets.SetupError, subprocess.CalledProcessError) as e:
        print(f"vm: set-up failed: {e}", flush=True)
        names = [(d.name, s.name) for d, s in selection] + [("systemd", s.name) for s in sd_selection]
        for d, s in names:
            print(f"FAIL {d} {s} outcome=up after=nan bound=nan\n    set-up failed", flush=True)
        print(f"0 passed, {len(names)} failed")
        return 1
    assets.log(f"{len(selection) + len(sd_selection)} cases, {args.jobs} at a time, logs in {outdir}")
    # longest first, so the two lanes finish together
    order = sorted(selection, key=lambda c: -(cases.wait_window(c[0], c[1], c[0].timeout + 3)
                                              + (2 * c[0].reset_after_last_pet() if c[1].host_fault == "freeze-vm" else 0)))
    # the systemd guest's cases are the longest: first
    order = [("systemd", s) for s in sd_selection] + order
    lock = threading.Lock()
    results = []

    def one(c):
        if c[0] == "systemd":
            if ctx.petter == "standin":
                r = Result("systemd", c[1].name, skipped="the systemd guest runs wdfeed's unit")
            else:
                r = systemd_guest.run_case(ctx, c[1], Result)
        else:
            r = run_case(ctx, *c)
        with lock:
            results.append(r)
            print(r.line(), flush=True)
            if r.reason:
                print("    reason: " + r.reason.replace("\n", "\n      "))
            for n in r.notes:
                print(f"    {n}")
            if not r.skipped:
                print(f"    case wall time {r.wall:.1f}s, serial log {os.path.join(outdir, r.driver + '-' + r.scenario, 'serial.log')}")
            if not r.ok and not r.skipped and r.tail:
                print("    --- guest serial log tail ---")
                for ln in r.tail:
                    print(f"    | {ln}")
            sys.stdout.flush()
        return r

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(one, order))
    passed = sum(r.ok for r in results)
    skipped = sum(bool(r.skipped) for r in results)
    failed = len(results) - passed - skipped
    assets.log(f"suite wall time {time.monotonic() - t_suite:.0f}s")
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 0 if failed == 0 else 1
