"""The one cluster harness: what every two-node suite shares, whatever its HA engine.

An engine (keepalived.py, pacemaker.py, heartbeat.py) is a plug-in: its cases as data, its
packages and images (`prepare`), each guest's archive and disks (`guest_spec`), how the case
is driven and judged (`drive`: who serves, the fault, the verdict) and what it reads after
the guests are gone (`finish`). This module owns the rest: the private network, the ARP
observer, the guests' life, the fault injection shared by every engine, the command line,
the output and the cleanup on every way out.
"""

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

from . import images, netns, observe

SOFTDOG_LINE = r"softdog: Initiating system reboot"
FENCE_LINE = r"fencing check=.*"


def slack(bound):
    """The allowance of tests/vm (docs/VM-SUITE.md, "Slack"): TCG guests on a shared 2-core
    host run every step of the fence 10 to 50 times slower than hardware."""
    return 1.0 + 0.1 * bound


def fmt(x):
    return "none" if x is None else f"{x:.2f}"


class CaseError(Exception):
    """The case cannot go on; the message says which step and why."""


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
        self.mods = None
        self.wdfeed = None
        self.index = 0
        self.lock = threading.Lock()

    def next_index(self):
        with self.lock:
            self.index += 1
            return self.index


class Engine:
    """What a suite's HA engine supplies. Subclasses set the class attributes and override
    the methods; `cases` maps a name to a case object with at least `name`, `doc` and
    `baseline` (False: judged with wdfeed only)."""
    name = ""                  # the command-line flag (--pacemaker) and the log prefix
    outdir_prefix = ""         # target/cluster/<prefix><date-time>
    cases = {}
    ci = []                    # the `ci` word's cases
    default_jobs = 1           # cases (sets of guests) at a time
    result_class = Result
    append = "console=ttyS0 panic=0 quiet rdinit=/init"

    def log(self, msg):
        print(f"{self.name or 'cluster'}: {msg}", flush=True)

    def prepare(self, ctx):
        """Packages, kernel, images: everything the cases share. Raises vm.SetupError."""
        raise NotImplementedError

    def node_names(self, case):
        raise NotImplementedError

    def node(self, name):
        """{"addr", "mac", "tap", "mem"} of a node."""
        raise NotImplementedError

    def node_dir(self, name):
        return str(name)

    def guest_spec(self, ctx, case, with_wdfeed, node, workdir):
        """(initrds, disks): the images QEMU boots and the guest's disks, [(path, nbd)]."""
        raise NotImplementedError

    def drive(self, ctx, case, with_wdfeed, guests, obs, res):
        raise NotImplementedError

    def finish(self, ctx, case, with_wdfeed, guests, res):
        """After the guests are stopped (their disks are quiet): offline reads. Optional."""

    def estimate_s(self, case, with_wdfeed):
        return 0


# ---------------------------------------------------------------------------- guests

def make_guest(ctx, net, engine, case, with_wdfeed, node, workdir):
    n = engine.node(node)
    os.makedirs(workdir, exist_ok=True)
    initrds, disks = engine.guest_spec(ctx, case, with_wdfeed, node, workdir)
    machine = ["-M", "pc", "-device", "i6300esb", "-action", "watchdog=reset",
               "-netdev", f"tap,id=n0,ifname={n['tap']},script=no,downscript=no",
               "-device", f"virtio-net-pci,netdev=n0,mac={n['mac']}"]
    g = Guest(workdir, machine, ctx.vmlinuz, initrds, engine.append, mem_mb=n["mem"], disks=disks)
    # a reset must reboot the node (the fenced node comes back), and QEMU runs in the
    # case's namespace, where its tap is
    g.argv = net.exec_prefix() + [a for a in g.argv if a != "-no-reboot"]
    g.node = node
    g.disk = disks[0][0] if disks else None
    return g


def send(guest, line):
    guest.proc.stdin.write((line + "\n").encode())
    guest.proc.stdin.flush()


def wait_until(pred, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def expect(guest, pattern, timeout, after, what):
    """(time, match) of the guest's first `CL: <pattern>` line after `after`; raises with the
    guest's own `CL: error ...` line, or says it never came."""
    hit = wait_until(lambda: guest.first_line(rf"CL: ({pattern}|error .*)", after=after) or guest.exited_at,
                     timeout)
    if not isinstance(hit, tuple):
        raise CaseError(f"{guest.node}: no {what} within {timeout}s" + (" (QEMU exited)" if guest.exited_at else ""))
    if hit[1].group(1).startswith("error"):
        raise CaseError(f"{guest.node}: {hit[1].group(1)}")
    return hit


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


def bound_of(guest):
    """wdfeed's fence bound from its armed line, or raises."""
    b = guest.first_line(r"fence_bound_s=([0-9.]+)")
    if b is None:
        raise CaseError(f"{guest.node}: wdfeed printed no fence bound (no fence_bound_s= line)")
    return float(b[1].group(1))


def inject(guest, fault, freeze_s=0.0, notes=None):
    """The faults every engine shares, on one guest. Returns (t0, t_reset_ref): when the fault
    began, and where a reset is counted from (the SIGCONT of a freeze, else t0).
    - "guest:<what>": the guest's init injects it (`fault <what>`) and prints `CL: fault <what>`
      just before it acts;
    - "stop-nbd": the guest writes to its first disk, whose qemu-nbd is then SIGSTOPped;
    - "freeze": the guest's QEMU is SIGSTOPped for freeze_s, then SIGCONTinued."""
    if fault.startswith("guest:"):
        what = fault.split(":", 1)[1]
        send(guest, f"fault {what}")
        t0 = expect(guest, rf"fault {what}", 30, 0, f"fault {what}")[0]
        return t0, t0
    if fault == "stop-nbd":
        send(guest, "writer")
        expect(guest, r"writer started", 30, 0, "writer")
        time.sleep(1)
        t0 = guest.sigstop("nbd")
        if notes is not None:
            notes.append(f"{guest.node}'s qemu-nbd SIGSTOPped")
        return t0, t0
    if fault == "freeze":
        t0 = guest.sigstop("qemu")
        time.sleep(freeze_s)
        t1 = guest.sigcont("qemu")
        if notes is not None:
            notes.append(f"{guest.node}'s QEMU SIGSTOPped for {t1 - t0:.2f}s; reset counts from SIGCONT, "
                         "takeover from SIGSTOP")
        return t0, t1
    raise ValueError(f"unknown fault {fault}")


# ---------------------------------------------------------------------------- one case

def run_case(ctx, engine, case, with_wdfeed):
    res = engine.result_class(case.name, with_wdfeed)
    t_case = time.monotonic()
    res.workdir = os.path.join(ctx.outdir, f"{engine.outdir_prefix}{case.name}-{'wdfeed' if with_wdfeed else 'baseline'}")
    os.makedirs(res.workdir, exist_ok=True)
    nodes = engine.node_names(case)
    net = netns.Network(ctx.janitor, ctx.next_index(), taps=[engine.node(n)["tap"] for n in nodes])
    guests, obs = {}, None
    try:
        net.create()
        obs = observe.ArpObserver(ctx.janitor, net, res.workdir)
        for node in nodes:
            g = make_guest(ctx, net, engine, case, with_wdfeed, node, os.path.join(res.workdir, engine.node_dir(node)))
            ctx.janitor.add("guests", g)
            guests[node] = g
        obs.start()
        for g in guests.values():
            g.start()
        engine.drive(ctx, case, with_wdfeed, guests, obs, res)
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
            res.tails[g.node] = g.tail(40, skip=r"CL: vip=")
        net.delete()
    try:
        engine.finish(ctx, case, with_wdfeed, guests, res)
    except CaseError as e:
        res.ok = False
        res.reason = "; ".join(x for x in (res.reason, str(e)) if x)
    except Exception as e:
        res.ok = False
        res.reason = "; ".join(x for x in (res.reason, f"harness error after the case: {type(e).__name__}: {e}") if x)
    res.wall = time.monotonic() - t_case
    if res.passed():
        for g in guests.values():
            for big in [p for p, _nbd in g.disks] + [os.path.join(g.workdir, "initrd.cpio")]:
                if big and os.path.exists(big):
                    os.unlink(big)
    return res


# ---------------------------------------------------------------------------- the command line

def selected(engine, names, variant):
    """[(case, with_wdfeed)] for the command-line words: case names, `all` (also: none) or `ci`."""
    if not names or names == ["all"]:
        names = list(engine.cases)
    elif names == ["ci"]:
        names = list(engine.ci)
    bad = [n for n in names if n not in engine.cases]
    if bad:
        flag = f" --{engine.name}" if engine.name != "keepalived" else ""
        raise SystemExit(f"tests/cluster/run{flag}: unknown case {', '.join(bad)} "
                         f"(known: {', '.join(engine.cases)}, all, ci)")
    out = []
    for n in names:
        c = engine.cases[n]
        if variant in ("both", "baseline", "none") and getattr(c, "baseline", True):
            out.append((c, False))
        if variant in ("both", "wdfeed"):
            out.append((c, True))
    return out


def main(engine, argv, doc):
    flag = "" if engine.name == "keepalived" else f" --{engine.name}"
    ap = argparse.ArgumentParser(prog=f"tests/cluster/run{flag}", description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="cases, `all` (the default) or `ci` (the CI set)")
    ap.add_argument("-j", "--jobs", type=int, default=engine.default_jobs,
                    help=f"cases at a time (default {engine.default_jobs})")
    ap.add_argument("--variant", choices=("both", "wdfeed", "baseline", "none"), default="both",
                    help="with wdfeed, without it (the baseline; `none` is the same), or both (default)")
    ap.add_argument("--wdfeed", metavar="PATH", help="use this wdfeed binary instead of building this tree's")
    ap.add_argument("--list", action="store_true", help="list the cases, one a line")
    args = ap.parse_args(argv)
    if args.list:
        for c in engine.cases.values():
            tags = (" [ci]" if c.name in engine.ci else "") + ("" if getattr(c, "baseline", True)
                                                               else " [with wdfeed only]")
            print(f"{c.name:26} {c.doc}{tags}")
        return 0
    selection = selected(engine, args.names, args.variant)
    t_suite = time.monotonic()
    outdir = os.path.join(images.REPO, "target", "cluster", engine.outdir_prefix + time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(outdir, exist_ok=True)
    janitor = netns.Janitor()
    ctx = Context(outdir, janitor)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return run_all(engine, ctx, args, selection, t_suite)
    except KeyboardInterrupt as e:
        engine.log(f"interrupted ({e or 'SIGINT'}): stopping the guests, deleting the namespaces")
        janitor.cleanup()
        sys.stdout.flush()
        os._exit(130)
    finally:
        janitor.cleanup()


def build_wdfeed(engine, prebuilt):
    if prebuilt:
        return os.path.abspath(prebuilt)
    return vm.build_release("wdfeed")


def run_all(engine, ctx, args, selection, t_suite):
    netns.remove_stale()
    try:
        images.ensure_host_packages()
        ctx.vmlinuz, ctx.moddir = vm.ensure_kernel()
        ctx.mods = vm.Modules(ctx.moddir)
        ctx.wdfeed = build_wdfeed(engine, args.wdfeed)
        engine.prepare(ctx)
    except (vm.SetupError, subprocess.CalledProcessError) as e:
        engine.log(f"set-up failed: {e}")
        for c, w in selection:
            print(engine.result_class(c.name, w, reason="set-up failed").line())
        print(f"0 passed, {len(selection)} failed")
        return 1
    engine.log(f"{len(selection)} cases, {args.jobs} at a time, logs in {ctx.outdir}")
    order = sorted(selection, key=lambda c: -engine.estimate_s(*c)) if args.jobs > 1 else selection
    lock = threading.Lock()
    results = []

    def one(c):
        r = run_case(ctx, engine, *c)
        with lock:
            results.append(r)
            print(r.line(), flush=True)
            if r.reason:
                print("    reason: " + r.reason.replace("\n", "\n      "))
            for n in r.notes:
                print(f"    {n}")
            print(f"    case wall time {r.wall:.1f}s, logs {r.workdir}")
            if r.verdict() == "FAIL":
                for node, tail in sorted(r.tails.items(), key=lambda kv: str(kv[0])):
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
    engine.log(f"suite wall time {time.monotonic() - t_suite:.0f}s")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1
