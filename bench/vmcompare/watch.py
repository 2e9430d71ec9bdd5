"""Watching a qemu.Guest from the host: serial lines and QMP events, stamped on arrival with
the host's monotonic clock (see tests/vm/vmtest/qemu.py)."""

import re
import time

from .prep import qemu

# watchdog 5.16's lines as busybox syslogd writes them ("... daemon.err watchdog[123]: text"),
# and the copy it writes to stderr (the console) in the foreground ("watchdog: text"), which
# is all that is left once its shutdown has killed syslogd. Kernel lines start with "[".
WD_LOG = r"(?:watchdog\[\d+\]: |^watchdog: )(.*)"


def wd_lines(guest, t0):
    """watchdog 5.16's messages after t0 as (seconds after t0, text), each once: the stderr
    copy of a syslog line (or the reverse) within 0.5 s is dropped."""
    rx = re.compile(WD_LOG)
    seen = {}
    out = []
    with guest.cond:
        lines = [(t, s) for t, s in guest.lines if t >= t0]
    for t, s in lines:
        m = rx.search(s)
        if not m:
            continue
        text = m.group(1).strip()
        if text in seen and t - seen[text] < 0.5:
            continue
        seen[text] = t
        out.append((t - t0, text))
    return out


def wait_line_or_end(guest, pattern, timeout, start=0):
    """The first of: a serial line from index `start` matching pattern -> ("line", t, match,
    index); an event that ends the guest or QEMU's exit -> ("end", t, kind, detail); None at
    timeout."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    with guest.cond:
        i = start
        while True:
            while i < len(guest.lines):
                m = rx.search(guest.lines[i][1])
                if m:
                    return ("line", guest.lines[i][0], m, i)
                i += 1
            for t, ev in guest.events:
                kind = qemu.classify(ev)
                if kind:
                    return ("end", t, kind, qemu.describe(ev))
            if guest.exited_at is not None:
                guest.cond.wait(0.5)
                for t, ev in guest.events:
                    kind = qemu.classify(ev)
                    if kind:
                        return ("end", t, kind, qemu.describe(ev))
                return ("end", guest.exited_at, "exit",
                        f"qemu exited rc={guest.proc.returncode} without an event")
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            guest.cond.wait(min(left, 1.0))


def events_after(guest, t0):
    with guest.cond:
        return [(t, ev) for t, ev in guest.events if t >= t0]


def ended_by(guest, t0=0.0):
    """What ended the VM, from its QMP events: the hardware watchdog (a WATCHDOG event) or a
    reboot the guest asked for (SHUTDOWN guest-reset / RESET guest=true), and the events."""
    evs = events_after(guest, t0)
    names = [f"{ev.get('event')} {qemu.describe(ev).split(' ', 1)[1]}" for _, ev in evs
             if ev.get("event") in ("WATCHDOG", "RESET", "SHUTDOWN", "STOP", "RESUME")]
    wd = [t for t, ev in evs if ev.get("event") == "WATCHDOG"]
    guest_req = [t for t, ev in evs
                 if (ev.get("event") == "SHUTDOWN" and ev.get("data", {}).get("reason") == "guest-reset")
                 or (ev.get("event") == "RESET" and ev.get("data", {}).get("guest") is True)]
    if wd and (not guest_req or wd[0] <= guest_req[0]):
        who = "hardware watchdog (QMP WATCHDOG)"
    elif guest_req:
        who = "guest-requested reboot (SHUTDOWN guest-reset / RESET guest=true)"
    elif evs:
        who = "other (" + ", ".join(names) + ")"
    else:
        who = "none"
    return who, names


def tail(guest, n=15):
    return guest.tail(n)


def first(guest, pattern, after=0.0):
    return guest.first_line(pattern, after=after)


def rel(guest, t):
    return t - guest.t_start
