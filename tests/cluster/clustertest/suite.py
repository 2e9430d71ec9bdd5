"""Runs the two-node cases: a private network, two guests with keepalived (and wdfeed), the
ARP observer, the fault on the master, and the verdict from both observers' figures."""

import argparse
import concurrent.futures
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from vmtest import assets as vm
from vmtest.qemu import Guest

from . import assets, config, netns, observe, scenarios

APPEND = "console=ttyS0 panic=0 quiet rdinit=/init"
MEM_MB = 384
BOOT_TIMEOUT_S = 240      # both guests booted, keepalived settled, wdfeed armed (loaded host)
ARM_TIMEOUT_S = 60        # inside a guest: from starting wdfeed to its "armed" line
REBOOT_TIMEOUT_S = 150    # from the fenced node's reset to keepalived settled there again
FENCE_LINE = r"fencing check=.*"
SOFTDOG_LINE = r"softdog: Initiating system reboot"


def slack(bound):
    """The allowance of tests/vm (docs/VM-SUITE.md, "Slack"): TCG guests on a shared 2-core
    host run every step of the fence 10 to 50 times slower than hardware."""
    return 1.0 + 0.1 * bound


def fmt(x):
    return "none" if x is None else f"{x:.2f}"


@dataclass
class Result:
    scenario: str
    wdfeed: bool
    ok: bool = False
    measured: bool = False     # a baseline that got as far as its figures
    dual: float = None
    takeover: float = None
    reset: float = None
    bound: float = None
    reason: str = ""
    notes: list = field(default_factory=list)
    tails: dict = field(default_factory=dict)
    wall: float = 0.0
    workdir: str = ""

    def verdict(self):
        if not self.wdfeed:
            return "INFO" if self.measured else "FAIL"
        return "PASS" if self.ok else "FAIL"

    def passed(self):
        return self.verdict() in ("PASS", "INFO")

    def line(self):
        return (f"{self.verdict()} {self.scenario} wdfeed={'yes' if self.wdfeed else 'no'} "
                f"dual_active={fmt(self.dual)} takeover={fmt(self.takeover)} "
                f"reset={fmt(self.reset)} bound={fmt(self.bound)}")


class Context:
    def __init__(self, outdir, janitor):
        self.outdir = outdir
        self.janitor = janitor
        self.vmlinuz = None
        self.moddir = None
        self.initramfs = None
        self.wdfeed = None
        self.prebuilt = None
        self.rejected = {}     # softdog flag -> wdfeed validate's refusal of that config
        self.index = 0
        self.lock = threading.Lock()

    def next_index(self):
        with self.lock:
            self.index += 1
            return self.index


def prepare(ctx):
    assets.ensure_host_packages()
    ctx.vmlinuz, ctx.moddir = vm.ensure_kernel()
    root = assets.ensure_keepalived()
    if ctx.prebuilt:
        ctx.wdfeed = ctx.prebuilt
    else:
        ctx.wdfeed = vm.build_release("wdfeed")
    ctx.initramfs = assets.build_initramfs(ctx.vmlinuz, ctx.moddir, ctx.wdfeed, root)
    ctx.mods = vm.Modules(ctx.moddir)
    for softdog in (False, True):
        text = wdfeed_config(softdog)
        path = os.path.join(ctx.outdir, f"watchdog{'-softdog' if softdog else ''}.yaml")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([ctx.wdfeed, "validate", path], capture_output=True, text=True)
        if r.returncode != 0:
            ctx.rejected[softdog] = (r.stdout + r.stderr).strip()


def wdfeed_config(softdog):
    return config.wdfeed_yaml(softdog)


def node_archive(ctx, scen, with_wdfeed, node, path):
    n = config.NODES[node]
    cpio = vm.Cpio()
    cpio.file("case.modules", "".join(f"{m}\n" for m in ctx.mods.closure(assets.MODULES)))
    env = {"NODE": node, "ADDR": n["addr"], "VIP": config.VIP,
           "WDFEED": "yes" if with_wdfeed else "no", "ARM_TIMEOUT": ARM_TIMEOUT_S,
           "WAIT_FOR_PEER": 1 if node == config.PEER else 0, "SCENARIO": scen.name}
    cpio.file("case.env", "".join(f"{k}='{v}'\n" for k, v in env.items()))
    cpio.file("etc/keepalived/keepalived.conf", config.keepalived_conf(node, with_wdfeed))
    cpio.file("etc/keepalived/notify.sh", config.NOTIFY_SH, 0o755)
    cpio.file("etc/wdfeed/watchdog.yaml", wdfeed_config(scen.softdog))
    with open(path, "wb") as f:
        f.write(cpio.finish())


def make_guest(ctx, net, scen, with_wdfeed, node, workdir):
    n = config.NODES[node]
    os.makedirs(workdir, exist_ok=True)
    disk = os.path.join(workdir, "data.img")
    vm.make_ext4(disk, scen.disk_mb)
    archive = os.path.join(workdir, "node.cpio")
    node_archive(ctx, scen, with_wdfeed, node, archive)
    nbd = scen.nbd and node == config.MASTER
    machine = ["-M", "pc", "-device", "i6300esb", "-action", "watchdog=reset",
               "-netdev", f"tap,id=n0,ifname={n['tap']},script=no,downscript=no",
               "-device", f"virtio-net-pci,netdev=n0,mac={n['mac']}"]
    g = Guest(workdir, machine, ctx.vmlinuz, [ctx.initramfs, archive], APPEND, mem_mb=MEM_MB,
              disk=None if nbd else disk, nbd_image=disk if nbd else None)
    # a reset must reboot the node (the fenced node comes back), and QEMU runs in the
    # case's namespace, where its tap is
    g.argv = net.exec_prefix() + [a for a in g.argv if a != "-no-reboot"]
    g.node = node
    g.disk = disk
    return g


def send(guest, line):
    guest.proc.stdin.write((line + "\n").encode())
    guest.proc.stdin.flush()


def reset_time(guest, after, before=float("inf")):
    """When the node was reset after `after`: the first QMP WATCHDOG, RESET or SHUTDOWN event,
    softdog's console line, or a new boot, whichever came first."""
    ts = []
    with guest.cond:
        for t, ev in guest.events:
            if ev.get("event") in ("WATCHDOG", "RESET", "SHUTDOWN") and after <= t <= before:
                ts.append(t)
                break
    for pat in (SOFTDOG_LINE, r"CL: boot node="):
        hit = guest.first_line(pat, after=after)
        if hit and hit[0] <= before:
            ts.append(hit[0])
    return min(ts) if ts else None


def wait_until(pred, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def wait_ready(guest, after, timeout):
    """(time, state) of the node's first "ready" line after `after`, or raises with the reason."""
    pat = r"CL: (ready state=(\w+)|error .*)"
    hit = wait_until(lambda: guest.first_line(pat, after=after) or guest.exited_at, timeout)
    if hit is None or not isinstance(hit, tuple):
        gone = " (QEMU exited)" if guest.exited_at else ""
        raise CaseError(f"node {guest.node} not ready within {timeout}s{gone}")
    if hit[1].group(1).startswith("error"):
        raise CaseError(f"node {guest.node}: {hit[1].group(1)}")
    return hit[0], hit[1].group(2)


class CaseError(Exception):
    pass


def run_case(ctx, scen, with_wdfeed):
    res = Result(scen.name, with_wdfeed)
    t_case = time.monotonic()
    res.workdir = os.path.join(ctx.outdir, f"{scen.name}-{'wdfeed' if with_wdfeed else 'baseline'}")
    os.makedirs(res.workdir, exist_ok=True)
    if with_wdfeed and scen.softdog in ctx.rejected:
        # the host is not the guest (no eth0, no /mnt/data there): the guest's wdfeed decides
        res.notes.append("wdfeed validate on the host rejected the config (the guest's wdfeed "
                         "decides): " + ctx.rejected[scen.softdog].replace("\n", " | ")[:300])
    net = netns.Network(ctx.janitor, ctx.next_index())
    guests, obs = [], None
    try:
        net.create()
        obs = observe.ArpObserver(ctx.janitor, net, res.workdir)
        for node in (config.MASTER, config.PEER):
            g = make_guest(ctx, net, scen, with_wdfeed, node, os.path.join(res.workdir, f"node{node}"))
            ctx.janitor.add("guests", g)
            guests.append(g)
        obs.start()
        for g in guests:
            g.start()
        drive(ctx, scen, with_wdfeed, guests, obs, res)
    except CaseError as e:
        res.reason = str(e)
    except Exception as e:      # a harness error fails the case, with its cause
        res.reason = f"harness error: {type(e).__name__}: {e}"
    finally:
        if obs:
            obs.stop()
        for g in guests:
            g.stop()
            ctx.janitor.discard("guests", g)
            res.tails[g.node] = g.tail(40)
        net.delete()
        res.wall = time.monotonic() - t_case
        if res.passed():
            for g in guests:
                for big in (g.disk, os.path.join(g.workdir, "initrd.cpio")):
                    if os.path.exists(big):
                        os.unlink(big)
    return res


def drive(ctx, scen, with_wdfeed, guests, obs, res):
    master, peer = guests
    mac1, mac2 = config.NODES[config.MASTER]["mac"], config.NODES[config.PEER]["mac"]
    t_boot = master.t_start
    t_ready1, state1 = wait_ready(master, t_boot, BOOT_TIMEOUT_S)
    t_ready2, state2 = wait_ready(peer, t_boot, BOOT_TIMEOUT_S)
    if state1 == "BACKUP":
        # the master's keepalived starts alone: BACKUP until its master_down timer runs out
        hit = wait_until(lambda: master.first_line(r"CL: vrrp (MASTER)", after=t_ready1), 30)
        if hit:
            t_ready1, state1 = hit[0], hit[1].group(1)
    if state1 != "MASTER" or state2 != "BACKUP":
        raise CaseError(f"roles after boot: node 1 {state1}, node 2 {state2} (want MASTER, BACKUP)")
    res.notes.append(f"ready {t_ready1 - t_boot:.1f}s (master) and {t_ready2 - t_boot:.1f}s (peer) after QEMU started")
    if with_wdfeed:
        b = master.first_line(r"fence_bound_s=([0-9.]+)")
        if b is None:
            raise CaseError("wdfeed printed no fence bound (no fence_bound_s= line)")
        res.bound = float(b[1].group(1))
    time.sleep(scenarios.SETTLE_S)
    t_pre = time.monotonic() - 2
    if obs.count(mac1, t_pre) == 0:
        raise CaseError("the master does not answer ARP for the address before the fault")
    if obs.count(mac2, t_ready2) > 0:
        raise CaseError("the peer answered ARP for the address before the fault")

    # ---- the fault
    t_reset_ref = None
    if scen.healthy:
        send(master, "load")
        hit = master.wait_line(r"CL: load started", 30)
        if hit is None:
            raise CaseError("the master never started its load")
        t0 = hit[0]
        time.sleep(scenarios.HEALTHY_S)
    elif scen.guest_fault:
        send(master, f"fault {scen.guest_fault}")
        hit = master.wait_line(rf"CL: (fault {scen.guest_fault}|error .*)", 30)
        if hit is None or hit[1].group(1).startswith("error"):
            raise CaseError("the master never injected the fault" + (f": {hit[1].group(1)}" if hit else ""))
        t0 = hit[0]
    elif scen.host_fault == "stop-nbd":
        send(master, "writer")
        if master.wait_line(r"CL: writer started", 30) is None:
            raise CaseError("the master never started its writer")
        time.sleep(1)
        t0 = master.sigstop("nbd")
        res.notes.append("the master's qemu-nbd SIGSTOPped")
    elif scen.host_fault == "freeze":
        t0 = master.sigstop("qemu")
        time.sleep(scenarios.FREEZE_S)
        t_reset_ref = master.sigcont("qemu")
        res.notes.append(f"the master's QEMU SIGSTOPped for {t_reset_ref - t0:.2f}s; reset counts from SIGCONT, "
                         "takeover from SIGSTOP")
    t_reset_ref = t_reset_ref or t0

    # ---- what follows
    if scen.healthy:
        t_end = time.monotonic()
    elif not with_wdfeed:
        time.sleep(max(0.0, t_reset_ref + scenarios.BASELINE_WATCH_S - time.monotonic()))
        t_end = time.monotonic()
    else:
        limit = res.bound + slack(res.bound)
        t_r = wait_until(lambda: reset_time(master, t_reset_ref), limit + 5)
        if scen.host_fault == "stop-nbd" and master.nbd and master.nbd.pid in master._stopped:
            master.sigcont("nbd")     # the disk is back, so that the fenced node can boot
            res.notes.append("qemu-nbd SIGCONTinued " + ("after the reset" if t_r else "at the end of the wait"))
        if t_r is None:
            t_end = time.monotonic()
        else:
            try:
                t_back, state = wait_ready(master, t_r, REBOOT_TIMEOUT_S)
                res.notes.append(f"the fenced node was back ({state}) {t_back - t_r:.1f}s after its reset")
                if state != "BACKUP":
                    res.notes.append(f"the fenced node came back as {state}")
            except CaseError as e:
                res.notes.append(f"after the reset: {e}")
                t_back = None
            if t_back:
                time.sleep(scenarios.NOPREEMPT_WATCH_S)
            t_end = time.monotonic()
            res.notes.append(f"nopreempt window: {t_end - t_back:.1f}s from the fenced node's ready line"
                             if t_back else "no nopreempt window")

    # ---- figures, from both observers
    if obs.dead():
        raise CaseError(f"the ARP observer's arping {obs.dead()} ended early: see arp.log")
    rep1, rep2 = observe.reports(master), observe.reports(peer)
    act1 = observe.active_intervals(rep1, t_end)
    act2 = observe.active_intervals(rep2, t_end)
    dual_rep, first_rep = observe.overlap(act1, act2, t_ready1, t_end)
    dual_arp, first_arp = obs.dual(t_ready1, t_end)
    res.dual = max(dual_arp, dual_rep)
    res.measured = True
    res.notes.append(f"dual_active by ARP {dual_arp:.2f}s"
                     + (f" (first at +{first_arp - t0:.2f}s)" if first_arp else "")
                     + f", by the reporters {dual_rep:.2f}s"
                     + (f" (first at +{first_rep - t0:.2f}s)" if first_rep else ""))
    claims = [t for t in (obs.first_reply(mac2, t0), observe.first_claim(rep2, t0)) if t is not None]
    res.takeover = (min(claims) - t0) if claims else None
    if claims:
        a, r = obs.first_reply(mac2, t0), observe.first_claim(rep2, t0)
        res.notes.append(f"peer serves: first ARP reply at {fmt(a - t0 if a else None)}s, "
                         f"reporter vip=1 at {fmt(r - t0 if r else None)}s")
    last1 = obs.last_reply(mac1, t0, t_end)
    if last1 is not None:
        res.notes.append(f"master's last ARP reply at +{last1 - t0:.2f}s")
    t_r = reset_time(master, t_reset_ref, t_end)
    res.reset = (t_r - t_reset_ref) if t_r else None
    fence = master.first_line(FENCE_LINE, after=t0)
    t_fence = fence[0] if fence and fence[0] <= t_end else None
    if t_fence:
        res.notes.append(f"wdfeed fenced {t_fence - t0:.2f}s after the fault: {fence[1].group(0)[:160]}")
    killed = master.first_line(r"CL: exited keepalived rc=(\d+)", after=t0)
    if killed:
        res.notes.append(f"keepalived exited rc={killed[1].group(1)} at +{killed[0] - t0:.2f}s")
    soft = master.first_line(SOFTDOG_LINE, after=t0)
    if soft:
        res.notes.append(f"softdog fired at +{soft[0] - t0:.2f}s")
    hb = master.first_line(r"entering FAULT state.*", after=t0)
    if hb and (t_r is None or hb[0] < t_r):
        res.notes.append(f"master's keepalived: {hb[1].group(0)[:100]} at +{hb[0] - t0:.2f}s")
    if not with_wdfeed:
        if act1 and act2 and act1[-1][1] >= t_end - observe.HOLD_S and act2[-1][1] >= t_end - observe.HOLD_S:
            res.notes.append("both nodes still claimed the address when the window closed")
        return
    judge(scen, res, master, peer, obs, t0, t_end, t_fence, t_r, rep1, rep2)


def judge(scen, res, master, peer, obs, t0, t_end, t_fence, t_r, rep1, rep2):
    """Every criterion of a case with wdfeed; the reason lists each one that failed."""
    mac1, mac2 = config.NODES[config.MASTER]["mac"], config.NODES[config.PEER]["mac"]
    failed = []
    peer_reset = reset_time(peer, t0, t_end)
    peer_fence = peer.first_line(FENCE_LINE, after=t0)
    if peer_reset or peer_fence:
        failed.append("the peer was fenced or reset: "
                      + (peer_fence[1].group(0)[:160] if peer_fence else "reset"))
    if scen.healthy:
        if t_fence or res.reset is not None:
            failed.append(f"the healthy master was fenced or reset (fence at "
                          f"{fmt(t_fence and t_fence - t0)}s, reset at {fmt(res.reset)}s)")
        if res.takeover is not None:
            failed.append(f"the peer took the address {res.takeover:.2f}s into the load")
        if res.dual > 0:
            failed.append(f"both nodes served the address for {res.dual:.2f}s")
        if obs.count(mac1, t_end - 2, t_end) == 0:
            failed.append("the master stopped answering ARP under load")
        load = master.matching(r"CL: load (loadavg=\S+ vda_written_mib=\d+)")
        if load:
            res.notes.append(f"last load sample: {load[-1][1].group(1)}")
        res.reason = "; ".join(failed)
        res.ok = not failed
        return
    if res.dual > 0:
        failed.append(f"both nodes served the address for {res.dual:.2f}s")
    if t_fence is None and scen.host_fault != "freeze":
        failed.append("wdfeed never logged 'fencing'")
    else:
        # the node is silent from the fence on (from the freeze itself when it is frozen)
        fence_rel = 0.0 if scen.host_fault == "freeze" else t_fence - t0
        want = fence_rel + 3 * config.ADVERT_INT_S + 1
        if res.takeover is None or res.takeover > want:
            failed.append(f"the peer served {fmt(res.takeover)}s after the fault, not within "
                          f"{want:.2f}s (fence {fence_rel:.2f}s + 3 x advert_int + 1s)")
    limit = res.bound + slack(res.bound)
    if res.reset is None or res.reset > limit:
        failed.append(f"the fenced node was reset after {fmt(res.reset)}s, not within the bound "
                      f"{res.bound:.2f}s + slack {slack(res.bound):.2f}s")
    back = master.first_line(r"CL: ready state=(\w+)", after=t_r) if t_r else None
    if back is None:
        failed.append("the fenced node did not come back (no ready line after its reset)")
    else:
        t_back = back[0]
        if back[1].group(1) != "BACKUP":
            failed.append(f"the fenced node came back as {back[1].group(1)}, not BACKUP")
        again1 = observe.first_claim(rep1, t_back, t_end)
        if again1 is not None or obs.count(mac1, t_back, t_end):
            failed.append(f"the rebooted node claimed the address again at "
                          f"+{fmt(again1 and again1 - t0)}s (nopreempt)")
        stale = [t for t, v in rep2 if t_back <= t <= t_end and v == 0]
        if stale or obs.count(mac2, t_back, t_end) == 0:
            failed.append("the peer did not keep serving after the fenced node came back")
        else:
            res.notes.append(f"nopreempt: the peer kept the address for {t_end - t_back:.1f}s after "
                             "the fenced node was back, the fenced node claimed nothing")
    res.reason = "; ".join(failed)
    res.ok = not failed


# ---------------------------------------------------------------------------- main

def main(argv):
    ap = argparse.ArgumentParser(prog="tests/cluster/run", description=__doc__)
    ap.add_argument("names", nargs="*", help="scenarios (none: all)")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="cases (pairs of VMs) at a time (default 2)")
    ap.add_argument("--variant", choices=("both", "wdfeed", "baseline"), default="both",
                    help="with wdfeed, without it (the baseline), or both (default)")
    ap.add_argument("--wdfeed", metavar="PATH", help="use this wdfeed binary instead of building this tree's")
    ap.add_argument("--list", action="store_true", help="list the scenarios")
    args = ap.parse_args(argv)
    if args.list:
        for s in scenarios.SCENARIOS.values():
            print(f"{s.name:18} {s.doc}{'' if s.baseline else ' [with wdfeed only]'}")
        return 0
    selection = scenarios.selected(args.names, args.variant)
    t_suite = time.monotonic()
    outdir = os.path.join(assets.REPO, "target", "cluster", time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(outdir, exist_ok=True)
    janitor = netns.Janitor()
    ctx = Context(outdir, janitor)
    ctx.prebuilt = os.path.abspath(args.wdfeed) if args.wdfeed else None

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return run_all(ctx, args, selection, t_suite)
    except KeyboardInterrupt as e:
        print(f"cluster: interrupted ({e or 'SIGINT'}): stopping the guests, deleting the namespaces", flush=True)
        janitor.cleanup()
        sys.stdout.flush()
        os._exit(130)
    finally:
        janitor.cleanup()


def run_all(ctx, args, selection, t_suite):
    netns.remove_stale()
    try:
        prepare(ctx)
    except (vm.SetupError, subprocess.CalledProcessError) as e:
        print(f"cluster: set-up failed: {e}", flush=True)
        for s, w in selection:
            print(Result(s.name, w, reason="set-up failed").line())
        print(f"0 passed, {len(selection)} failed")
        return 1
    for softdog, why in ctx.rejected.items():
        assets.log(f"wdfeed validate on the host rejects the suite's config ({'with' if softdog else 'without'} "
                   "softdog); the cases run, and the guests' wdfeed decides: " + (why.splitlines()[0] if why else ""))
    assets.log(f"{len(selection)} cases, {args.jobs} at a time, logs in {ctx.outdir}")
    order = sorted(selection, key=lambda c: -c[0].estimate_s(c[1]))
    lock = threading.Lock()
    results = []

    def one(c):
        r = run_case(ctx, *c)
        with lock:
            results.append(r)
            print(r.line(), flush=True)
            if r.reason:
                print("    reason: " + r.reason.replace("\n", "\n      "))
            for n in r.notes:
                print(f"    {n}")
            print(f"    case wall time {r.wall:.1f}s, logs {r.workdir}")
            if r.verdict() == "FAIL":
                for node, tail in sorted(r.tails.items()):
                    print(f"    --- node {node} serial log tail ---")
                    for ln in tail:
                        print(f"    | {ln}")
            sys.stdout.flush()
        return r

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs))
    futures = [pool.submit(one, c) for c in order]
    for f in futures:
        while not f.done():
            time.sleep(0.2)      # the main thread stays free for SIGINT/SIGTERM
        f.result()
    pool.shutdown()
    passed = sum(r.passed() for r in results)
    failed = len(results) - passed
    assets.log(f"suite wall time {time.monotonic() - t_suite:.0f}s")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1
