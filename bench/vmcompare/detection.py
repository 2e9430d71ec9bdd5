"""Detection of the VM suite's faults. watchdog 5.16 runs the suite's own scenario
steps (its start_petter replaces wdfeed's) in its nearest configuration, watched long enough
for its default 60 s retry-timeout to play out; wdfeed's side is the suite itself, run on the
same driver."""

import json
import os
import re
import subprocess
import time

from . import guest as g
from .prep import REPO, cases, observe, suite
from .watch import ended_by, first, wait_line_or_end, wd_lines

DRIVER = "i6300esb"

# scenario -> (label, watchdog 5.16's stand-in checks for the suite's check(s) under test)
SCENARIOS = {
    "ro-remount": ("ro-remount", {"test_binary": True}),
    "ext4-error": ("ext4-error", {"test_binary": True}),
    "stuck-io": ("stuck-io", {"test_binary": True}),
    "stuck-io-blockio": ("stuck-io-blockio", {"touch_file": True}),
    "heartbeat-kill": ("heartbeat-kill", {"pidfile": True}),
    "heartbeat-stop": ("heartbeat-stop", {"pidfile": True}),
    "frozen-vm": ("frozen-vm", {"pidfile": True, "test_binary": True, "touch_file": True}),
    "wdfeed-killed": ("daemon-killed", {"pidfile": True, "test_binary": True, "touch_file": True}),
}
CHANGE_S = 10          # file/change: the file must change within 10 s (block-io stuck-after 10s)
TEST_TIMEOUT_S = 2     # test-binary: 2 s (wdfeed's check deadline)


def conf_for(name):
    return g.wd516_conf(cases.TIMEOUT_S, change_s=CHANGE_S, test_timeout=TEST_TIMEOUT_S,
                        **SCENARIOS[name][1])


def wd516_case(ctx, outdir, name, watch_s, out):
    driver = cases.DRIVERS[DRIVER]
    scen = cases.SCENARIOS[name]
    label, checks = SCENARIOS[name]
    workdir = os.path.join(outdir, f"detect-wd516-{label}")
    case_sh = g.COMMON + (g.TOUCH_LOOP if checks.get("touch_file") else "") + scen.guest
    files = {"etc/wdfeed/watchdog.yaml": g.wdfeed_conf(driver, name),
             "etc/watchdog.conf": conf_for(name)}
    res = {"scenario": label, "checks": checks}
    guest = ctx.boot(workdir, driver, {"PETTER": "wd516"}, case_sh, files, disk_mb=scen.disk_mb,
                     nbd=scen.nbd)
    return observe(guest, workdir, res, lambda: drive(guest, driver, scen, watch_s, res), 30)


def drive(guest, driver, scen, watch_s, res):
    armed = wait_line_or_end(guest, r"VMTEST: (armed|error)", suite.BOOT_TIMEOUT_S)
    if armed is None or armed[0] == "end" or armed[2].group(1) == "error":
        res["error"] = "guest never armed: " + (armed[3] if armed and armed[0] == "end" else
                                                armed[2].string if armed else "timeout")
        return
    ver = first(guest, r"starting daemon \(([^)]*)\)")
    res["version"] = ver[1].group(1) if ver else "?"
    if scen.host_fault:
        ready = wait_line_or_end(guest, r"VMTEST: (ready-for-host-fault|error)", 60)
        if ready is None or ready[0] == "end" or ready[2].group(1) == "error":
            res["error"] = "guest never got ready for the host fault"
            return
        if scen.host_fault == "stop-nbd":
            t0 = guest.sigstop("nbd")
            res["fault"] = "qemu-nbd SIGSTOPped"
        else:
            freeze = 2 * driver.reset_after_last_pet()
            guest.sigstop("qemu")
            time.sleep(freeze)
            t0 = guest.sigcont("qemu")
            res["fault"] = f"QEMU SIGSTOPped for {freeze:.0f}s; times from SIGCONT"
    else:
        f = wait_line_or_end(guest, r"VMTEST: (fault.*|error.*)", 60)
        if f is None or f[0] == "end" or f[2].group(1).startswith("error"):
            res["error"] = "guest never injected the fault"
            return
        t0 = f[1]
        res["fault"] = f[2].group(1)
    end = guest.wait_outcome(watch_s)
    res["watched"] = (end[0] if end else time.monotonic()) - t0
    res["outcome"] = end[1] if end else "up"
    res["reset_after"] = end[0] - t0 if end else None
    res["end"] = end[2] if end else ""
    res["by"], res["events"] = ended_by(guest, t0) if end else ("-", [])
    # watchdog 5.16's own words after the fault, and what happened to the heartbeat
    wdl = wd_lines(guest, t0)
    res["wd_lines"] = wdl
    res["first_log"] = wdl[0] if wdl else None
    sd = [(t, s) for t, s in wdl if "shutting down" in s]
    res["shutdown"] = sd[0] if sd else None
    retry = [(t, s) for t, s in wdl if "Retry timed-out" in s]
    res["retry"] = retry[0] if retry else None
    hb = first(guest, r"VMTEST: exited (fakehb|fakerm) rc=(\d+)", after=t0)
    res["hb_exit"] = (hb[0] - t0, hb[1].group(0)) if hb else None
    ex = first(guest, r"VMTEST: exited watchdog rc=(\d+)", after=t0)
    res["daemon_exit"] = (ex[0] - t0, ex[1].group(0)) if ex else None


def verdict(r):
    """(detected, action, reset, by) in words, for watchdog 5.16's side of the table."""
    lines = r["wd_lines"]
    errors = [(t, x) for t, x in lines if not re.search(r"sendmail|listing|skip |unmounting|remounting|"
                                                          r"now set to|stopping daemon", x)]
    sd = r.get("shutdown")
    if r["scenario"] == "daemon-killed":
        detected = "n/a (the daemon itself was killed)"
    elif sd:
        detected = f"yes, first error +{errors[0][0]:.1f} s" if errors else "yes"
    elif errors:
        detected = (f"logged {len(errors)} error(s) from +{errors[0][0]:.1f} s, then healthy again"
                    if r["outcome"] == "up" else f"logged from +{errors[0][0]:.1f} s")
    else:
        detected = "no"
    action = f"+{sd[0]:.1f} s (shutting down)" if sd else "none"
    if r["reset_after"] is None:
        return detected, action, f"none in {r['watched']:.0f} s", "-"
    reset = f"+{r['reset_after']:.1f} s"
    by = r["by"]
    one_s = any("now set to 1 seconds" in x for _, x in lines)
    if sd and one_s:
        by += ": its soft reboot (SIGTERM/SIGKILL to all, unmount) set the device timeout to 1 s"
    elif sd:
        by += f": its soft reboot stalled (last log +{lines[-1][0]:.1f} s), the device's own timeout"
    else:
        by += ": no more pets, the device's own timeout"
    return detected, action, reset, by


def fmt_wd516(r):
    if "error" in r:
        return f"detect watchdog-5.16 {r['scenario']}: ERROR {r['error']}"
    detected, action, reset, by = verdict(r)
    return (f"detect watchdog-5.16 {r['scenario']}: detected={detected}; action={action}; "
            f"outcome={r['outcome']} reset_after={reset}; by={by}")


def details_wd516(r):
    out = []
    if "error" in r:
        return [f"    | {ln}" for ln in r.get("tail", [])[-15:]]
    out.append(f"    fault: {r.get('fault')}; checks: {', '.join(r['checks'])}; watchdog version {r.get('version')}")
    # each message once, with when it first and last came and how often
    groups = {}
    for t, s in r["wd_lines"]:
        key = re.sub(r"\d+", "N", s)
        if key not in groups:
            groups[key] = [t, t, 0, s]
        groups[key][1] = t
        groups[key][2] += 1
    for t1, t2, n, s in sorted(groups.values()):
        span = f" (x{n}, last +{t2:.2f}s)" if n > 1 else ""
        out.append(f"    +{t1:7.2f}s watchdog: {s[:200]}{span}")
    if r.get("hb_exit"):
        out.append(f"    +{r['hb_exit'][0]:7.2f}s {r['hb_exit'][1]}")
    if r.get("daemon_exit"):
        out.append(f"    +{r['daemon_exit'][0]:7.2f}s {r['daemon_exit'][1]}")
    if r.get("events"):
        out.append("    QMP: " + "; ".join(r["events"]))
    out.append(f"    serial log {r['log']}")
    return out


SUITE_LINE = re.compile(r"^(PASS|FAIL|SKIP) (\S+) (\S+) outcome=(\S+) after=(\S+) bound=(\S+)")


def run_suite(ctx, outdir, names, out):
    """wdfeed's side: tests/vm/run on the same driver, with the binary built here."""
    cmd = [os.path.join(REPO, "tests", "vm", "run"), "-j", "2", "--wdfeed", ctx.wdfeed, DRIVER] + names
    out("  $ " + " ".join(os.path.relpath(c, REPO) if c.startswith(REPO) else c for c in cmd))
    logpath = os.path.join(outdir, "detect-wdfeed-suite.txt")
    with open(logpath, "w") as logf:
        p = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        logf.write(p.stdout)
    results = {}
    cur = None
    for ln in p.stdout.splitlines():
        m = SUITE_LINE.match(ln)
        if m:
            cur = {"verdict": m.group(1), "outcome": m.group(4), "after": m.group(5),
                   "bound": m.group(6), "fence": None, "notes": []}
            results[m.group(3)] = cur
            continue
        if cur is not None and ln.startswith("    "):
            cur["notes"].append(ln.strip())
            fm = re.search(r"wdfeed fenced ([0-9.]+)s after the fault", ln)
            if fm:
                cur["fence"] = fm.group(1)
            if "acted:" in ln and cur["fence"] is None:
                am = re.search(r"wdfeed at \+([0-9.]+)s", ln)
                if am:
                    cur["fence"] = am.group(1)
    out(f"  suite log {logpath}; last line: {p.stdout.strip().splitlines()[-1] if p.stdout.strip() else '-'}")
    return results


def run(ctx, outdir, watch_s, names, out):
    out(f"== detection: {DRIVER} (-M pc), watchdog timeout {cases.TIMEOUT_S}s, pet interval 1s; "
        f"watchdog 5.16 watched {watch_s}s after each fault (its retry-timeout stays at the default 60s)")
    out(f"  watchdog 5.16 stand-ins: writable check -> test-binary (dd conv=fsync of a 512-byte file on "
        f"/mnt/data, test-timeout {TEST_TIMEOUT_S}); block-io -> file /mnt/data/wd516-touch with change = "
        f"{CHANGE_S} (a loop rewrites it with fsync every second); process -> pidfile /run/fakehb.pid")
    import concurrent.futures
    wd = {}
    order = [n for n in SCENARIOS if n in names]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futs = {pool.submit(wd516_case, ctx, outdir, n, watch_s, out): n for n in order}
        for fu in concurrent.futures.as_completed(futs):
            r = fu.result()
            wd[futs[fu]] = r
            out(fmt_wd516(r))
            for ln in details_wd516(r):
                out(ln)
    out("  wdfeed side: the VM suite on the same driver")
    suite_res = run_suite(ctx, outdir, order, out)
    for n in order:
        s = suite_res.get(n)
        label = SCENARIOS[n][0]
        if s is None:
            out(f"detect wdfeed {label}: no result from the suite")
            continue
        out(f"detect wdfeed {label}: {s['verdict']} outcome={s['outcome']} fence={'+' + s['fence'] + 's' if s['fence'] else 'none'} "
            f"reset_after=+{s['after']}s bound={s['bound']}s")
        for n2 in s["notes"]:
            if not n2.startswith("case wall time"):
                out(f"    {n2}")
    # the table
    out("")
    out("| scenario | wdfeed: fence, reset, bound | watchdog 5.16: detected?, action after, reset after, by what |")
    out("|---|---|---|")
    for n in order:
        label = SCENARIOS[n][0]
        s = suite_res.get(n)
        wcell = "-"
        if s:
            wcell = (f"{'fence +' + s['fence'] + ' s' if s['fence'] else 'no fence line'}, "
                     f"{s['outcome']} +{s['after']} s, B {s['bound']} s")
        r = wd.get(n)
        if r is None or "error" in r:
            dcell = "error: " + (r["error"] if r else "not run")
        else:
            dcell = ", ".join(verdict(r))
        out(f"| {label} | {wcell} | {dcell} |")
    with open(os.path.join(outdir, "detection.json"), "w") as f:
        json.dump({"watchdog-5.16": wd, "wdfeed": suite_res}, f, indent=1, default=str)
    return wd, suite_res
