"""Footprint inside an idle guest on iTCO_wdt (q35), whose timer reloads QEMU traces
on the host (tco_timer_reload): exec -> first pet as QEMU sees it, then after the idle time
VmRSS, VmLck, threads and CPU time from /proc."""

import os
import re
import statistics
import time

from . import guest as g
from .prep import cases, observe, suite
from .watch import wait_line_or_end

DRIVER = "iTCO_wdt"
CLK_TCK = 100          # USER_HZ of Debian's x86-64 kernels
RTT_N = 20
SAMPLE1_S = 20

VARIANTS = [
    ("wdfeed", "wdfeed, the suite's config (writable+probe, block-io, process; timeout 6s, interval 1s)"),
    ("wd516-debian", "watchdog 5.16, Debian's /etc/watchdog.conf + watchdog-device"),
    ("wd516-nearest", "watchdog 5.16, nearest equivalent of wdfeed's config (pidfile, test-binary; timeout 6s)"),
]


def files_for(variant, ctx, driver):
    files = {"etc/wdfeed/watchdog.yaml": g.wdfeed_conf(driver)}
    if variant == "wd516-debian":
        with open(ctx.wd_conf) as f:
            files["etc/watchdog.conf"] = g.debian_default_conf(f.read(), driver.wddev)
    elif variant == "wd516-nearest":
        files["etc/watchdog.conf"] = g.wd516_conf(cases.TIMEOUT_S, device=driver.wddev, pidfile=True,
                                                  test_binary=True)
    return files


def parse_sample(text):
    return {k: int(v) for k, v in re.findall(r"(\w+)=(-?\d+)", text) if k != "at"} | \
        {"uptime": float(re.search(r"uptime=([0-9.]+)", text).group(1))}


def one(ctx, outdir, variant, foot_s):
    driver = cases.DRIVERS[DRIVER]
    workdir = os.path.join(outdir, f"footprint-{variant}")
    env = {"PETTER": "wd516" if variant.startswith("wd516") else "wdfeed", "RTT_N": RTT_N,
           "SAMPLE1_S": SAMPLE1_S, "FOOT_S": foot_s}
    res = {"variant": variant}
    guest = ctx.boot(workdir, driver, env, g.COMMON + g.FOOTPRINT, files_for(variant, ctx, driver))
    return observe(guest, workdir, res, lambda: measure(guest, res, foot_s), 20)


def measure(guest, res, foot_s):
    ready = wait_line_or_end(guest, r"VMTEST: (rtt-ready|error)", suite.BOOT_TIMEOUT_S)
    if ready is None or ready[0] == "end" or ready[2].group(1) == "error":
        res["error"] = "guest never got ready"
        return
    time.sleep(0.5)
    rtts = []
    for i in range(RTT_N):
        t = time.monotonic()
        guest.proc.stdin.write(f"{i}\n".encode())
        guest.proc.stdin.flush()
        pong = wait_line_or_end(guest, rf"VMTEST: pong {i}$", 10)
        if pong is None or pong[0] == "end":
            break
        rtts.append(pong[1] - t)
        time.sleep(0.05)
    res["rtt"] = rtts
    ex = wait_line_or_end(guest, r"VMTEST: exec (\S+)", 60)
    if ex is None or ex[0] == "end":
        res["error"] = "the daemon was never started"
        return
    t_exec = ex[1]
    done = wait_line_or_end(guest, r"VMTEST: footprint-done", foot_s + 60)
    if done is None or done[0] == "end":
        res["error"] = "no footprint-done" + (f" ({done[3]})" if done else "")
    with guest.cond:
        pets = list(guest.pets)
    before = [p for p in pets if p < t_exec]
    after = [p for p in pets if p >= t_exec]
    res["pets_before_exec"] = len(before)
    res["first_pet"] = after[0] - t_exec if after else None
    res["second_pet"] = after[1] - t_exec if len(after) > 1 else None
    res["first_pets"] = [p - t_exec for p in after[:4]]
    samples = {}
    with guest.cond:
        for t, s in guest.lines:
            m = re.search(r"VMTEST: sample at=(\d+) (.*)", s)
            if m:
                samples[int(m.group(1))] = parse_sample(m.group(2))
    res["samples"] = samples
    t_stop = None
    stop = guest.first_line(r"VMTEST: sample at=%d" % foot_s)
    if stop:
        t_stop = stop[0]
    steady = [p for p in after[1:] if t_stop is None or p <= t_stop]
    gaps = [b - a for a, b in zip(steady, steady[1:])]
    res["gaps"] = gaps
    res["state_after"] = done[2].string if done and done[0] == "line" else ""


def fmt(r, foot_s):
    lines = []
    v = r["variant"]
    if "error" in r and not r.get("samples"):
        return [f"footprint {v}: ERROR {r['error']}"] + [f"    | {ln}" for ln in r.get("tail", [])[-12:]]
    rtt = r.get("rtt") or []
    lat = statistics.median(rtt) / 2 if rtt else float("nan")
    fp = r.get("first_pet")
    lines.append(f"footprint {v}: exec->first_pet=" + (f"{fp:.3f}s" if fp is not None else "none")
                 + (f" (+{lat * 1000:.1f}ms serial latency = {fp + lat:.3f}s)" if fp is not None and rtt else "")
                 + " reloads_after_exec=[" + ", ".join(f"{p:.3f}" for p in r.get("first_pets", [])) + "]s"
                 + f" pets_before_exec={r.get('pets_before_exec')}")
    s_end = r["samples"].get(foot_s)
    s_1 = r["samples"].get(SAMPLE1_S)
    if s_end and "starttime" not in s_end:
        lines.append(f"footprint {v}: the daemon was gone at the sample")
    elif s_end:
        age = s_end["uptime"] - s_end["starttime"] / CLK_TCK
        cpu = (s_end["utime"] + s_end["stime"]) / CLK_TCK
        ccpu = (s_end["cutime"] + s_end["cstime"]) / CLK_TCK
        per_h = cpu / age * 3600 if age > 0 else float("nan")
        cper_h = (cpu + ccpu) / age * 3600 if age > 0 else float("nan")
        line = (f"footprint {v}: after {age:.0f}s idle VmRSS={s_end.get('VmRSS', '?')}kB "
                f"VmHWM={s_end.get('VmHWM', '?')}kB VmLck={s_end.get('VmLck', '?')}kB "
                f"Threads={s_end.get('Threads', '?')} cpu={cpu:.2f}s ({per_h:.1f} cpu-s/h)"
                f" with_reaped_children={cpu + ccpu:.2f}s ({cper_h:.1f} cpu-s/h)")
        if s_1 and "utime" in s_1:
            dt = s_end["uptime"] - s_1["uptime"]
            dcpu = (s_end["utime"] + s_end["stime"] - s_1["utime"] - s_1["stime"]) / CLK_TCK
            dch = (s_end["cutime"] + s_end["cstime"] - s_1["cutime"] - s_1["cstime"]) / CLK_TCK
            line += (f" steady[{SAMPLE1_S}s..{foot_s}s]={dcpu / dt * 3600:.1f} cpu-s/h"
                     f" (+children {dch / dt * 3600:.1f})")
        lines.append(line)
    gaps = r.get("gaps") or []
    if gaps:
        lines.append(f"    pets seen by QEMU while idle: {len(gaps) + 1}, gap median {statistics.median(gaps):.3f}s "
                     f"max {max(gaps):.3f}s")
    if rtt:
        lines.append(f"    serial round trip host->guest shell->host: median {statistics.median(rtt) * 1000:.1f}ms "
                     f"min {min(rtt) * 1000:.1f}ms max {max(rtt) * 1000:.1f}ms over {len(rtt)}; "
                     "one-way latency taken as half the median")
    if r.get("state_after"):
        lines.append(f"    {r['state_after'].strip()}")
    if "error" in r:
        lines.append(f"    note: {r['error']}")
    lines.append(f"    serial log {r['log']}")
    return lines


def run(ctx, outdir, foot_s, out, jobs=1, only=None):
    import concurrent.futures
    variants = [(v, d) for v, d in VARIANTS if not only or v in only]
    out(f"== footprint: {DRIVER} (-M q35), pets seen as QEMU's tco_timer_reload traces; {foot_s}s idle per "
        f"daemon, {jobs} VM(s) at a time (TCG: CPU times are inflated against real hardware, compare them with each other only)")
    res = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futs = {pool.submit(one, ctx, outdir, v, foot_s): v for v, _ in variants}
        for fu in concurrent.futures.as_completed(futs):
            r = fu.result()
            res[futs[fu]] = r
    for v, doc in variants:
        out(f"  {v}: {doc}")
        for ln in fmt(res[v], foot_s):
            out(ln)
    return res
