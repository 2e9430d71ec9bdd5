"""The two-node Pacemaker suite (docs/PACEMAKER.md, "Test plan"): n1 and n2 run corosync,
corosync-qdevice, diskless sbd on softdog and Pacemaker with an IPaddr2 address and a Dummy
resource; q runs corosync-qnetd (the third vote). The fault goes on n1, which runs the
resources; each case runs without wdfeed (the baseline: figures only) and with it (judged).

    tests/cluster/run --pacemaker [--variant both|wdfeed|baseline] [--list] [CASE ...|all]
"""

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from vmtest import assets as vm
from vmtest.qemu import Guest

from . import netns, observe, pcmk_assets, pcmk_config as pc
from .suite import CaseError, Context, Result, fmt, reset_time, send, slack, wait_until

APPEND = "console=ttyS0 panic=0 quiet rdinit=/init"
MEM_MB = {"n1": 512, "n2": 512, "q": 384}   # q unpacks the same 70 MB initramfs
BOOT_TIMEOUT_S = 420      # QEMU start to the resources running on n1 (three TCG guests)
ARM_TIMEOUT_S = 60
SETTLE_S = 5
FREEZE_S = 15
HEALTHY_S = 180
BASELINE_WATCH_S = 60     # after the fault: token + F (22 s) + the resources' start, and more
AFTER_TAKEOVER_S = 5


@dataclass(frozen=True)
class Case:
    name: str
    doc: str
    guest_fault: str = ""
    host_fault: str = ""       # "stop-nbd" or "freeze"
    nbd: bool = False
    healthy: bool = False
    two_node: bool = False     # no qdevice: quorum two_node, no q (the documented defect)


CASES = {c.name: c for c in [
    Case("ext4-error", "ext4 error on n1's /srv (errors=remount-ro): the seed", guest_fault="ext4-error"),
    Case("healthy-load", "heavy load on n1 for 3 min: nothing may happen", healthy=True),
    Case("heartbeat-stopped", "corosync on n1 SIGSTOPped", guest_fault="corosync-stop"),
    Case("stuck-disk", "n1's qemu-nbd (its data disk) SIGSTOPped", host_fault="stop-nbd", nbd=True),
    Case("freeze", f"n1's QEMU SIGSTOPped {FREEZE_S} s, then thawed", host_fault="freeze"),
    Case("two-node-diskless", "two_node quorum, no qnetd, n1's corosync SIGKILLed: the survivor "
         "resets too (baseline of the defect)", guest_fault="corosync-kill", two_node=True),
]}
CI_SUBSET = ["ext4-error", "healthy-load"]


class PResult(Result):
    fatal = 0
    peer_reset = None
    early = ()

    def line(self):
        return super().line() + f" fatal={self.fatal}"


def prepare(ctx):
    pcmk_assets.assets.ensure_host_packages()
    ctx.vmlinuz, ctx.moddir = vm.ensure_kernel()
    root = pcmk_assets.ensure_packages()
    ctx.initramfs = pcmk_assets.build_initramfs(ctx.vmlinuz, ctx.moddir, ctx.wdfeed, root)
    ctx.mods = vm.Modules(ctx.moddir)


def node_archive(ctx, case, with_wdfeed, node, path):
    n = pc.NODES[node]
    cpio = vm.Cpio()
    cpio.file("case.modules", "".join(f"{m}\n" for m in ctx.mods.closure(pcmk_assets.MODULES)))
    env = {"NODE": node, "ADDR": n["addr"], "VIP": pc.VIP, "WDFEED": "yes" if with_wdfeed else "no",
           "ARM_TIMEOUT": ARM_TIMEOUT_S, "QDEVICE": "no" if case.two_node else "yes",
           "COROSYNC_LINES": pc.COROSYNC_LINES, "PACEMAKER_LINES": pc.PACEMAKER_LINES}
    cpio.file("case.env", "".join(f"{k}='{v}'\n" for k, v in env.items()))
    cpio.file("etc/corosync/corosync.conf", pc.corosync_conf(not case.two_node))
    cpio.file("etc/default/sbd", pc.SBD_ENV)
    cpio.file("etc/wdfeed/watchdog.yaml", pc.wdfeed_yaml())
    if node == pc.OWNER:
        cpio.file("cib.sh", pc.CIB_SH, 0o755)
    with open(path, "wb") as f:
        f.write(cpio.finish())


def make_guest(ctx, net, case, with_wdfeed, node, workdir):
    n = pc.NODES[node]
    os.makedirs(workdir, exist_ok=True)
    disk = None
    if node != pc.QNETD:
        disk = os.path.join(workdir, "data.img")
        vm.make_ext4(disk, 64)
    archive = os.path.join(workdir, "node.cpio")
    node_archive(ctx, case, with_wdfeed, node, archive)
    nbd = case.nbd and node == pc.OWNER
    machine = ["-M", "pc", "-device", "i6300esb", "-action", "watchdog=reset",
               "-netdev", f"tap,id=n0,ifname={n['tap']},script=no,downscript=no",
               "-device", f"virtio-net-pci,netdev=n0,mac={n['mac']}"]
    g = Guest(workdir, machine, ctx.vmlinuz, [ctx.initramfs, archive], APPEND, mem_mb=MEM_MB[node],
              disk=None if nbd else disk, nbd_image=disk if nbd else None)
    g.argv = net.exec_prefix() + [a for a in g.argv if a != "-no-reboot"]
    g.node = node
    g.disk = disk
    return g


def expect(guest, pattern, timeout, after, what):
    hit = wait_until(lambda: guest.first_line(rf"CL: ({pattern}|error .*)", after=after) or guest.exited_at,
                     timeout)
    if not isinstance(hit, tuple):
        raise CaseError(f"{guest.node}: no {what} within {timeout}s" + (" (QEMU exited)" if guest.exited_at else ""))
    if hit[1].group(1).startswith("error"):
        raise CaseError(f"{guest.node}: {hit[1].group(1)}")
    return hit


def fatal_lines(guest, after=0.0):
    return guest.matching(pc.FATAL_LINES, after=after)


def run_case(ctx, case, with_wdfeed):
    res = PResult(case.name, with_wdfeed)
    t_case = time.monotonic()
    res.workdir = os.path.join(ctx.outdir, f"pcmk-{case.name}-{'wdfeed' if with_wdfeed else 'baseline'}")
    os.makedirs(res.workdir, exist_ok=True)
    nodes = ["n1", "n2"] if case.two_node else ["q", "n1", "n2"]
    net = netns.Network(ctx.janitor, ctx.next_index(), taps=[pc.NODES[n]["tap"] for n in nodes])
    guests, obs = {}, None
    try:
        net.create()
        obs = observe.ArpObserver(ctx.janitor, net, res.workdir)
        for node in nodes:
            g = make_guest(ctx, net, case, with_wdfeed, node, os.path.join(res.workdir, node))
            ctx.janitor.add("guests", g)
            guests[node] = g
        obs.start()
        for g in guests.values():
            g.start()
        drive(case, with_wdfeed, guests, obs, res)
    except CaseError as e:
        res.reason = str(e)
    except Exception as e:      # a harness error fails the case, with its cause
        res.reason = f"harness error: {type(e).__name__}: {e}"
    finally:
        if obs:
            obs.stop()
        for g in guests.values():
            g.stop()
            ctx.janitor.discard("guests", g)
            res.tails[g.node] = g.tail(40)
        net.delete()
        res.wall = time.monotonic() - t_case
        if res.passed():
            for g in guests.values():
                for big in (g.disk, os.path.join(g.workdir, "initrd.cpio")):
                    if big and os.path.exists(big):
                        os.unlink(big)
    return res


def drive(case, with_wdfeed, guests, obs, res):
    n1, n2 = guests["n1"], guests["n2"]
    mac1, mac2 = pc.NODES["n1"]["mac"], pc.NODES["n2"]["mac"]
    t_boot = n1.t_start
    if "q" in guests:
        expect(guests["q"], r"ready qnetd", BOOT_TIMEOUT_S, 0, "qnetd")
    for g in (n1, n2):
        expect(g, r"stack started", BOOT_TIMEOUT_S, 0, "cluster stack")
    up = expect(n1, r"cluster-up", BOOT_TIMEOUT_S, 0, "DC with both nodes online")
    res.notes.append(f"boot to a DC with both nodes online: {up[0] - t_boot:.1f}s after QEMU started "
                     f"({up[1].group(1)})")
    expect(n1, r"cib configured", 60, 0, "CIB")
    claim = wait_until(lambda: observe.first_claim(observe.reports(n1), up[0]), 120)
    if claim is None:
        raise CaseError("n1 never brought up the service address")
    t_ready = claim
    res.notes.append(f"svc on n1 (reporter vip=1) {t_ready - t_boot:.1f}s after QEMU started")
    if with_wdfeed:
        b = n1.first_line(r"fence_bound_s=([0-9.]+)")
        if b is None:
            raise CaseError("wdfeed printed no fence bound (no fence_bound_s= line)")
        res.bound = float(b[1].group(1))
    time.sleep(SETTLE_S)
    t_pre = time.monotonic() - 2
    if obs.count(mac1, t_pre) == 0:
        raise CaseError("n1 does not answer ARP for the address before the fault")
    if obs.count(mac2, t_ready) > 0:
        raise CaseError("n2 answered ARP for the address before the fault")

    # ---- the fault
    t_reset_ref = None
    if case.healthy:
        send(n1, "load")
        t0 = expect(n1, r"load started", 30, 0, "load")[0]
        time.sleep(HEALTHY_S)
    elif case.guest_fault:
        send(n1, f"fault {case.guest_fault}")
        t0 = expect(n1, rf"fault {case.guest_fault}", 30, 0, "fault")[0]
    elif case.host_fault == "stop-nbd":
        send(n1, "writer")
        expect(n1, r"writer started", 30, 0, "writer")
        time.sleep(1)
        t0 = n1.sigstop("nbd")
    else:
        t0 = n1.sigstop("qemu")
        time.sleep(FREEZE_S)
        t_reset_ref = n1.sigcont("qemu")
        res.notes.append(f"n1's QEMU SIGSTOPped {t_reset_ref - t0:.2f}s; reset counts from SIGCONT")
    t_reset_ref = t_reset_ref or t0

    # ---- what follows: until n2 serves (or the window closes), and a little more
    if case.healthy:
        t_end = time.monotonic()
    else:
        window = BASELINE_WATCH_S
        if with_wdfeed:
            window = max(window, res.bound + slack(res.bound) + 5)
        if case.two_node:       # what is awaited is the survivor's own reset
            taken = wait_until(lambda: reset_time(n2, t0), window)
        else:
            taken = wait_until(lambda: observe.first_claim(observe.reports(n2), t0), window)
        if taken:
            time.sleep(AFTER_TAKEOVER_S)
        if case.host_fault == "stop-nbd" and n1.nbd and n1.nbd.pid in n1._stopped:
            n1.sigcont("nbd")
        if with_wdfeed and reset_time(n1, t_reset_ref) is None:
            wait_until(lambda: reset_time(n1, t_reset_ref), max(0.0, t_reset_ref + res.bound
                                                                  + slack(res.bound) - time.monotonic()))
        t_end = time.monotonic()

    # ---- figures
    if obs.dead():
        raise CaseError(f"the ARP observer's arping {obs.dead()} ended early: see arp.log")
    rep1, rep2 = observe.reports(n1), observe.reports(n2)
    act1, act2 = observe.active_intervals(rep1, t_end), observe.active_intervals(rep2, t_end)
    dual_rep, _ = observe.overlap(act1, act2, t_ready, t_end)
    dual_arp, _ = obs.dual(t_ready, t_end)
    res.dual = max(dual_arp, dual_rep)
    res.measured = True
    res.notes.append(f"dual_active by ARP {dual_arp:.2f}s, by the reporters {dual_rep:.2f}s")
    claims = [t for t in (obs.first_reply(mac2, t0), observe.first_claim(rep2, t0)) if t is not None]
    res.takeover = (min(claims) - t0) if claims else None
    t_r = reset_time(n1, t_reset_ref, t_end)
    res.reset = (t_r - t_reset_ref) if t_r else None
    last1 = obs.last_reply(mac1, t0, t_end)
    if last1 is not None:
        res.notes.append(f"n1's last ARP reply at +{last1 - t0:.2f}s")
    fence = n1.first_line(r"fencing check=.*", after=t0)
    t_fence = fence[0] if fence and fence[0] <= t_end else None
    if t_fence:
        res.notes.append(f"wdfeed fenced {t_fence - t0:.2f}s after the fault: {fence[1].group(0)[:140]}")
    for pat, what in ((r"softdog: Initiating system reboot", "softdog fired"),
                      (r"Waiting \d+s for n1 to self-fence", "n2's fencer waits"),
                      (r"Self-fencing .* assumed complete", "n2: self-fencing assumed complete"),
                      (r"CL: exited (sbd|corosync) rc=\d+", "exited")):
        for g in (n1, n2):
            hit = g.first_line(pat, after=t0)
            if hit and hit[0] <= t_end:
                res.notes.append(f"{what} ({g.node}) at +{hit[0] - t0:.2f}s: {hit[1].group(0)[:100]}")
    fatal = fatal_lines(n1) + fatal_lines(n2)
    res.fatal = len(fatal)
    for t, m in fatal[:3]:
        res.notes.append(f"fatal: {m.string[:160]}")
    # a fence before the fault is a false fence, whatever follows (a reset boots /init again,
    # so the case then ran on the node's second boot)
    res.early = [(g.node, m.group(0)[:120]) for g in (n1, n2)
                 for t, m in g.matching(r"wdfeed: FENCE .*") if t < t0]
    for node, line in res.early:
        res.notes.append(f"{node} fenced before the fault: {line}")
    peer_reset = reset_time(n2, t0, t_end)
    res.peer_reset = (peer_reset - t0) if peer_reset else None
    if peer_reset:
        res.notes.append(f"n2 was reset at +{peer_reset - t0:.2f}s")
    if not with_wdfeed:
        return
    judge(case, res, t0, t_fence, obs, mac1, t_end)


def judge(case, res, t0, t_fence, obs, mac1, t_end):
    failed = [f"wdfeed fenced {node} before the fault (a false fence): {line}" for node, line in res.early]
    if case.two_node:
        # the documented defect: with two_node and diskless sbd, the survivor resets too.
        # The case passes when that is seen (docs/PACEMAKER.md, "Quorum")
        if res.peer_reset is None:
            failed.append("n2 (the survivor) was not reset: the two_node defect was not seen")
        res.reason = "; ".join(failed)
        res.ok = not failed
        return
    if res.peer_reset is not None:
        failed.append(f"n2 was reset at +{res.peer_reset:.2f}s")
    if res.fatal:
        failed.append(f"{res.fatal} fatal lines from pacemaker-controld or pacemakerd")
    if res.dual > 0:
        failed.append(f"both nodes served the address for {res.dual:.2f}s")
    if case.healthy:
        if t_fence or res.reset is not None:
            failed.append(f"the healthy n1 was fenced or reset (reset at {fmt(res.reset)}s)")
        if res.takeover is not None:
            failed.append(f"n2 took the address {res.takeover:.2f}s into the load")
        if obs.count(mac1, t_end - 2, t_end) == 0:
            failed.append("n1 stopped answering ARP under load")
        res.reason = "; ".join(failed)
        res.ok = not failed
        return
    if t_fence is None and case.host_fault != "freeze":
        failed.append("wdfeed never logged 'fencing'")
    fence_rel = 0.0 if (case.host_fault == "freeze" or t_fence is None) else t_fence - t0
    want = fence_rel + pc.TOKEN_MS / 1000 + pc.FENCING_WATCHDOG_TIMEOUT_S + TAKEOVER_SLACK_S
    if res.takeover is None or res.takeover > want:
        failed.append(f"n2 served {fmt(res.takeover)}s after the fault, not within {want:.2f}s "
                      f"(fence + token + F + {TAKEOVER_SLACK_S}s)")
    limit = res.bound + slack(res.bound)
    if res.reset is None or res.reset > limit:
        failed.append(f"n1 was reset after {fmt(res.reset)}s, not within the bound {res.bound:.2f}s "
                      f"+ slack {slack(res.bound):.2f}s")
    res.reason = "; ".join(failed)
    res.ok = not failed


# the peer's membership change, the scheduler and the resources' start on a TCG guest
TAKEOVER_SLACK_S = 20


# ---------------------------------------------------------------------------- main

def selected(names, variant):
    if not names or names == ["all"]:
        names = list(CASES)
    elif names == ["ci"]:
        names = CI_SUBSET
    bad = [n for n in names if n not in CASES]
    if bad:
        raise SystemExit(f"tests/cluster/run --pacemaker: unknown case {', '.join(bad)} "
                         f"(known: {', '.join(CASES)}, all, ci)")
    out = []
    for n in names:
        for w in (False, True):
            if variant == "both" or (variant == "wdfeed") == w:
                out.append((CASES[n], w))
    return out


def main(argv):
    ap = argparse.ArgumentParser(prog="tests/cluster/run --pacemaker", description=__doc__)
    ap.add_argument("names", nargs="*", help="cases, `all` (the default) or `ci` (the CI subset)")
    ap.add_argument("--variant", choices=("both", "wdfeed", "baseline"), default="both")
    ap.add_argument("--wdfeed", metavar="PATH", help="use this wdfeed binary instead of building this tree's")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        for c in CASES.values():
            print(f"{c.name:18} {c.doc}{' [ci]' if c.name in CI_SUBSET else ''}")
        return 0
    selection = selected(args.names, args.variant)
    t_suite = time.monotonic()
    outdir = os.path.join(pcmk_assets.assets.REPO, "target", "cluster", "pcmk-" + time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(outdir, exist_ok=True)
    janitor = netns.Janitor()
    ctx = Context(outdir, janitor)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        netns.remove_stale()
        try:
            if args.wdfeed:
                ctx.wdfeed = os.path.abspath(args.wdfeed)
            else:
                ctx.wdfeed = vm.build_release("wdfeed")
            prepare(ctx)
        except (vm.SetupError, subprocess.CalledProcessError) as e:
            print(f"pacemaker: set-up failed: {e}", flush=True)
            for c, w in selection:
                print(PResult(c.name, w, reason="set-up failed").line())
            print(f"0 passed, {len(selection)} failed")
            return 1
        pcmk_assets.assets.log(f"pacemaker: {len(selection)} cases, one at a time, logs in {outdir}")
        results = []
        for c, w in selection:
            r = run_case(ctx, c, w)
            results.append(r)
            print(r.line(), flush=True)
            if r.reason:
                print("    reason: " + r.reason)
            for n in r.notes:
                print(f"    {n}")
            print(f"    case wall time {r.wall:.1f}s, logs {r.workdir}")
            if r.verdict() == "FAIL":
                for node, tail in sorted(r.tails.items()):
                    print(f"    --- {node} serial log tail ---")
                    for ln in tail:
                        print(f"    | {ln}")
            sys.stdout.flush()
        passed = sum(r.passed() for r in results)
        pcmk_assets.assets.log(f"pacemaker: suite wall time {time.monotonic() - t_suite:.0f}s")
        print(f"{passed} passed, {len(results) - passed} failed")
        return 0 if passed == len(results) else 1
    except KeyboardInterrupt as e:
        print(f"pacemaker: interrupted ({e or 'SIGINT'}): stopping the guests, deleting the namespaces", flush=True)
        janitor.cleanup()
        sys.stdout.flush()
        os._exit(130)
    finally:
        janitor.cleanup()
