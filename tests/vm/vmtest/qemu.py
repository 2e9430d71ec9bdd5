"""One QEMU guest (and, when asked, the qemu-nbd that serves its data disk), watched from
the host: every serial line and every QMP event is stamped with the host's monotonic clock
as it arrives, so the suite measures real elapsed time, whatever the guest's clock says.

Only processes started here are ever signalled, by the PIDs kept here.
"""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time


class Guest:
    def __init__(self, workdir, machine_args, kernel, initrds, append, mem_mb=384,
                 disk=None, nbd_image=None, trace=(), disks=None, extra_disks=()):
        """`disk` (a raw file) or `nbd_image` (the same, served by qemu-nbd so that the host
        can stall or kill its server) is the guest's one disk; `disks` [(path, nbd)] gives
        several, vda first; `extra_disks` (raw files) follow the one disk (vdb, vdc, ...)."""
        self.workdir = workdir
        self.qmp_path = os.path.join(workdir, "qmp.sock")
        self.lines = []          # (host time, text)
        self.events = []         # (host time, QMP event dict)
        self.pets = []           # host times of watchdog reloads, where QEMU traces them
        self._expired_at = float("-inf")
        self.cond = threading.Condition()
        self.exited_at = None
        self.t_start = None
        self.proc = None
        self._stopped = set()    # processes we SIGSTOPped and must SIGCONT before killing
        self._threads = []
        self._log = open(os.path.join(workdir, "serial.log"), "w")
        initrd = os.path.join(workdir, "initrd.cpio")
        with open(initrd, "wb") as out:
            for part in initrds:
                with open(part, "rb") as f:
                    out.write(f.read())
        self.argv = ["qemu-system-x86_64", "-accel", "tcg", "-smp", "1", "-m", str(mem_mb),
                     "-nodefaults", "-display", "none", "-serial", "stdio", "-monitor", "none",
                     "-qmp", f"unix:{self.qmp_path},server=on,wait=off", "-no-reboot",
                     "-kernel", kernel, "-initrd", initrd, "-append", append] + machine_args
        for t in trace:
            self.argv += ["-trace", t]
        if disks is None:
            disks = [(nbd_image, True)] if nbd_image else [(disk, False)] if disk else []
            disks += [(extra, False) for extra in extra_disks]
        self.disks = list(disks)
        self.nbds = {}           # disk index -> the qemu-nbd serving it (ours)
        self.nbd_paths = {}
        for i, (path, nbd) in enumerate(self.disks):
            if nbd:
                sock = os.path.join(workdir, "nbd.sock" if i == 0 else f"nbd{i}.sock")
                self.nbd_paths[i] = sock
                self.argv += ["-drive", f"file=nbd:unix:{sock},if=none,id=d{i},format=raw,cache=none"]
            else:
                self.argv += ["-drive", f"file={path},if=none,id=d{i},format=raw,cache=unsafe"]
            self.argv += ["-device", f"virtio-blk-pci,drive=d{i}"]

    @property
    def nbd(self):
        """The qemu-nbd of the first disk served that way (the one-disk suites' `nbd`)."""
        return self.nbds[min(self.nbds)] if self.nbds else None

    def start_nbd(self, i):
        """Starts (or starts again, after a kill) the qemu-nbd of disk i on its socket."""
        sock = self.nbd_paths[i]
        if os.path.exists(sock):
            os.unlink(sock)
        err = open(os.path.join(self.workdir, f"qemu-nbd{i}.err"), "a")
        p = subprocess.Popen(["qemu-nbd", "-f", "raw", "-t", "-k", sock, self.disks[i][0]],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        self.nbds[i] = p
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"qemu-nbd did not start: {self._read(f'qemu-nbd{i}.err')}")
            time.sleep(0.05)
        return time.monotonic()

    def kill_nbd(self, i):
        """SIGKILL of disk i's qemu-nbd: the guest's next I/O on it fails."""
        p = self.nbds[i]
        if p.poll() is None:
            p.kill()
        p.wait()
        self._stopped.discard(p.pid)
        return time.monotonic()

    # ------------------------------------------------------------------ life cycle
    def start(self):
        for i in self.nbd_paths:
            self.start_nbd(i)
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self._threads = [threading.Thread(target=t, daemon=True)
                         for t in (self._serial_reader, self._stderr_reader, self._qmp_reader)]
        for t in self._threads:
            t.start()

    def _write_log(self, line):
        """Under self.cond: one line into serial.log, unless the case is over."""
        if not self._log.closed:
            self._log.write(line + "\n")
            self._log.flush()

    def _stderr_reader(self):
        """QEMU's stderr: its errors, and the trace lines asked for with -trace (the iTCO
        timer's reloads are the guest's pets, seen from outside)."""
        with open(os.path.join(self.workdir, "qemu.err"), "w") as log:
            for raw in self.proc.stderr:
                now = time.monotonic()
                text = raw.decode("utf-8", "replace").rstrip("\n")
                if "tco_timer_" in text:
                    # a reload right after an expiry is the hardware starting its second
                    # stage, not a pet
                    with self.cond:
                        if "tco_timer_expired" in text:
                            self._expired_at = now
                        elif now - self._expired_at > 0.05:
                            self.pets.append(now)
                        self._write_log(f"{now - self.t_start:9.3f} [TRACE] {text}")
                    continue
                log.write(text + "\n")
                log.flush()

    def _read(self, name):
        try:
            with open(os.path.join(self.workdir, name)) as f:
                return f.read().strip()
        except OSError:
            return ""

    def qemu_stderr(self):
        return self._read("qemu.err")

    def _serial_reader(self):
        for raw in self.proc.stdout:
            now = time.monotonic()
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self.cond:
                self._write_log(f"{now - self.t_start:9.3f} {text}")
                self.lines.append((now, text))
                self.cond.notify_all()
        self.proc.wait()
        with self.cond:
            self.exited_at = time.monotonic()
            self.cond.notify_all()

    def _qmp_reader(self):
        sock = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(self.qmp_path)
                break
            except OSError:
                sock.close()
                sock = None
                time.sleep(0.05)
        if sock is None:
            return
        self._qmp = sock
        f = sock.makefile("rb")
        sock.sendall(b'{"execute": "qmp_capabilities"}\n')
        for raw in f:
            now = time.monotonic()
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if "event" in msg:
                with self.cond:
                    self._write_log(f"{now - self.t_start:9.3f} [QMP] {msg['event']} {json.dumps(msg.get('data', {}))}")
                    self.events.append((now, msg))
                    self.cond.notify_all()

    def stop(self):
        """Ends the VM and qemu-nbd (both ours). A stopped process is continued first."""
        for p in list(self.nbds.values()) + [self.proc]:
            if p is not None and p.poll() is None and p.pid in self._stopped:
                os.kill(p.pid, signal.SIGCONT)
        for p in [self.proc] + list(self.nbds.values()):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for t in self._threads:   # they drain what QEMU wrote last into the log
            t.join(5)
        with self.cond:
            self._log.close()

    # ------------------------------------------------------------------ faults from the host
    def _process(self, which):
        """"qemu", "nbd" (the first served disk) or "nbd<i>" (disk i's server)."""
        if which == "qemu":
            return self.proc
        if which == "nbd":
            return self.nbd
        return self.nbds[int(which[3:])]

    def sigstop(self, which):
        p = self._process(which)
        self._stopped.add(p.pid)
        os.kill(p.pid, signal.SIGSTOP)
        return time.monotonic()

    def sigcont(self, which):
        p = self._process(which)
        os.kill(p.pid, signal.SIGCONT)
        self._stopped.discard(p.pid)
        return time.monotonic()

    # ------------------------------------------------------------------ observation
    def wait_line(self, pattern, timeout, start=0):
        """(time, match) of the first serial line from index `start` matching pattern, or
        None at timeout or when the VM ends first."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i][1])
                    if m:
                        return self.lines[i][0], m
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self.exited_at is not None:
                    return None
                self.cond.wait(left)

    def first_line(self, pattern, after=0.0):
        rx = re.compile(pattern)
        with self.cond:
            for t, text in self.lines:
                if t >= after:
                    m = rx.search(text)
                    if m:
                        return t, m
        return None

    def matching(self, pattern, after=0.0):
        rx = re.compile(pattern)
        with self.cond:
            return [(t, m) for t, m in ((t, rx.search(text)) for t, text in self.lines if t >= after) if m]

    def wait_outcome(self, timeout):
        """Waits for the first QMP event that ends the guest's life (WATCHDOG, RESET,
        SHUTDOWN) or for QEMU to exit. Returns (time, outcome, detail) or None if the guest
        is still up when the timeout ends."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, ev in self.events:
                    kind = classify(ev)
                    if kind:
                        return t, kind, describe(ev)
                if self.exited_at is not None:
                    # the exit can race the last QMP event: give it a moment
                    self.cond.wait(0.5)
                    for t, ev in self.events:
                        kind = classify(ev)
                        if kind:
                            return t, kind, describe(ev)
                    return self.exited_at, "poweroff", f"qemu exited rc={self.proc.returncode} without an event"
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def tail(self, n=40, skip=None):
        """The last n lines, leaving out those matching `skip` (a regex)."""
        rx = re.compile(skip) if skip else None
        with self.cond:
            kept = [(t, text) for t, text in self.lines if not (rx and rx.search(text))]
            return [f"{t - self.t_start:9.3f} {text}" for t, text in kept[-n:]]


def classify(ev):
    name = ev.get("event")
    data = ev.get("data", {})
    if name == "WATCHDOG":
        action = data.get("action", "")
        if action == "reset":
            return "reset"
        if action in ("poweroff", "shutdown"):
            return "poweroff"
        return None          # pause, debug, none, inject-nmi: not an end by itself
    if name == "RESET":
        return "reset"
    if name == "SHUTDOWN":
        return "reset" if data.get("reason") in ("guest-reset", "host-qmp-system-reset") else "poweroff"
    return None


def describe(ev):
    return f"{ev.get('event')} {json.dumps(ev.get('data', {}), sort_keys=True)}"
