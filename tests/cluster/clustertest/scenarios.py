"""The scenarios of the two-node suite, as data. Each fault is put on the master (node 1);
each runs once without wdfeed (the baseline: figures only) and once with it (judged)."""

from dataclasses import dataclass

from . import config

FREEZE_S = 2.5 * config.STALL_S      # how long the master's QEMU is SIGSTOPped
BASELINE_WATCH_S = 15                # baseline: watched this long after the fault (or the thaw)
NOPREEMPT_WATCH_S = 5                # after the fenced node is back: > 3 x advert_int + skew
HEALTHY_S = 180                      # healthy: heavy load on the master this long
SETTLE_S = 3                         # steady serving between "ready" and the fault


@dataclass(frozen=True)
class Scenario:
    name: str
    doc: str
    guest_fault: str = ""       # command the master's init runs ("fault <this>")
    host_fault: str = ""        # "stop-nbd" (its disk server SIGSTOPped) or "freeze" (its QEMU)
    nbd: bool = False           # the master's data disk is served by qemu-nbd on the host
    softdog: bool = False       # wdfeed pets softdog as a second device
    baseline: bool = True       # also run without wdfeed
    healthy: bool = False
    disk_mb: int = 64

    def estimate_s(self, with_wdfeed):
        """Rough wall time of the case, to start the longest first."""
        if self.healthy:
            return HEALTHY_S + 60
        if not with_wdfeed:
            return 45 + (FREEZE_S if self.host_fault == "freeze" else 0)
        return 75 + (FREEZE_S if self.host_fault == "freeze" else 0)


SCENARIOS = {s.name: s for s in [
    Scenario("keepalived-stop",
             "both keepalived processes on the master are SIGSTOPped (a hung engine)",
             guest_fault="keepalived-stop"),
    Scenario("keepalived-crash",
             "both keepalived processes on the master are SIGSTOPped, then SIGKILLed (a crash "
             "that leaves the address configured)",
             guest_fault="keepalived-crash"),
    Scenario("ext4-error",
             "the master's data disk (ext4, errors=remount-ro) takes a real error "
             "(trigger_fs_error): the filesystem goes read-only, keepalived does not notice",
             guest_fault="ext4-error"),
    Scenario("stuck-disk",
             "the master's data disk is served by qemu-nbd on the host, which gets SIGSTOP "
             "while the guest writes to it: I/O hangs, keepalived does not notice",
             host_fault="stop-nbd", nbd=True),
    Scenario("frozen-vm",
             f"the master's QEMU is SIGSTOPped for {FREEZE_S:g} s (2.5 x the stall threshold), "
             "then SIGCONT; wdfeed pets softdog as a second device (i6300esb does not fire "
             "after a freeze)",
             host_fault="freeze", softdog=True),
    Scenario("healthy",
             f"heavy load on the master for {HEALTHY_S} s (CPU spinners, memory churn, tmpfs "
             "ballast, fsync writes on the checked disk): no takeover, no fence. With wdfeed "
             "only: without it nothing could fence, so a baseline would show nothing",
             baseline=False, healthy=True, disk_mb=256),
]}


def selected(names, variant):
    """[(scenario, with_wdfeed)] for the command-line words (none: everything)."""
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario {unknown}; scenarios: {list(SCENARIOS)}")
    out = []
    for n in (names or list(SCENARIOS)):
        s = SCENARIOS[n]
        if variant in ("both", "baseline") and s.baseline:
            out.append((s, False))
        if variant in ("both", "wdfeed"):
            out.append((s, True))
    return out
