"""The private network of one case: a network namespace named for this run, with a bridge,
the observer's addresses on it and one tap per guest. Nothing is created or changed outside
it, and it is deleted on every way out (the case's own `finally`, and the suite's handler
for exceptions, SIGINT and SIGTERM, through `Janitor`).
"""

import os
import re
import subprocess
import threading

from . import config

PREFIX = "wdfcl"
NAME_RE = re.compile(rf"^{PREFIX}-(\d+)-(\d+)$")


def ip(*args, ns=None, check=True):
    cmd = ["ip"] + (["-n", ns] if ns else []) + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")
    return r


def list_namespaces():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [ln.split()[0] for ln in out.splitlines() if ln.strip()]


def remove_stale():
    """Namespaces this suite made in an earlier run that died without cleaning up (SIGKILL):
    only names of our own pattern whose creating process no longer exists."""
    for name in list_namespaces():
        m = NAME_RE.match(name)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            ip("netns", "delete", name, check=False)


class Janitor:
    """Everything the suite started or created, so that any exit path can end and delete it:
    processes (by the Popen objects we hold), guests and namespaces."""

    def __init__(self):
        self.lock = threading.Lock()
        self.namespaces = set()
        self.guests = set()
        self.procs = set()

    def add(self, kind, obj):
        with self.lock:
            getattr(self, kind).add(obj)

    def discard(self, kind, obj):
        with self.lock:
            getattr(self, kind).discard(obj)

    def cleanup(self):
        with self.lock:
            guests, procs, names = list(self.guests), list(self.procs), list(self.namespaces)
            self.guests.clear()
            self.procs.clear()
            self.namespaces.clear()
        for g in guests:
            try:
                g.stop()
            except Exception:
                pass
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for n in names:
            ip("netns", "delete", n, check=False)


class Network:
    """One case's namespace: br0 with the observer's addresses, tap1 and tap2 enslaved."""

    def __init__(self, janitor, index, taps=None):
        self.janitor = janitor
        self.name = f"{PREFIX}-{os.getpid()}-{index}"
        self.taps = taps or [n["tap"] for n in config.NODES.values()]

    def create(self):
        ip("netns", "add", self.name)
        self.janitor.add("namespaces", self.name)
        ns = self.name
        ip("link", "set", "lo", "up", ns=ns)
        ip("link", "add", config.BRIDGE, "type", "bridge", "forward_delay", "0", "stp_state", "0", ns=ns)
        for a in config.OBSERVER_ADDRS:
            ip("addr", "add", f"{a}/{config.SUBNET_PREFIX}", "dev", config.BRIDGE, ns=ns)
        ip("link", "set", config.BRIDGE, "up", ns=ns)
        for tap in self.taps:
            ip("tuntap", "add", "dev", tap, "mode", "tap", ns=ns)
            ip("link", "set", tap, "master", config.BRIDGE, ns=ns)
            ip("link", "set", tap, "up", ns=ns)

    def exec_prefix(self):
        return ["ip", "netns", "exec", self.name]

    def delete(self):
        ip("netns", "delete", self.name, check=False)
        self.janitor.discard("namespaces", self.name)
