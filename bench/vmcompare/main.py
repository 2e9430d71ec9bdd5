"""bench/vm-compare: wdfeed against Debian's watchdog 5.16 inside QEMU guests on real kernel
watchdog drivers (the VM suite's kernel, init and scenarios, reused read-only from tests/vm):

  false-fences  the healthy node under stress-ng, both daemons at once, resets counted
  detection     the suite's faults with watchdog 5.16, then the suite itself for wdfeed
  footprint     exec -> first pet seen by QEMU, memory, threads and CPU time when idle

It measures and prints; it asserts nothing. Logs go under target/vm-compare/<date-time>/."""

import argparse
import os
import platform
import subprocess
import sys
import threading
import time

from . import detection, falsefence, footprint
from .prep import REPO, Context, SetupError, assets

PARTS = ("false-fences", "detection", "footprint")


class Out:
    """Prints a line and keeps it in the run's summary.txt."""

    def __init__(self, path):
        self.f = open(path, "w")
        self.lock = threading.Lock()

    def __call__(self, line=""):
        with self.lock:
            print(line, flush=True)
            self.f.write(line + "\n")
            self.f.flush()


def host_facts(ctx, out):
    qemu_v = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                            text=True).stdout.splitlines()[0]
    rev = subprocess.run(["git", "log", "-1", "--format=%h", "--", "src", "Cargo.toml", "Cargo.lock"],
                         cwd=REPO, capture_output=True, text=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                          text=True).stdout.strip()
    wdfeed_v = subprocess.run([ctx.wdfeed, "--version"], capture_output=True, text=True).stdout.strip()
    out(f"host: kernel {platform.release()}, {os.cpu_count()} cpus, {qemu_v}")
    out(f"guest: kernel {ctx.kernel_release}, TCG, 1 vCPU, 384 MiB, -no-reboot")
    out(f"daemons: {wdfeed_v} (sources of {rev}, tree at {head}, {os.path.relpath(ctx.wdfeed, REPO)}); "
        f"watchdog {ctx.wd_version} (Debian package, {os.path.relpath(ctx.wd516, REPO)})")


def main(argv):
    ap = argparse.ArgumentParser(prog="bench/vm-compare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", choices=PARTS,
                    help="run only this part (repeatable; default: all three)")
    ap.add_argument("--false-fence-secs", type=int, default=600,
                    help="loaded seconds watched per daemon (default 600)")
    ap.add_argument("--detect-secs", type=int, default=150,
                    help="seconds watchdog 5.16's guest is watched after each fault (default 150)")
    ap.add_argument("--footprint-secs", type=int, default=120,
                    help="idle seconds before the footprint sample (default 120)")
    ap.add_argument("--footprint-jobs", type=int, default=1, choices=(1, 2),
                    help="footprint VMs at a time (default 1: no neighbour on the host's cores)")
    ap.add_argument("--footprint-variants", nargs="+", choices=[v for v, _ in footprint.VARIANTS],
                    help="footprint daemons to boot (default: all three)")
    ap.add_argument("--scenarios", nargs="+", default=list(detection.SCENARIOS),
                    choices=list(detection.SCENARIOS), help="detection scenarios (default: all)")
    ap.add_argument("--wdfeed", metavar="PATH", help="boot this wdfeed binary instead of building this tree's")
    args = ap.parse_args(argv)
    parts = args.only or list(PARTS)
    if args.footprint_secs <= footprint.SAMPLE1_S:
        ap.error(f"--footprint-secs must be more than {footprint.SAMPLE1_S}")
    if os.geteuid() != 0:
        print("bench/vm-compare: run it as root (apt-get, QEMU, qemu-nbd)", file=sys.stderr)
        return 2
    outdir = os.path.join(REPO, "target", "vm-compare", time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(outdir, exist_ok=True)
    out = Out(os.path.join(outdir, "summary.txt"))
    out(f"# bench/vm-compare {' '.join(argv)}  ({time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())})")
    ctx = Context(outdir, os.path.abspath(args.wdfeed) if args.wdfeed else None)
    try:
        ctx.prepare()
    except (SetupError, subprocess.CalledProcessError) as e:
        out(f"set-up failed: {e}")
        return 1
    host_facts(ctx, out)
    assets.log(f"logs in {outdir}")
    t0 = time.monotonic()
    if "false-fences" in parts:
        falsefence.run(ctx, outdir, args.false_fence_secs, out)
    if "detection" in parts:
        detection.run(ctx, outdir, args.detect_secs, args.scenarios, out)
    if "footprint" in parts:
        footprint.run(ctx, outdir, args.footprint_secs, out, jobs=args.footprint_jobs,
                      only=args.footprint_variants)
    out(f"# done in {time.monotonic() - t0:.0f}s; logs in {os.path.relpath(outdir, REPO)}")
    return 0
