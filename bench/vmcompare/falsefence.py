"""False fences under load. The suite's healthy node (fakehb and fakerm running, ext4
data disk on /mnt/data) pets a 5 s watchdog every 1 s while stress-ng loads the guest; each
daemon is watched for the target time, rebooting a new guest after every reset."""

import dataclasses
import os
import re
import threading
import time

from . import guest as g
from .prep import cases, cleanup, suite
from .watch import ended_by, first, wait_line_or_end

TIMEOUT_S = 5
DRIVER = "i6300esb"


def driver5():
    return dataclasses.replace(cases.DRIVERS[DRIVER], timeout=TIMEOUT_S)


@dataclasses.dataclass
class Run:
    daemon: str
    target: float
    watched: float = 0.0
    boots: int = 0
    resets: list = dataclasses.field(default_factory=list)    # dicts
    warnings: list = dataclasses.field(default_factory=list)  # daemon lines that said a check failed
    lateness: list = dataclasses.field(default_factory=list)
    bound: str = ""
    notes: list = dataclasses.field(default_factory=list)
    loads: list = dataclasses.field(default_factory=list)


def files_for(daemon, driver):
    files = {"etc/wdfeed/watchdog.yaml": g.wdfeed_conf(driver)}
    if daemon == "wd516":
        files["etc/watchdog.conf"] = g.wd516_conf(TIMEOUT_S, pidfile=True, test_binary=True)
    return files


def one_daemon(ctx, outdir, daemon, target, out):
    """Boots guests until `target` seconds of loaded time are watched."""
    driver = driver5()
    run = Run(daemon, target)
    files = files_for(daemon, driver)
    while run.watched < target - 1:
        run.boots += 1
        left = int(round(target - run.watched))
        workdir = os.path.join(outdir, f"false-fences-{daemon}-boot{run.boots}")
        env = {"PETTER": daemon, "WATCH_S": max(left, 5)}
        guest = ctx.boot(workdir, driver, env, g.COMMON + g.FALSE_FENCE, files, disk_mb=512)
        try:
            boot_once(guest, run, left, out)
        finally:
            guest.stop()
            cleanup(workdir)
        if run.boots >= 50:
            run.notes.append("stopped after 50 boots")
            break
    return run


def boot_once(guest, run, left, out):
    armed = wait_line_or_end(guest, r"VMTEST: (armed|error)", suite.BOOT_TIMEOUT_S)
    if armed is None:
        raise RuntimeError(f"{run.daemon}: guest never armed; tail: {guest.tail(10)}")
    if armed[0] == "end":
        run.resets.append({"at": "boot", "t": 0.0, "end": armed[3], "tail": guest.tail(15)})
        out(f"  {run.daemon}: reset before arming ({armed[3]})")
        return
    if armed[2].group(1) == "error":
        raise RuntimeError(f"{run.daemon}: guest set-up failed: {armed[2].string}")
    b = first(guest, r"fence_bound_s=([0-9.]+)")
    if b:
        run.bound = b[1].group(1)
    load = wait_line_or_end(guest, r"VMTEST: load started", 60)
    if load is None or load[0] == "end":
        run.resets.append({"at": "before load", "t": 0.0, "end": load[3] if load else "?",
                           "tail": guest.tail(15)})
        return
    t_load = load[1]
    done = wait_line_or_end(guest, r"VMTEST: watch-done", left + 120)
    if done is None:
        raise RuntimeError(f"{run.daemon}: no watch-done {left + 120}s after the load started")
    if done[0] == "end":
        watched = done[1] - t_load
        run.watched += watched
        who, evs = ended_by(guest, t_load)
        rec = {"at": f"+{run.watched:.0f}s of {run.target:.0f}", "t": watched, "end": done[3], "by": who,
               "events": evs, "tail": guest.tail(15)}
        run.resets.append(rec)
        out(f"  {run.daemon}: RESET after {watched:.1f}s of load in boot {run.boots} ({done[3]}; {who})")
        for ln in rec["tail"]:
            out(f"    | {ln}")
    else:
        run.watched += done[1] - t_load
        # the clean stop: wdfeed's lateness line, the device left inactive
        wait_line_or_end(guest, r"VMTEST: daemon stopped", 30)
        wait_line_or_end(guest, r"VMTEST: stress-ng:", 15)
        # `wdfeed status` just before the SIGTERM (p50/p99/p99.9/max), then wdfeed's own
        # line on the way out (p99/max), and whether it disarmed
        for _, m in guest.matching(r"(feeder wake-up lateness|wdfeed pid \d+:|disarmed|left armed).*",
                                   after=done[1]):
            run.lateness.append(m.string.strip())
        for pat in (r"VMTEST: daemon stopped.*", r"VMTEST: stress-ng: .*"):
            st = first(guest, pat, after=done[1])
            if st:
                run.notes.append(st[1].group(0))
    collect(guest, run, t_load)


def collect(guest, run, t_load):
    with guest.cond:
        lines = [(t, s) for t, s in guest.lines if t >= t_load]
    for t, s in lines:
        if run.daemon == "wdfeed" and re.search(r"check failed|fencing|stall|WARN|ERROR", s):
            run.warnings.append(f"+{t - t_load:.1f}s {s.strip()[:220]}")
        if run.daemon == "wd516":
            m = re.search(r"watchdog\[\d+\]: (.*)", s)
            if m and not re.search(r"starting daemon|int=|dev=|ping:|file:|pidfile:|interface:|"
                                   r"temperature:|test binary files|repair binary|error retry|"
                                   r"alive=|heartbeat=|to=|no=|hardware watchdog identity|"
                                   r"test=|tmpfs|stopping daemon|sigterm|is out of range", m.group(1)):
                run.warnings.append(f"+{t - t_load:.1f}s {m.group(1).strip()[:220]}")
        if "VMTEST: load t=" in s:
            run.loads.append(s.split("VMTEST: ", 1)[1])
        if re.search(r"Out of memory|oom-kill|invoked oom-killer", s):
            run.notes.append(f"+{t - t_load:.1f}s kernel: {s.strip()[:160]}")


def run(ctx, outdir, secs, out):
    """Both daemons at once (two VMs), same conditions."""
    out(f"== false fences under load: {DRIVER} (-M pc), watchdog timeout {TIMEOUT_S}s, pet interval 1s, "
        f"stress-ng --cpu 2 --vm 1 --vm-bytes 75% --io 2 --fork 2 in the guest, {secs}s per daemon, both "
        "daemons at the same time")
    results = {}
    errors = {}

    def worker(daemon):
        try:
            results[daemon] = one_daemon(ctx, outdir, daemon, secs, out)
        except Exception as e:  # reported, the other daemon goes on
            errors[daemon] = f"{type(e).__name__}: {e}"

    threads = [threading.Thread(target=worker, args=(d,)) for d in ("wdfeed", "wd516")]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = []
    for daemon in ("wdfeed", "wd516"):
        name = "wdfeed" if daemon == "wdfeed" else "watchdog-5.16"
        if daemon in errors:
            lines.append(f"false-fences {name}: ERROR {errors[daemon]}")
            continue
        r = results[daemon]
        lines.append(f"false-fences {name}: resets={len(r.resets)} watched_s={r.watched:.0f} boots={r.boots}"
                     + (f" fence_bound_s={r.bound}" if r.bound else "")
                     + f" check_warnings={len(r.warnings)}")
        for rec in r.resets:
            lines.append(f"    reset at {rec['at']} after {rec['t']:.1f}s of load: {rec['end']}"
                         + (f"; {rec['by']}" if rec.get("by") else ""))
        for w in r.warnings[:8]:
            lines.append(f"    daemon said: {w}")
        if len(r.warnings) > 8:
            lines.append(f"    ... {len(r.warnings) - 8} more")
        for lt in r.lateness:
            lines.append(f"    {lt}")
        if r.loads:
            lines.append(f"    last load sample: {r.loads[-1]}")
        for n in r.notes[:10]:
            lines.append(f"    {n}")
    lines.append(f"    (wall time {time.monotonic() - t0:.0f}s)")
    for ln in lines:
        out(ln)
    return results, errors
