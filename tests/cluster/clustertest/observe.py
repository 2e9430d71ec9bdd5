"""The two views of who serves the address, both stamped with the host's monotonic clock:

- on the wire: busybox `arping -b` on the bridge, one process per observer address, started
  evenly apart so the bridge asks for the address len(OBSERVER_ADDRS) times a second. Each
  runs on a pty (line-buffered) and every reply is kept with its MAC. A round (one arping's
  replies to one request) with two MACs is a moment when both nodes answered.
- in the guests: guest/lib.sh's reporter prints `CL: vip=0|1` on the serial console when the
  answer changes and at least every 0.5 s: 1 when the node has the address on an interface
  that is UP. A report holds until the next one, but never longer than HOLD_S (a frozen or
  rebooting node claims nothing).
"""

import os
import pty
import re
import subprocess
import threading
import time

from . import config

REPLY_RE = re.compile(r"reply from (\d+\.\d+\.\d+\.\d+) \[([0-9A-Fa-f:]{17})\]")
ROUND_GAP_S = 0.5          # replies of one arping further apart than this answer different requests
HOLD_S = 1.0
ARPING_DEADLINE_S = 1000    # busybox arping: at most 1073 s; a case is shorter
REPORT_RE = r"CL: vip=([01])"


class ArpObserver:
    def __init__(self, janitor, netns, workdir):
        self.janitor = janitor
        self.netns = netns
        self.log = open(os.path.join(workdir, "arp.log"), "w")
        self.lock = threading.Lock()
        self.replies = []      # (host time, instance, mac)
        self.procs = []
        self.threads = []
        self.fds = []
        self.t_start = time.monotonic()

    def start(self):
        n = len(config.OBSERVER_ADDRS)
        for i, src in enumerate(config.OBSERVER_ADDRS):
            master, slave = pty.openpty()
            argv = self.netns.exec_prefix() + ["busybox", "arping", "-b", "-I", config.BRIDGE,
                                               "-s", src, "-w", str(ARPING_DEADLINE_S), config.VIP]
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                                 close_fds=True)
            os.close(slave)
            self.janitor.add("procs", p)
            self.procs.append(p)
            self.fds.append(master)
            t = threading.Thread(target=self._reader, args=(i, master), daemon=True)
            t.start()
            self.threads.append(t)
            if i + 1 < n:
                time.sleep(1.0 / n)

    def _reader(self, i, fd):
        buf = b""
        while True:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            now = time.monotonic()
            buf += data
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                text = raw.decode("utf-8", "replace").strip()
                m = REPLY_RE.search(text)
                with self.lock:
                    if not self.log.closed:
                        self.log.write(f"{now - self.t_start:9.3f} [{i}] {text}\n")
                        self.log.flush()
                    if m and m.group(1) == config.VIP:
                        self.replies.append((now, i, m.group(2).lower()))

    def dead(self):
        """The arpings that ended on their own (the observer lost its view), with what they said."""
        return [i for i, p in enumerate(self.procs) if p.poll() is not None]

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(3)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            self.janitor.discard("procs", p)
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        for t in self.threads:
            t.join(2)
        with self.lock:
            self.log.close()

    # ------------------------------------------------------------------ analysis
    def rounds(self, t_from, t_to):
        """[(time of the round's first reply, set of MACs)] over every arping."""
        with self.lock:
            replies = [r for r in self.replies if t_from <= r[0] <= t_to]
        out = []
        for i in range(len(config.OBSERVER_ADDRS)):
            cur = None
            for t, inst, mac in replies:
                if inst != i:
                    continue
                if cur is None or t - cur[2] > ROUND_GAP_S:
                    cur = [t, set(), t]
                    out.append(cur)
                cur[1].add(mac)
                cur[2] = t
        return sorted((r[0], r[1]) for r in out)

    def dual(self, t_from, t_to):
        """(seconds both nodes answered, first such moment or None): each round with two
        MACs stands for 1/len(OBSERVER_ADDRS) s, the time between two probes."""
        both = [t for t, macs in self.rounds(t_from, t_to) if len(macs) > 1]
        return len(both) / len(config.OBSERVER_ADDRS), (both[0] if both else None)

    def first_reply(self, mac, after, before=float("inf")):
        with self.lock:
            for t, _i, m in self.replies:
                if m == mac and after <= t <= before:
                    return t
        return None

    def last_reply(self, mac, after, before=float("inf")):
        with self.lock:
            ts = [t for t, _i, m in self.replies if m == mac and after <= t <= before]
        return ts[-1] if ts else None

    def count(self, mac, after, before=float("inf")):
        with self.lock:
            return sum(1 for t, _i, m in self.replies if m == mac and after <= t <= before)


def reports(guest):
    """[(host time, 0|1)] of a guest's reporter lines."""
    return [(t, int(m.group(1))) for t, m in guest.matching(REPORT_RE)]


def active_intervals(samples, t_end):
    """The times a node claimed the address: each vip=1 report until the next report, at
    most HOLD_S."""
    out = []
    for k, (t, v) in enumerate(samples):
        if v != 1:
            continue
        nxt = samples[k + 1][0] if k + 1 < len(samples) else t_end
        end = min(nxt, t + HOLD_S, t_end)
        if out and t <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([t, end])
    return out


def overlap(a, b, t_from, t_to):
    """(total seconds, first moment) where interval lists a and b overlap within [t_from, t_to]."""
    total, first = 0.0, None
    for s1, e1 in a:
        for s2, e2 in b:
            s, e = max(s1, s2, t_from), min(e1, e2, t_to)
            if e > s:
                total += e - s
                first = s if first is None else min(first, s)
    return total, first


def first_claim(samples, after, before=float("inf")):
    for t, v in samples:
        if v == 1 and after <= t <= before:
            return t
    return None
