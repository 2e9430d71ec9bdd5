"""The keepalived engine of the cluster harness: two guests with keepalived (VRRP) on the
suite's bridge, faults on the master (node 1), each run without wdfeed (the baseline:
figures only) and with it (no moment with two nodes serving, the peer takes over in time,
the fenced node is reset within the bound wdfeed printed). docs/CLUSTER.md.
"""

import os
import subprocess
import time

from vmtest import assets as vm

from . import config, images, observe, scenarios
from .harness import CaseError, Engine, fmt, inject, reset_time, send, slack, wait_until

MEM_MB = 384
BOOT_TIMEOUT_S = 240      # both guests booted, keepalived settled, wdfeed armed (loaded host)
ARM_TIMEOUT_S = 60        # inside a guest: from starting wdfeed to its "armed" line
REBOOT_TIMEOUT_S = 150    # from the fenced node's reset to keepalived settled there again
FENCE_LINE = r"fencing check=.*"
SOFTDOG_LINE = r"softdog: Initiating system reboot"
CACHE = os.path.join(vm.CACHE, "cluster")

# keepalived and the packages of every library `ldd` lists for it on Debian 12, except
# libc6 (the host's C library runs every binary of the guest, wdfeed's too). Unpacking them
# all makes the guest independent of which of them the host happens to have.
DEBS = [
    "keepalived", "libnl-3-200", "libnl-genl-3-200", "libsnmp40", "libnftnl11", "libmnl0",
    "libpci3", "libwrap0", "libssl3", "libpcre2-8-0", "libglib2.0-0", "libsystemd0",
    "libsensors5", "libperl5.36", "libmount1", "libgcrypt20", "libzstd1", "liblz4-1",
    "libudev1", "libnsl2", "libffi8", "libblkid1", "libgssapi-krb5-2", "libkrb5-3",
    "libk5crypto3", "libkrb5support0", "zlib1g", "libselinux1", "libcap2", "liblzma5",
    "libcrypt1", "libgpg-error0", "libtirpc3", "libcom-err2", "libkeyutils1",
]

# Modules of the guests, in the order the init loads them (dependencies are added from
# each .ko's .modinfo): virtio-net (the bridge port), the data disk with ext4, and the
# watchdog drivers (i6300esb first so that it is /dev/watchdog0, softdog /dev/watchdog1).
MODULES = ["virtio_pci", "virtio_net", "virtio_blk", "crc32c_generic", "ext4", "i6300esb", "softdog"]


class Keepalived(Engine):
    name = "keepalived"
    outdir_prefix = ""
    cases = scenarios.SCENARIOS
    ci = list(scenarios.SCENARIOS)
    default_jobs = 2

    def log(self, msg):
        print(f"cluster: {msg}", flush=True)

    def prepare(self, ctx):
        root = images.ensure_tree(CACHE, DEBS, "keepalived and its libraries")
        self.initramfs = build_initramfs(ctx, root)
        self.rejected = {}     # softdog flag -> wdfeed validate's refusal of that config
        for softdog in (False, True):
            path = os.path.join(ctx.outdir, f"watchdog{'-softdog' if softdog else ''}.yaml")
            with open(path, "w") as f:
                f.write(config.wdfeed_yaml(softdog))
            r = subprocess.run([ctx.wdfeed, "validate", path], capture_output=True, text=True)
            if r.returncode != 0:
                self.rejected[softdog] = (r.stdout + r.stderr).strip()
                self.log(f"wdfeed validate on the host rejects the suite's config "
                         f"({'with' if softdog else 'without'} softdog); the cases run, and the "
                         "guests' wdfeed decides: " + (self.rejected[softdog].splitlines() or [""])[0])

    def node_names(self, case):
        return [config.MASTER, config.PEER]

    def node(self, name):
        return dict(config.NODES[name], mem=MEM_MB)

    def node_dir(self, name):
        return f"node{name}"

    def estimate_s(self, case, with_wdfeed):
        return case.estimate_s(with_wdfeed)

    def guest_spec(self, ctx, scen, with_wdfeed, node, workdir):
        n = config.NODES[node]
        disk = os.path.join(workdir, "data.img")
        vm.make_ext4(disk, scen.disk_mb)
        cpio = vm.Cpio()
        cpio.file("case.modules", "".join(f"{m}\n" for m in ctx.mods.closure(MODULES)))
        env = {"NODE": node, "ADDR": n["addr"], "VIP": config.VIP,
               "WDFEED": "yes" if with_wdfeed else "no", "ARM_TIMEOUT": ARM_TIMEOUT_S,
               "WAIT_FOR_PEER": 1 if node == config.PEER else 0, "SCENARIO": scen.name}
        cpio.file("case.env", "".join(f"{k}='{v}'\n" for k, v in env.items()))
        cpio.file("etc/keepalived/keepalived.conf", config.keepalived_conf(node, with_wdfeed))
        cpio.file("etc/keepalived/notify.sh", config.NOTIFY_SH, 0o755)
        cpio.file("etc/wdfeed/watchdog.yaml", config.wdfeed_yaml(scen.softdog))
        archive = os.path.join(workdir, "node.cpio")
        with open(archive, "wb") as f:
            f.write(cpio.finish())
        nbd = scen.nbd and node == config.MASTER
        return [self.initramfs, archive], [(disk, nbd)]

    def drive(self, ctx, scen, with_wdfeed, guests, obs, res):
        if with_wdfeed and scen.softdog in self.rejected:
            # the host is not the guest (no eth0, no /mnt/data there): the guest's wdfeed decides
            res.notes.append("wdfeed validate on the host rejected the config (the guest's wdfeed "
                             "decides): " + self.rejected[scen.softdog].replace("\n", " | ")[:300])
        drive(ctx, scen, with_wdfeed, guests, obs, res)


def build_initramfs(ctx, root):
    """The image both guests boot (the per-node archive is appended to it)."""
    init = os.path.join(images.GUESTDIR, "keepalived-init")
    keepalived = os.path.join(root, "usr", "sbin", "keepalived")
    out, done = images.cached(CACHE, "initramfs", [images.LIB_SH, init, ctx.vmlinuz, ctx.wdfeed, keepalived,
                                                   __file__], " ".join(MODULES))
    if done:
        return out
    images.log("building the initramfs (busybox, keepalived, wdfeed, modules)")
    img = images.Image(os.path.relpath(__file__, images.REPO))
    img.base(("mnt/data", "etc/keepalived", "etc/wdfeed"))
    img.cpio.symlink("var/run", "/run")
    img.busybox()
    img.binary("usr/sbin/keepalived", keepalived, images.lib_dirs(root))
    img.binary("bin/wdfeed", ctx.wdfeed)
    img.modules(ctx.mods, MODULES)
    # keepalived runs notify scripts only for a user it can look up
    img.cpio.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
    img.cpio.file("etc/group", "root:x:0:\n")
    img.cpio.file("lib.sh", images.guest_script("lib.sh"))
    img.cpio.file("init", images.guest_script("keepalived-init"), 0o755)
    return img.write(out)


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


def drive(ctx, scen, with_wdfeed, guests, obs, res):
    master, peer = guests[config.MASTER], guests[config.PEER]
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
    if scen.healthy:
        send(master, "load")
        hit = master.wait_line(r"CL: load started", 30)
        if hit is None:
            raise CaseError("the master never started its load")
        t0 = t_reset_ref = hit[0]
        time.sleep(scenarios.HEALTHY_S)
    else:
        fault = f"guest:{scen.guest_fault}" if scen.guest_fault else scen.host_fault
        t0, t_reset_ref = inject(master, fault, scenarios.FREEZE_S, res.notes)

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
