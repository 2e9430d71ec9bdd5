"""The Pacemaker engine of the cluster harness (docs/PACEMAKER.md, "Test plan"): n1 and n2
run corosync, corosync-qdevice, diskless sbd on softdog and Pacemaker with an IPaddr2 address
and a Dummy resource; q runs corosync-qnetd (the third vote). The fault goes on n1, which runs
the resources; each case runs without wdfeed (the baseline: figures only) and with it (judged).

Its packages: Debian 12's corosync, corosync-qdevice, corosync-qnetd, pacemaker, sbd,
resource-agents and iproute2, with the packages of every library `ldd` lists for their
binaries, downloaded with `apt-get download` and unpacked with `dpkg -x`; nothing is installed
on the host. One initramfs serves the three guests: guest/pcmk-init decides by the node's
archive what each one runs.
"""

import os
import time
from dataclasses import dataclass

from vmtest import assets as vm

from . import images, observe, pcmk_config as pc
from .harness import CaseError, Engine, Result, expect, fmt, inject, reset_time, send, slack, wait_until

MEM_MB = {"n1": 512, "n2": 512, "q": 384}   # q unpacks the same 70 MB initramfs
BOOT_TIMEOUT_S = 420      # QEMU start to the resources running on n1 (three TCG guests)
ARM_TIMEOUT_S = 60
SETTLE_S = 5
FREEZE_S = 15
HEALTHY_S = 180
BASELINE_WATCH_S = 60     # after the fault: token + F (22 s) + the resources' start, and more
AFTER_TAKEOVER_S = 5
# the peer's membership change, the scheduler and the resources' start on a TCG guest
TAKEOVER_SLACK_S = 20
CACHE = os.path.join(vm.CACHE, "pacemaker")
MULTIARCH = images.MULTIARCH


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


DEBS = [
    "corosync", "pacemaker", "pacemaker-cli-utils", "pacemaker-common", "sbd", "resource-agents",
    "corosync-qdevice", "corosync-qnetd", "iproute2",
    "libaio1", "libaudit1", "libbz2-1.0", "libc6", "libcap-ng0", "libcap2", "libcfg7", "libcib27",
    "libcmap4", "libcorosync-common4", "libcpg4", "libcrmcluster29", "libcrmcommon34",
    "libcrmservice28", "libdbus-1-3", "libelogind0", "libffi8", "libgcc-s1", "libglib2.0-0",
    "libgmp10", "libgnutls30", "libhogweed6", "libicu72", "libidn2-0", "libknet1", "liblrmd28",
    "libltdl7", "liblzma5", "libncurses6", "libnet1", "libnettle8", "libnl-3-200",
    "libnl-route-3-200", "libnozzle1", "libnspr4", "libnss3", "libp11-kit0", "libpacemaker1",
    "libpam0g", "libpcre2-8-0", "libpe-rules26", "libpe-status28", "libpils2", "libplumb2",
    "libqb100", "libquorum5", "libstatgrab10", "libstdc++6", "libstonithd26", "libtasn1-6",
    "libtinfo6", "libunistring2", "libuuid1", "libvotequorum8", "libxml2", "libxslt1.1", "zlib1g",
    "libbpf1", "libelf1", "libmnl0", "libbsd0", "libmd0",
    "libsqlite3-0",     # for NSS's softoken, which corosync-qdevice and -qnetd dlopen
]

# the ELF files the guests run (their libraries are found with ldd)
BINARIES = [
    "usr/sbin/corosync", "usr/sbin/corosync-cfgtool", "usr/sbin/corosync-quorumtool",
    "usr/sbin/corosync-cmapctl", "usr/sbin/pacemakerd", "usr/lib/pacemaker/pacemaker-attrd",
    "usr/lib/pacemaker/pacemaker-based", "usr/lib/pacemaker/pacemaker-controld",
    "usr/lib/pacemaker/pacemaker-execd", "usr/lib/pacemaker/pacemaker-fenced",
    "usr/lib/pacemaker/pacemaker-schedulerd", "usr/sbin/cibadmin", "usr/sbin/crm_mon",
    "usr/sbin/crm_attribute", "usr/sbin/crm_resource", "usr/sbin/crm_node",
    "usr/sbin/stonith_admin", "usr/sbin/sbd", "usr/libexec/heartbeat/findif",
    "usr/libexec/heartbeat/send_arp", "usr/sbin/corosync-qdevice", "usr/sbin/corosync-qdevice-tool",
    "usr/bin/corosync-qnetd", "usr/bin/corosync-qnetd-tool", "bin/ip",
]
# whole trees: the CIB schemas, the OCF shell library, the two agents
TREES = ["usr/share/pacemaker", "usr/lib/ocf/lib/heartbeat"]
FILES = ["usr/lib/ocf/resource.d/heartbeat/IPaddr2", "usr/lib/ocf/resource.d/heartbeat/Dummy"]
# NSS loads its softoken at NSS_Init even with TLS off ("Can't init nss (-5977): Failure to
# load dynamic library" without them); their .chk files are the self-test checksums
DLOPENED = [f"usr/lib/{MULTIARCH}/{f}" for f in (
    "libsoftokn3.so", "libsoftokn3.chk", "libfreebl3.so", "libfreebl3.chk", "libfreeblpriv3.so",
    "libfreeblpriv3.chk", "libnssdbm3.so", "libnssdbm3.chk")]

MODULES = ["virtio_pci", "virtio_net", "virtio_blk", "crc32c_generic", "ext4", "i6300esb", "softdog"]


PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "hacluster:x:100:101::/var/lib/pacemaker:/bin/false\n"
          "coroqnetd:x:102:102::/var/run/corosync-qnetd:/bin/false\n")
GROUP = "root:x:0:\nhaclient:x:101:hacluster\ncoroqnetd:x:102:\n"




class Pacemaker(Engine):
    name = "pacemaker"
    outdir_prefix = "pcmk-"
    cases = CASES
    ci = CI_SUBSET
    default_jobs = 1
    result_class = PResult

    def prepare(self, ctx):
        root = images.ensure_tree(CACHE, DEBS, "corosync, pacemaker, sbd and their libraries")
        self.initramfs = build_initramfs(ctx, root)

    def node_names(self, case):
        return ["n1", "n2"] if case.two_node else ["q", "n1", "n2"]

    def node(self, name):
        return dict(pc.NODES[name], mem=MEM_MB[name])

    def guest_spec(self, ctx, case, with_wdfeed, node, workdir):
        n = pc.NODES[node]
        disks = []
        if node != pc.QNETD:
            disk = os.path.join(workdir, "data.img")
            vm.make_ext4(disk, 64)
            disks = [(disk, case.nbd and node == pc.OWNER)]
        cpio = vm.Cpio()
        cpio.file("case.modules", "".join(f"{m}\n" for m in ctx.mods.closure(MODULES)))
        env = {"NODE": node, "ADDR": n["addr"], "VIP": pc.VIP, "WDFEED": "yes" if with_wdfeed else "no",
               "ARM_TIMEOUT": ARM_TIMEOUT_S, "QDEVICE": "no" if case.two_node else "yes",
               "COROSYNC_LINES": pc.COROSYNC_LINES, "PACEMAKER_LINES": pc.PACEMAKER_LINES}
        cpio.file("case.env", "".join(f"{k}='{v}'\n" for k, v in env.items()))
        cpio.file("etc/corosync/corosync.conf", pc.corosync_conf(not case.two_node))
        cpio.file("etc/default/sbd", pc.SBD_ENV)
        cpio.file("etc/wdfeed/watchdog.yaml", pc.wdfeed_yaml())
        if node == pc.OWNER:
            cpio.file("cib.sh", pc.CIB_SH, 0o755)
        archive = os.path.join(workdir, "node.cpio")
        with open(archive, "wb") as f:
            f.write(cpio.finish())
        return [self.initramfs, archive], disks

    def drive(self, ctx, case, with_wdfeed, guests, obs, res):
        drive(case, with_wdfeed, guests, obs, res)


def build_initramfs(ctx, root):
    """The image the three guests boot (each node's archive is appended). Cached by digest."""
    init = os.path.join(images.GUESTDIR, "pcmk-init")
    out, done = images.cached(CACHE, "initramfs", [images.LIB_SH, init, ctx.vmlinuz, ctx.wdfeed, __file__],
                              " ".join(MODULES + BINARIES))
    if done:
        return out
    images.log("building the Pacemaker initramfs (busybox, corosync, pacemaker, sbd, qnetd, wdfeed)")
    img = images.Image(os.path.relpath(__file__, images.REPO))
    img.base(("mnt/data", "etc/corosync", "etc/wdfeed", "etc/default", "var/lib", "var/log",
              "lib/modules", "dev/shm"))
    img.cpio.symlink("var/run", "/run")
    dirs = images.lib_dirs(root)
    for rel in BINARIES:
        name, src = images.find(root, rel)
        img.binary(name, src, dirs)
    img.busybox()
    img.binary("bin/wdfeed", ctx.wdfeed)
    for rel in FILES:
        img.cpio.copy(rel, os.path.join(root, rel), 0o755)
    for rel in DLOPENED:
        src = os.path.join(root, rel)
        img.cpio.copy(rel, os.path.realpath(src), 0o755)
        if rel.endswith(".so"):
            img.libs.update(images.ldd(src, dirs, img.owner))
    for t in TREES:
        img.tree(root, t)
    img.modules(ctx.mods, MODULES)
    img.cpio.file("etc/passwd", PASSWD)
    img.cpio.file("etc/group", GROUP)
    img.cpio.file("lib.sh", images.guest_script("lib.sh"))
    img.cpio.file("init", images.guest_script("pcmk-init"), 0o755)
    out = img.write(out)
    images.log(f"initramfs {os.path.getsize(out) / 1e6:.1f} MB")
    return out


def fatal_lines(guest, after=0.0):
    return guest.matching(pc.FATAL_LINES, after=after)


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
    if case.healthy:
        send(n1, "load")
        t0 = t_reset_ref = expect(n1, r"load started", 30, 0, "load")[0]
        time.sleep(HEALTHY_S)
    else:
        fault = f"guest:{case.guest_fault}" if case.guest_fault else case.host_fault
        t0, t_reset_ref = inject(n1, fault, FREEZE_S, res.notes)

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
