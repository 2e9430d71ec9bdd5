"""The later boots of a rejoin scenario: the guest whose first boot ended (a fence's reset,
or a reboot after a clean stop) boots again on the same data disk, where wdfeed's state
record (--state-dir) survived, and the suite times READY=1 against the rejoin delay. With
`boots` above 2, the boots in between fence again as the first did (a reboot loop), and the
last one must hold READY=1 until `wdfeed rejoin-now` (the fence budget).

READY=1 is seen as wdfeed's log line "READY=1 sent", which it writes right after the
sd_notify datagram (the guest has no systemd to receive it); times are the host's arrival
times of the serial lines, as everywhere in the suite.
"""

import os

from . import cases, dump
from .qemu import Guest

SAYS = cases.WDFEED_SAYS
BOOT_TIMEOUT_S = 180
# Serial lines are stamped by the host as they arrive: two lines written a few ms apart in
# the guest can arrive with their gap shortened by the console's buffering.
ARRIVAL_JITTER_S = 0.25
STAY_UP_AFTER_READY_S = 5


def run(ctx, driver, scen, res, disk, workdir, make_case_archive, append):
    """Boots the guest again on `disk`, boot 2 up to `scen.boots`, and judges each into
    `res`; stops at the first boot that fails."""
    for n in range(2, scen.boots + 1):
        bootdir = os.path.join(workdir, f"boot{n}")
        os.makedirs(bootdir, exist_ok=True)
        case_cpio = os.path.join(bootdir, "case.cpio")
        make_case_archive(case_cpio, {"BOOT": n})
        guest = Guest(bootdir, driver.machine, ctx.vmlinuz, [ctx.base, case_cpio], append,
                      disk=disk, trace=driver.trace)
        try:
            guest.start()
            if n < scen.boots:
                judge_fenced_again(guest, driver, res, n)
            elif scen.second_boot == "dump-named":
                dump.judge_boot2(guest, res, BOOT_TIMEOUT_S)
            else:
                judge(guest, driver, scen, res)
        finally:
            guest.stop()
            res.tail = [f"--- boot {n} ---"] + guest.tail(60)
            if os.path.exists(os.path.join(bootdir, "initrd.cpio")) and res.ok:
                os.unlink(os.path.join(bootdir, "initrd.cpio"))
        if not res.ok:
            return


def fail(res, why, boot=2):
    res.ok = False
    res.reason = f"boot {boot}: " + why
    return False


def judge_fenced_again(guest, driver, res, n):
    """A boot in the loop: wdfeed arms on the same disk, the heartbeat stops, wdfeed fences
    and the VM resets within the bound."""
    if guest.wait_line(r"VMTEST: (armed|error)", BOOT_TIMEOUT_S) is None:
        return fail(res, "wdfeed did not arm", n)
    record = guest.first_line(r"VMTEST: note boot \d+ of the same disk; state record: (.*) up=")
    if record:
        res.notes.append(f"boot {n} found the state record: {record[1].group(1).strip()[:200]}")
    fault = guest.wait_line(r"VMTEST: (fault|error)", 60)
    if fault is None or fault[1].group(1) == "error":
        return fail(res, "the guest never injected the fault", n)
    bound = res.bound if res.bound == res.bound else 30
    end = guest.wait_outcome(bound + cases.slack(bound) + 5)
    if end is None or end[1] != "reset":
        return fail(res, f"expected a reset after the fault, got {end[1] if end else 'up'}", n)
    after = end[0] - fault[0]
    fencing = guest.first_line(SAYS["fencing"], after=fault[0])
    if fencing is None:
        return fail(res, "wdfeed never logged 'fencing': the reset came from elsewhere", n)
    if after > bound + cases.slack(bound):
        return fail(res, f"reset {after:.2f}s after the fault > bound {bound:.2f}s + slack", n)
    res.notes.append(f"boot {n}: fenced again, reset {after:.2f}s after the fault")
    return True


def judge(guest, driver, scen, res):
    """The last boot: wdfeed arms, READY=1 comes as the scenario says, the VM stays up."""
    n = scen.boots
    started = guest.wait_line(r"VMTEST: (starting wdfeed|error)", BOOT_TIMEOUT_S)
    if started is None or started[1].group(1) == "error":
        return fail(res, "the guest never started wdfeed"
                    + (": " + started[1].string.split("VMTEST: error", 1)[1].strip() if started else ""), n)
    t_start = started[0]
    record = guest.first_line(r"VMTEST: note boot \d+ of the same disk; state record: (.*) up=")
    if record:
        res.notes.append(f"boot {n} found the state record: {record[1].group(1).strip()[:400]}")
    marked = guest.wait_line(r"VMTEST: (armed|error)", 90)
    armed = guest.first_line(SAYS["armed"], after=t_start)
    if marked is None or marked[1].group(1) == "error" or armed is None:
        return fail(res, "wdfeed did not arm", n)
    ready_wait = 60 + (res.bound if res.bound == res.bound else 0)
    if scen.second_boot == "budget-hold":
        ready_wait += cases.up_for(driver) + 30
    ready = guest.wait_line(SAYS["ready"], ready_wait)
    if ready is None:
        end = guest.wait_outcome(0)
        return fail(res, "no READY=1" + (f" (the VM ended: {end[2]})" if end else ""), n)
    t_ready = ready[0]
    waited = t_ready - t_start
    end = guest.wait_outcome(STAY_UP_AFTER_READY_S)
    if end is not None:
        return fail(res, f"the VM did not stay up after READY=1: {end[2]} "
                    f"{end[0] - t_start:.2f}s after wdfeed started", n)
    for cause in guest.matching(SAYS["rejoin-cause"]):
        res.notes.append(f"boot {n} log: {cause[1].group(0).strip()[:160]}")
    if scen.second_boot == "budget-hold":
        return judge_hold(guest, driver, scen, res, t_start, armed[0], ready)
    if scen.second_boot.startswith("rejoin-delay"):
        if not judge_delay(guest, driver, res, t_start, armed[0], t_ready, ready, waited):
            return False
        return scen.second_boot != "rejoin-delay-restart" or judge_restart(guest, res, t_ready, ready)
    return judge_no_delay(guest, driver, res, t_start, armed[0], waited, ready)


def judge_delay(guest, driver, res, t_start, t_armed, t_ready, ready, waited):
    """READY=1 no earlier than the delay after wdfeed started; the delay is boot 1's bound
    (the default); wdfeed armed long before READY=1, and the VM stayed up meanwhile, which
    on a device with a reset time shorter than the delay proves it petted during it."""
    if guest.first_line(SAYS["rejoin-armed-before"]) is None:
        return fail(res, f"wdfeed did not say /{SAYS['rejoin-armed-before']}/")
    if guest.first_line(SAYS["rejoin-holding"]) is None:
        return fail(res, f"wdfeed did not say /{SAYS['rejoin-holding']}/")
    said = guest.first_line(SAYS["ready-delay"], after=t_ready)
    if said is None or ready[1].group(1) is None:
        return fail(res, f"READY=1 did not name a rejoin delay: {ready[1].string.strip()[:160]}")
    delay = float(said[1].group(1))
    r_hw = driver.reset_after_last_pet()
    res.notes.append(f"boot 2: wdfeed armed {t_armed - t_start:.2f}s after it started; READY=1 "
                     f"{waited:.2f}s after it started (rejoin delay {delay:.2f}s, boot 1's "
                     f"bound {res.bound:.2f}s); up through it with a reset time of {r_hw:.1f}s")
    if abs(delay - res.bound) > 0.05:
        return fail(res, f"the default rejoin delay {delay:.2f}s is not boot 1's bound {res.bound:.2f}s")
    if waited < delay - ARRIVAL_JITTER_S:
        return fail(res, f"READY=1 came {waited:.2f}s after wdfeed started, before the "
                    f"rejoin delay of {delay:.2f}s")
    if waited > delay + cases.slack(delay) + (t_armed - t_start):
        return fail(res, f"READY=1 came {waited:.2f}s after wdfeed started, long after the "
                    f"rejoin delay of {delay:.2f}s")
    if delay <= r_hw:
        return fail(res, f"the delay {delay:.2f}s is not longer than the reset time {r_hw:.1f}s: "
                    "staying up would not prove petting during it")
    return True


def judge_restart(guest, res, t_ready, ready):
    """The wdfeed restarted during the delay kept its end: it said so, and READY=1 came less
    than a whole delay after the restart (judge_delay checked it against the first start)."""
    restarted = guest.first_line(r"VMTEST: restarting wdfeed")
    if restarted is None:
        return fail(res, "the guest never restarted wdfeed")
    if guest.first_line(SAYS["rejoin-restarted"], after=restarted[0]) is None:
        return fail(res, f"the restarted wdfeed did not say /{SAYS['rejoin-restarted']}/")
    delay = float(guest.first_line(SAYS["ready-delay"], after=t_ready)[1].group(1))
    if t_ready - restarted[0] >= delay - ARRIVAL_JITTER_S:
        return fail(res, f"READY=1 came {t_ready - restarted[0]:.2f}s after the restart: the "
                    f"restart ran the {delay:.2f}s delay again")
    res.notes.append(f"boot 2: restarted {restarted[0] - guest.first_line('VMTEST: starting wdfeed')[0]:.2f}s "
                     f"after the first start; READY=1 {t_ready - restarted[0]:.2f}s after the restart")
    return True


def judge_no_delay(guest, driver, res, t_start, t_armed, waited, ready):
    """After a clean stop: READY=1 at once (with the arming), naming no delay."""
    if guest.first_line(SAYS["rejoin-clean-before"]) is None:
        return fail(res, f"wdfeed did not say /{SAYS['rejoin-clean-before']}/")
    if ready[1].group(1) is not None or guest.first_line(SAYS["rejoin-holding"]):
        return fail(res, "READY=1 waited for a rejoin delay after a clean stop")
    if waited > (t_armed - t_start) + cases.slack(0):
        return fail(res, f"READY=1 came {waited:.2f}s after wdfeed started, not with its arming "
                    f"({t_armed - t_start:.2f}s)")
    res.notes.append(f"boot 2: wdfeed armed {t_armed - t_start:.2f}s and sent READY=1 "
                     f"{waited:.2f}s after it started (no rejoin delay)")
    return True


def judge_hold(guest, driver, scen, res, t_start, t_armed, ready):
    """The fence budget spent: wdfeed armed, said why READY=1 is held (with the times of the
    fences), kept it held while the VM stayed up for 3 reset times (so it petted), and sent
    it only after `wdfeed rejoin-now`."""
    n = scen.boots
    held = guest.first_line(SAYS["budget-held"])
    if held is None:
        return fail(res, f"wdfeed did not say /{SAYS['budget-held']}/", n)
    res.notes.append(f"boot {n} log: {held[1].group(0)[:400]}")
    if int(held[1].group(1)) != n - 1:
        return fail(res, f"the budget counted {held[1].group(1)} boots, not {n - 1}", n)
    times = held[1].string.count(" UTC (")
    if times != n - 1:
        return fail(res, f"the hold names {times} fence times, not {n - 1}", n)
    released = guest.first_line(r"VMTEST: rejoin-now")
    marked = guest.first_line(r"VMTEST: held")
    if released is None or marked is None:
        return fail(res, "the guest never reached rejoin-now", n)
    if ready[0] < released[0]:
        return fail(res, "READY=1 came before `wdfeed rejoin-now`", n)
    if guest.first_line(SAYS["rejoin-hold-released"], after=released[0]) is None:
        return fail(res, f"wdfeed did not say /{SAYS['rejoin-hold-released']}/", n)
    r_hw = driver.reset_after_last_pet()
    res.notes.append(f"boot {n}: armed {t_armed - t_start:.2f}s after wdfeed started, READY=1 "
                     f"held {released[0] - marked[0]:.2f}s with the VM up (reset time "
                     f"{r_hw:.1f}s), sent {ready[0] - released[0]:.2f}s after rejoin-now")
    if released[0] - marked[0] < cases.up_for(driver) - ARRIVAL_JITTER_S:
        return fail(res, "the hold was watched for less than 3 reset times", n)
    return True
