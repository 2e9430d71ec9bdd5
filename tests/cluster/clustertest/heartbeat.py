"""The heartbeat engine of the cluster harness: the seed's own stack (docs/SEED.md).

n1 and n2 boot a real ext4 root (vda, served by qemu-nbd so that the suite can stall it or
make it fail) and run DRBD 8.4 r0 on vdb (also served by qemu-nbd), heartbeat 3.0.6
(haresources, `crm off`, `auto_failback off`) with the group drbddisk -> Filesystem (ext4,
errors=remount-ro) -> nfsd -> IPaddr2, and, in the judged cases, wdfeed. c is an NFS client
whose ledger writer prints `ACK n` only after the record's pwrite and fsync succeeded. After
each case every acknowledged record is read over NFS from the final server (after the
client dropped its caches) and offline from the final primary's DRBD backing disk (after the
ext4 journal is replayed on a copy).
"""

import os
import random
import re
import shutil
import subprocess
import time
import zlib
from dataclasses import dataclass

from vmtest import assets as vm

from . import hb_config as hc
from . import images, observe
from .harness import (SOFTDOG_LINE, CaseError, Engine, Result, expect, fmt, reset_time, send, slack,
                      wait_until)

CACHE = os.path.join(vm.CACHE, "heartbeat")
BOOT_TIMEOUT_S = 300          # QEMU start to the group held on n1 and the client mounted
REBOOT_TIMEOUT_S = 240        # the fenced node's reset to its "ready" line and DRBD UpToDate again
ARM_TIMEOUT_S = 90
SETTLE_S = 5                  # steady writes between the first ACKs and the fault
SEED_FREEZE_S = 30            # > 2.5 x deadtime
SEED_KILL_AFTER_THAW_S = 0.05
SEED_LONG_FREEZE_S = 240      # the seed's own freeze
PEER_FREEZE_S = 20
HEALTHY_S = 180
BASELINE_WATCH_S = 90         # without wdfeed: watched this long after the fault (or the thaw)
TAKEOVER_WAIT_S = 90          # with wdfeed: the survivor must serve within this (judged tighter)
AFTER_BACK_S = 15             # the fenced node back: it must not take the group back meanwhile
NFS_READ_TIMEOUT_S = 60
ACKS_AFTER_S = 5             # the writer must go on this long after the last event, or the end

# Debian 12 packages of the servers' root (docs/SEED.md, "Packages"): the stack, the
# libraries `ldd` lists for its binaries, and the tools its scripts call.
DEBS = [
    "heartbeat", "libheartbeat2", "cluster-glue", "libpils2", "libplumb2", "libplumbgpl2",
    "libstonith1", "liblrm2", "resource-agents", "libnet1", "drbd-utils", "nfs-kernel-server",
    "nfs-common", "libnfsidmap1", "libglib2.0-0", "libltdl7", "libuuid1", "libpcre2-8-0", "zlib1g",
    "libbz2-1.0", "libtirpc3", "libtirpc-common", "libwrap0", "libblkid1", "libmount1", "libselinux1",
    "libgssapi-krb5-2", "libkrb5-3", "libk5crypto3", "libkrb5support0", "libcom-err2",
    "libkeyutils1", "libnsl2", "libevent-core-2.1-7", "libsqlite3-0", "libcap2", "bash", "libtinfo6", "procps",
    "libproc2-0", "libncursesw6", "psmisc", "iproute2", "libbpf1", "libelf1", "libmnl0", "libbsd0",
    "libmd0", "util-linux", "libsmartcols1", "netbase", "e2fsprogs", "libext2fs2", "libss2", "libc6",
    "libgcc-s1", "libcrypt1", "libsystemd0", "libudev1", "libcap-ng0", "libaudit1", "libgcrypt20",
    "libgpg-error0", "liblzma5", "libzstd1", "liblz4-1",
]
# the binaries whose libraries must all resolve in the unpacked tree (checked at build time)
CHECKED = [
    "usr/libexec/heartbeat/heartbeat", "usr/lib/heartbeat/plugins/HBcomm/ucast.so",
    "usr/lib/heartbeat/plugins/compress/zlib.so", "usr/libexec/heartbeat/send_arp",
    "usr/libexec/heartbeat/findif", "usr/sbin/rpc.mountd", "usr/sbin/rpc.nfsd", "usr/sbin/exportfs",
    "lib/drbd/drbdsetup-84", "lib/drbd/drbdadm-84", "sbin/drbdmeta", "sbin/drbdadm", "sbin/fsck",
    "sbin/nfsdcltrack", "bin/bash", "usr/bin/pkill", "bin/fuser", "bin/ip", "sbin/blkid", "sbin/e2fsck",
    "bin/ps", "bin/kill", "usr/bin/killall",
]
STAGE1_MODULES = ["virtio_pci", "virtio_blk", "crc32c_generic", "ext4"]
SERVER_MODULES = ["virtio_net", "i6300esb", "softdog", "drbd", "nfsd"]
CLIENT_MODULES = ["virtio_pci", "virtio_net", "nfsv4"]
ROOT_MB = 320


@dataclass(frozen=True)
class Case:
    name: str
    doc: str
    target: str = hc.PRIMARY       # the node the fault hits
    fault: str = ""                # see Heartbeat.inject
    freeze_s: float = 0.0
    fenced: bool = True            # with wdfeed, the target must be reset
    takeover: bool = True          # the group must move to the other node
    healthy: bool = False
    data: bool = True              # a node serves after the fault: the ledger is read back
    baseline: bool = True


CASES = {c.name: c for c in [
    Case("seed-standby", f"the seed: the standby n2 frozen {SEED_FREEZE_S} s (QEMU SIGSTOPped) while its "
         "root disk stalls, then fails (qemu-nbd SIGSTOPped, then SIGKILLed), thawed with its root "
         "going read-only: n1 must keep the group", target=hc.STANDBY, fault="seed", freeze_s=SEED_FREEZE_S,
         takeover=False),
    Case("seed-standby-240", f"the same with the seed's own freeze, {SEED_LONG_FREEZE_S} s", target=hc.STANDBY,
         fault="seed", freeze_s=SEED_LONG_FREEZE_S, takeover=False),
    Case("seed-primary", f"the same fault on the primary n1 ({SEED_FREEZE_S} s): n2 takes over, nothing lost",
         fault="seed", freeze_s=SEED_FREEZE_S),
    Case("primary-data-ro", "ext4 error on n1's DRBD-backed export /srv/nfs (errors=remount-ro)",
         fault="guest:data-ext4-error"),
    Case("primary-root-stuck", "n1's root disk stops answering (its qemu-nbd SIGSTOPped: no error, no I/O)",
         fault="root-stall"),
    Case("primary-heartbeat-stopped", "every heartbeat process on n1 SIGSTOPped", fault="guest:heartbeat-stop"),
    Case("primary-heartbeat-killed", "every heartbeat process on n1 SIGSTOPped, then SIGKILLed",
         fault="guest:heartbeat-kill"),
    Case("peer-freeze", f"the standby n2 frozen {PEER_FREEZE_S} s, thawed healthy: n1's drbd0 stalls "
         "until DRBD gives up on the peer; n1 must not be fenced", target=hc.STANDBY, fault="freeze",
         freeze_s=PEER_FREEZE_S, takeover=False),
    Case("healthy-load", f"{HEALTHY_S} s of heavy load on n1 (CPU, memory, fsync writes on /srv/nfs): "
         "no fence, no takeover, nothing lost", fault="load", fenced=False, takeover=False, healthy=True),
    Case("primary-diskless", "n2 powered off, then n1's DRBD backing disk fails (qemu-nbd SIGKILLed): "
         "a Primary with no good data, which the drbd check must fence within B",
         fault="diskless", takeover=False, data=False),
    Case("secondary-faults", "on the Secondary n2: its DRBD backing disk fails, then it is disconnected "
         "from n1: no fence (a Secondary serves nothing), n1 keeps the group", target=hc.STANDBY,
         fault="secondary", fenced=False, takeover=False),
]}
CI = ["seed-standby", "primary-data-ro", "peer-freeze"]


class HBResult(Result):
    acked = None
    lost = None
    gap = None
    split_brain = None

    def line(self):
        return (f"{self.verdict()} {self.scenario} wdfeed={'yes' if self.wdfeed else 'no'} "
                f"acked={'none' if self.acked is None else self.acked} "
                f"lost={'none' if self.lost is None else self.lost} longest_gap={fmt(self.gap)} "
                f"dual_active={fmt(self.dual)} takeover={fmt(self.takeover)} reset={fmt(self.reset)} "
                f"bound={fmt(self.bound)} "
                f"split_brain={'none' if self.split_brain is None else 'yes' if self.split_brain else 'no'}")


class Heartbeat(Engine):
    name = "heartbeat"
    outdir_prefix = "hb-"
    cases = CASES
    ci = CI
    default_jobs = 1
    result_class = HBResult

    # ------------------------------------------------------------------ images
    def prepare(self, ctx):
        root = images.ensure_tree(CACHE, DEBS, "heartbeat, DRBD, NFS and their libraries")
        dirs = images.lib_dirs(root)
        for rel in CHECKED:
            _name, path = images.find(root, rel)
            for lib, src in images.ldd(path, dirs, os.path.relpath(__file__, images.REPO)):
                # ldd falls back to the host's libraries: the root has only the tree's
                if not src.startswith(os.path.realpath(root)) and "ld-linux" not in lib:
                    raise vm.SetupError(f"{rel} needs {os.path.basename(lib)}, found only on the host "
                                        f"({src}): add its package to DEBS in {os.path.relpath(__file__, images.REPO)}")
        self.role_aware = role_aware(ctx)
        self.log("wdfeed's config: " + ("role-aware (writable /srv/nfs when mounted, the drbd check, "
                                        "block-io's default list)" if self.role_aware else
                                        "writable / only, block-io [vda, vdb] (this wdfeed has no "
                                        "`when:` nor drbd check)"))
        self.ledger = build_ledger()
        self.stage1 = build_stage1(ctx)
        self.client = build_client(ctx, self.ledger)
        self.root_image = build_root(ctx, root)

    def node_names(self, case):
        return [hc.PRIMARY, hc.STANDBY, hc.CLIENT]

    def node(self, name):
        return hc.NODES[name]

    def guest_spec(self, ctx, case, with_wdfeed, node, workdir):
        n = hc.NODES[node]
        if node == hc.PRIMARY:
            self.run_id = f"{random.getrandbits(32):08x}"    # the ledger's records name the case's run
        env = {"NODE": node, "ADDR": n["addr"], "VIP": hc.VIP, "WDFEED": "yes" if with_wdfeed else "no",
               "ARM_TIMEOUT": ARM_TIMEOUT_S, "HA_LINES": hc.HA_LINES, "EXPORT": hc.EXPORT}
        cpio = vm.Cpio()
        if node == hc.CLIENT:
            env.update(MOUNT_OPTS=hc.CLIENT_MOUNT_OPTS, RUN_ID=self.run_id, INTERVAL_MS=hc.WRITE_INTERVAL_MS)
            cpio.file("case.modules", "".join(f"{m}\n" for m in ctx.mods.closure(CLIENT_MODULES)))
            cpio.file("case.env", "".join(f"{k}='{v}'\n" for k, v in env.items()))
            archive = os.path.join(workdir, "node.cpio")
            with open(archive, "wb") as f:
                f.write(cpio.finish())
            return [self.client, archive], []
        have = set(ctx.mods.closure(STAGE1_MODULES))
        node_files = {
            "case.env": "".join(f"{k}='{v}'\n" for k, v in env.items()),
            "case.modules": "".join(f"{m}\n" for m in ctx.mods.closure(SERVER_MODULES) if m not in have),
            "etc/hostname": f"{node}\n",
            "etc/ha.d/ha.cf": hc.HA_CF,
            "etc/ha.d/haresources": hc.HARESOURCES,
            "etc/drbd.conf": hc.DRBD_CONF,
            "etc/exports": hc.EXPORTS,
            "etc/wdfeed/watchdog.yaml": hc.wdfeed_yaml(self.role_aware),
            "etc/passwd": hc.PASSWD,
            "etc/group": hc.GROUP,
            "lib.sh": images.guest_script("lib.sh"),
        }
        for name, data in node_files.items():
            cpio.file(f"node/{name}", data)
        cpio.file("node/etc/ha.d/authkeys", hc.AUTHKEYS, 0o600)
        cpio.file("node/etc/ha.d/resource.d/nfsd", hc.NFSD_SCRIPT, 0o755)
        cpio.file("node/sbin/hb-init", images.guest_script("hb-init"), 0o755)
        cpio.copy("node/usr/sbin/wdfeed", ctx.wdfeed, 0o755)
        archive = os.path.join(workdir, "node.cpio")
        with open(archive, "wb") as f:
            f.write(cpio.finish())
        rootimg = os.path.join(workdir, "root.img")
        vm.run(["cp", "--sparse=always", self.root_image, rootimg])
        data = os.path.join(workdir, "drbd.img")
        if node == hc.PRIMARY:
            make_drbd_disk(data)
        else:
            vm.run(["cp", "--sparse=always", os.path.join(os.path.dirname(workdir), hc.PRIMARY, "drbd.img"), data])
        return [self.stage1, archive], [(rootimg, True), (data, True)]

    # ------------------------------------------------------------------ the case
    def drive(self, ctx, case, with_wdfeed, guests, obs, res):
        drive(self, case, with_wdfeed, guests, obs, res)

    def finish(self, ctx, case, with_wdfeed, guests, res):
        finish(case, with_wdfeed, guests, res)


# ---------------------------------------------------------------------------- images

def role_aware(ctx):
    """Whether this wdfeed has checks that follow the node's role (`when:`, `drbd`): the one
    config that its `validate` accepts, tried on the host. A refusal for another reason (the
    host is not the guest) says nothing about the keys, so then the new keys win only if the
    refusal does not name them."""
    out = {}
    for aware in (True, False):
        path = os.path.join(ctx.outdir, f"watchdog-{'role-aware' if aware else 'plain'}.yaml")
        with open(path, "w") as f:
            f.write(hc.wdfeed_yaml(aware))
        r = subprocess.run([ctx.wdfeed, "validate", path], capture_output=True, text=True)
        out[aware] = (r.returncode, r.stdout + r.stderr)
    if out[True][0] == 0:
        return True
    if out[False][0] == 0:
        return False
    return not re.search(r"\bwhen\b|drbd", out[True][1])



def build_ledger():
    src = os.path.join(images.CLUSTERDIR, "ledger", "ledger.rs")
    out, done = images.cached(CACHE, "ledger", [src], ext="bin")
    if done:
        return out
    images.log("building the ledger writer (rustc, static)")
    r = subprocess.run(["rustc", "--edition", "2021", "-O", "-C", "target-feature=+crt-static", src, "-o",
                        out + ".tmp"], capture_output=True, text=True)
    if r.returncode != 0:
        raise vm.SetupError(f"rustc {src} failed:\n{r.stderr[-800:]}")
    os.rename(out + ".tmp", out)
    return out


def build_stage1(ctx):
    """The servers' initramfs: busybox, the modules to mount ext4 on virtio-blk, stage 1."""
    init = os.path.join(images.GUESTDIR, "hb-stage1")
    out, done = images.cached(CACHE, "initramfs-stage1", [images.LIB_SH, init, ctx.vmlinuz, __file__],
                              " ".join(STAGE1_MODULES))
    if done:
        return out
    img = images.Image(os.path.relpath(__file__, images.REPO))
    img.base(("newroot", "lib/modules"))
    img.busybox()
    img.modules(ctx.mods, STAGE1_MODULES)
    img.cpio.file("stage1.modules", "".join(f"{m}\n" for m in ctx.mods.closure(STAGE1_MODULES)))
    img.cpio.file("lib.sh", images.guest_script("lib.sh"))
    img.cpio.file("init", images.guest_script("hb-stage1"), 0o755)
    return img.write(out)


def build_client(ctx, ledger):
    init = os.path.join(images.GUESTDIR, "hb-client")
    out, done = images.cached(CACHE, "initramfs-client", [images.LIB_SH, init, ctx.vmlinuz, ledger, __file__],
                              " ".join(CLIENT_MODULES))
    if done:
        return out
    img = images.Image(os.path.relpath(__file__, images.REPO))
    img.base(("mnt/nfs", "lib/modules"))
    img.binary("bin/ledger", ledger)
    img.busybox()
    img.modules(ctx.mods, CLIENT_MODULES)
    img.cpio.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
    img.cpio.file("lib.sh", images.guest_script("lib.sh"))
    img.cpio.file("init", images.guest_script("hb-client"), 0o755)
    return img.write(out)


def build_root(ctx, tree):
    """The servers' ext4 root image (copied per node and case): the unpacked packages,
    busybox for every command they lack, /bin/sh -> bash, the kernel modules, an ld.so.cache.
    The node's archive adds its config and scripts at every boot."""
    out, done = images.cached(CACHE, "root", [ctx.vmlinuz, shutil.which("busybox"), __file__],
                              open(os.path.join(tree, ".debs")).read())
    if done:
        return out
    images.log("building the servers' ext4 root image")
    stage = out + ".d"
    shutil.rmtree(stage, ignore_errors=True)
    vm.run(["cp", "-a", tree, stage])
    os.unlink(os.path.join(stage, ".debs"))
    bb = shutil.which("busybox")
    shutil.copy(bb, os.path.join(stage, "bin", "busybox"))
    applets = subprocess.run([bb, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        if a in ("busybox", "watchdog", "sh", "init", "linuxrc"):
            continue
        if not any(os.path.lexists(os.path.join(stage, d, a)) for d in ("bin", "sbin", "usr/bin", "usr/sbin")):
            os.symlink("busybox", os.path.join(stage, "bin", a))
    if os.path.lexists(os.path.join(stage, "bin", "sh")):
        os.unlink(os.path.join(stage, "bin", "sh"))
    os.symlink("bash", os.path.join(stage, "bin", "sh"))
    for d in ("proc", "sys", "dev", "run", "tmp", "root", "srv/nfs", "var/log", "var/lib/nfs",
              "var/lib/heartbeat", "var/lib/drbd", "var/lib/wdfeed", "lib/modules", "etc/wdfeed", "mnt"):
        os.makedirs(os.path.join(stage, d), exist_ok=True)
    os.chmod(os.path.join(stage, "tmp"), 0o1777)
    for link, target in (("var/run", "/run"), ("var/lock", "/run/lock"),
                         ("var/lib/nfs/nfsdcltrack", hc.EXPORT + "/.nfsdcltrack")):
        p = os.path.join(stage, link)
        if os.path.lexists(p):
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
        os.symlink(target, p)
    for m in ctx.mods.closure(STAGE1_MODULES + SERVER_MODULES):
        shutil.copy(ctx.mods.path(m), os.path.join(stage, "lib", "modules", f"{m}.ko"))
    with open(os.path.join(stage, "etc", "ld.so.conf"), "w") as f:
        f.write(f"/lib/{images.MULTIARCH}\n/usr/lib/{images.MULTIARCH}\n/usr/lib\n/lib\n")
    vm.run(["ldconfig", "-r", stage], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.truncate(ROOT_MB << 20)
    vm.run(["mkfs.ext4", "-F", "-q", "-L", "root", "-d", stage,
            "-E", "lazy_itable_init=0,lazy_journal_init=0,nodiscard", tmp], stdout=subprocess.DEVNULL)
    os.rename(tmp, out)
    shutil.rmtree(stage, ignore_errors=True)
    return out


def make_drbd_disk(path):
    """DRBD's backing disk: an ext4 that leaves the last MiB for DRBD's internal meta data."""
    with open(path, "wb") as f:
        f.truncate(hc.DRBD_DISK_MB << 20)
    vm.run(["mkfs.ext4", "-F", "-q", "-L", "nfs", "-E", "lazy_itable_init=0,lazy_journal_init=0,nodiscard",
            path, f"{hc.DRBD_FS_KB}k"], stdout=subprocess.DEVNULL)


# ---------------------------------------------------------------------------- the ledger

RECORD = 64


def record(run, n):
    head = f"L {run:08x} {n:010d} "
    text = f"{head}{zlib.crc32(head.encode()):08x} "
    return (text + "." * (RECORD - 1 - len(text)) + "\n").encode()


def intact_records(data, run):
    """(set of intact record numbers, [bad ones]) of a ledger file's bytes."""
    ok, bad = set(), []
    for n in range((len(data) + RECORD - 1) // RECORD):
        got = data[n * RECORD:(n + 1) * RECORD]
        if got == record(run, n):
            ok.add(n)
        elif any(got):
            bad.append(n)
    return ok, bad


def parse_ranges(text):
    out = set()
    if text.strip() in ("", "none"):
        return out
    for part in text.split(","):
        a, b = part.split("-")
        out.update(range(int(a), int(b) + 1))
    return out


def acks(client, after=0.0):
    """[(host time, n)] of the writer's ACK lines."""
    return [(t, int(m.group(1))) for t, m in client.matching(r"^ACK (\d+)\s*$", after=after)]


# ---------------------------------------------------------------------------- who serves

def roles(guest):
    """[(host time, vip 0|1, DRBD role)] of a server's reporter lines."""
    return [(t, int(m.group(1)), m.group(2)) for t, m in guest.matching(r"CL: vip=([01]) ro=(\w+)")]


def primary_intervals(samples, t_end):
    out = []
    for k, (t, _v, ro) in enumerate(samples):
        if ro != "Primary":
            continue
        nxt = samples[k + 1][0] if k + 1 < len(samples) else t_end
        end = min(nxt, t + observe.HOLD_S, t_end)
        if out and t <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([t, end])
    return out


def served(act, t0, join_s=2.0):
    """The intervals a node served, relative to t0; reports less than join_s apart are one
    interval here (a loaded guest's reporter lines can arrive more than HOLD_S apart)."""
    out = []
    for a, b in act:
        if out and a - out[-1][1] < join_s:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return ", ".join(f"{a - t0:+.1f}..{b - t0:+.1f}s" for a, b in out) or "never"


# ---------------------------------------------------------------------------- drive

def wait_group(n1, n2, t_after, timeout):
    def held():
        for g in (n1, n2):
            bad = g.first_line(r"Giving up resources due to failure of (\S+)", after=t_after)
            if bad:
                raise CaseError(f"{g.node}: heartbeat gave up the group at start: {bad[1].group(0)} "
                                "(its /var/log/ha-debug is copied into the case's directory)")
        return next(((t, v, ro) for t, v, ro in roles(n1) if t >= t_after and v == 1 and ro == "Primary"), None)
    hit = wait_until(held, timeout)
    if hit is None:
        raise CaseError("n1 never held the group (address and DRBD Primary) after boot"
                        + (f": last report {roles(n1)[-1:]}" if roles(n1) else ""))
    return hit[0]


def drive(engine, case, with_wdfeed, guests, obs, res):
    n1, n2, c = guests[hc.PRIMARY], guests[hc.STANDBY], guests[hc.CLIENT]
    target = guests[case.target]
    other = n2 if target is n1 else n1
    res.case = case
    res.run_id = engine.run_id
    t_boot = n1.t_start
    for g in (n1, n2):
        expect(g, r"ready", BOOT_TIMEOUT_S, 0, "ready line (DRBD up, heartbeat started"
               + (", wdfeed armed)" if with_wdfeed else ")"))
    t_group = wait_group(n1, n2, 0, BOOT_TIMEOUT_S)
    res.notes.append(f"n1 held the group {t_group - t_boot:.1f}s after QEMU started")
    start = group_start_time(n1, 0, t_group)
    if start is not None:
        res.notes.append(f"n1's group started in {start:.1f}s (drbddisk start to the address up)")
    expect(c, r"mounted", BOOT_TIMEOUT_S, 0, "NFS mount on the client")
    if with_wdfeed:
        b1, b2 = bound_of(n1), bound_of(n2)
        res.bound = b1 if target is n1 else b2
    send(c, "write")
    expect(c, r"writer started", 30, 0, "ledger writer")
    if wait_until(lambda: len(acks(c)) >= 5, 60) is False:
        raise CaseError("the client's writer acknowledged fewer than 5 records in 60s: "
                        + "; ".join(m.string for _t, m in c.matching(r"^ERR .*")[-3:]))
    time.sleep(SETTLE_S)
    mac1, mac2 = hc.NODES["n1"]["mac"], hc.NODES["n2"]["mac"]
    if obs.count(mac1, time.monotonic() - 2) == 0:
        raise CaseError("n1 does not answer ARP for the address before the fault")
    if obs.count(mac2, t_group) > 0:
        raise CaseError("n2 answered ARP for the address before the fault")

    # ---- the fault
    t0, t_ref = inject(case, target, other, res)
    res.t0, res.t_ref = t0, t_ref

    # ---- what follows
    if case.healthy:
        t_end = time.monotonic()
    elif not with_wdfeed:
        watch_baseline(case, target, other, t_ref, res)
        t_end = time.monotonic()
    else:
        t_end = watch_wdfeed(case, target, other, t0, t_ref, res)
    # the writer keeps going a little, so that the recovery shows in the ACKs
    if case.data and not case.healthy:
        time.sleep(ACKS_AFTER_S)
    t_end = time.monotonic()
    res.t_end = t_end

    # ---- the ledger over NFS, from whichever node serves now
    if not case.data:
        res.t_stop = time.monotonic()
        res.nfs_error = "not read: no node serves after this fault"
        figures(case, with_wdfeed, n1, n2, c, obs, res)
        return
    send(c, "verify")
    v = wait_until(lambda: c.first_line(r"CL: verify end", after=t_end), NFS_READ_TIMEOUT_S)
    t_stop = time.monotonic()
    res.t_stop = c.first_line(r"CL: verify begin", after=t_end)
    res.t_stop = res.t_stop[0] if res.t_stop else t_stop
    if v:
        m = c.first_line(r"CL: verify INTACT (\S+)", after=t_end)
        bad = c.first_line(r"CL: verify BAD (\d+)", after=t_end)
        err = c.first_line(r"CL: verify VERIFY-ERROR (.*)", after=t_end)
        if m:
            res.nfs_intact = parse_ranges(m[1].group(1))
            res.nfs_bad = int(bad[1].group(1)) if bad else 0
        else:
            res.nfs_error = err[1].group(1) if err else "no INTACT line"
    else:
        res.nfs_error = f"no server answered the NFS read within {NFS_READ_TIMEOUT_S}s"
    figures(case, with_wdfeed, n1, n2, c, obs, res)


def inject(case, target, other, res):
    """The case's fault on `target`. Returns (t0, where a reset counts from)."""
    f = case.fault
    if f == "load":
        send(target, "load")
        t0 = expect(target, r"load started", 30, 0, "load")[0]
        time.sleep(HEALTHY_S)
        return t0, t0
    if f.startswith("guest:"):
        what = f.split(":", 1)[1]
        send(target, f"fault {what}")
        t0 = expect(target, rf"fault {what}", 30, 0, f"fault {what}")[0]
        return t0, t0
    if f == "root-stall":
        t0 = target.sigstop("nbd0")
        res.notes.append(f"{target.node}'s root qemu-nbd SIGSTOPped")
        return t0, t0
    if f in ("seed", "freeze"):
        t0 = target.sigstop("qemu")
        if f == "seed":
            target.sigstop("nbd0")
        time.sleep(case.freeze_s)
        t1 = target.sigcont("qemu")
        if f == "seed":
            # The root fails as the node thaws: its I/O, stalled all along, now gets EIO. Killed
            # just after the SIGCONT, not during the freeze: a QEMU that finds its NBD server
            # gone when it resumes holds the guest for about 5 s (seen once), which no disk does.
            time.sleep(SEED_KILL_AFTER_THAW_S)
            target.kill_nbd(0)
        res.notes.append(f"{target.node}'s QEMU SIGSTOPped for {t1 - t0:.2f}s"
                         + (f"; its root's qemu-nbd SIGSTOPped with it and SIGKILLed {SEED_KILL_AFTER_THAW_S}s "
                            "after the SIGCONT (started again only when the node is reset)" if f == "seed" else "")
                         + "; reset counts from SIGCONT, takeover from SIGSTOP")
        return t0, t1
    if f == "diskless":
        other.proc.kill()
        t_off = time.monotonic()
        res.notes.append(f"{other.node} powered off (QEMU SIGKILLed)")
        wait_until(lambda: target.first_line(r"CL: drbd .*cs:(WFConnection|StandAlone|NetworkFailure)",
                                             after=t_off), 30)
        t0 = target.kill_nbd(1)
        res.notes.append(f"{target.node}'s DRBD backing disk failed (qemu-nbd SIGKILLed) "
                         f"{t0 - t_off:.1f}s after the peer went")
        return t0, t0
    if f == "secondary":
        t0 = target.kill_nbd(1)
        res.notes.append(f"{target.node}'s DRBD backing disk failed (qemu-nbd SIGKILLed)")
        time.sleep(10)
        send(target, "fault drbd-disconnect")
        expect(target, r"fault drbd-disconnect", 30, t0, "disconnect")
        time.sleep(15)
        return t0, t0
    raise ValueError(f"unknown fault {f}")


def restart_root_at_reset(target, t_ref, timeout):
    """The seed's root failed with its qemu-nbd: start it again as soon as the node is reset,
    so that it boots. Returns the reset time or None."""
    t_r = wait_until(lambda: reset_time(target, t_ref), timeout, step=0.02)
    if target.nbds.get(0) is not None and target.nbds[0].poll() is not None:
        target.start_nbd(0)
    return t_r


def watch_baseline(case, target, other, t_ref, res):
    deadline = t_ref + BASELINE_WATCH_S
    if case.fault == "seed":
        t_r = restart_root_at_reset(target, t_ref, BASELINE_WATCH_S)
        if t_r:
            res.notes.append(f"{target.node} was reset {t_r - t_ref:.2f}s after the thaw; its root's qemu-nbd "
                             "started again")
    time.sleep(max(0.0, deadline - time.monotonic()))
    if case.fault == "root-stall" and target.nbds[0].pid in target._stopped:
        target.sigcont("nbd0")
        res.notes.append(f"{target.node}'s root qemu-nbd SIGCONTinued at the end of the window")


def watch_wdfeed(case, target, other, t0, t_ref, res):
    limit = res.bound + slack(res.bound)
    if case.fenced:
        if case.fault == "seed":
            t_r = restart_root_at_reset(target, t_ref, limit + 5)
        else:
            t_r = wait_until(lambda: reset_time(target, t_ref), limit + 5)
        if case.fault == "root-stall" and target.nbds[0].pid in target._stopped:
            target.sigcont("nbd0")
            res.notes.append(f"{target.node}'s root qemu-nbd SIGCONTinued "
                             + ("after the reset" if t_r else "at the end of the wait"))
        if case.takeover:
            wait_until(lambda: observe.first_claim(observe.reports(other), t0), TAKEOVER_WAIT_S)
        if t_r and case.data:
            back = wait_until(lambda: target.first_line(r"CL: (ready|error .*)", after=t_r), REBOOT_TIMEOUT_S)
            if back:
                wait_until(lambda: target.first_line(r"CL: drbd .*ds:UpToDate/UpToDate", after=back[0]), 120)
                time.sleep(AFTER_BACK_S)
        return time.monotonic()
    if case.healthy:
        return time.monotonic()
    # not fenced: watch that nothing happens for a while
    time.sleep(max(0.0, t_ref + 30 - time.monotonic()))
    return time.monotonic()


def group_start_time(node, after, t_claim):
    """Seconds from heartbeat running `drbddisk r0 start` on the node to its address up."""
    s = [t for t, _m in node.matching(r"Running /etc/ha\.d/+resource\.d/drbddisk r0 start", after=after)
         if t <= t_claim]
    return (t_claim - s[-1]) if s else None


def takeover_start_time(node, after, t_claim):
    """Seconds from heartbeat deciding to take the group over (`Resources being acquired from`)
    to the node's address up: the group's start as heartbeat runs it, with the status script,
    mach_down and ResourceManager that come before `drbddisk start`."""
    s = [t for t, _m in node.matching(r"Resources being acquired from", after=after) if t <= t_claim]
    return (t_claim - s[0]) if s else None


def bound_of(g):
    b = g.first_line(r"fence_bound_s=([0-9.]+)")
    if b is None:
        raise CaseError(f"{g.node}: wdfeed printed no fence bound (no fence_bound_s= line)")
    return float(b[1].group(1))


# ---------------------------------------------------------------------------- figures

def figures(case, with_wdfeed, n1, n2, c, obs, res):
    t0, t_end = res.t0, res.t_end
    target = n1 if case.target == hc.PRIMARY else n2
    other = n2 if target is n1 else n1
    if obs.dead():
        raise CaseError(f"the ARP observer's arping {obs.dead()} ended early: see arp.log")
    rep1, rep2 = observe.reports(n1), observe.reports(n2)
    act1, act2 = observe.active_intervals(rep1, t_end), observe.active_intervals(rep2, t_end)
    t_from = t0 - 30
    dual_rep, _ = observe.overlap(act1, act2, t_from, t_end)
    dual_arp, first_arp = obs.dual(t_from, t_end)
    res.dual = max(dual_arp, dual_rep)
    res.notes.append(f"dual_active by ARP {dual_arp:.2f}s, by the reporters {dual_rep:.2f}s")
    res.notes.append(f"who served (reporters, from the fault): n1 {served(act1, t0)}; n2 {served(act2, t0)}")
    mac2 = hc.NODES["n2"]["mac"]
    claims = [t for t in (obs.first_reply(mac2, t0, t_end), observe.first_claim(rep2, t0, t_end)) if t is not None]
    res.takeover = (min(claims) - t0) if claims else None
    t_ref = res.t_ref
    t_r = reset_time(target, t_ref, t_end)
    res.reset = (t_r - t_ref) if t_r else None
    res.t_reset = t_r
    # split brain: DRBD's own word, or both nodes Primary at once
    # (DRBD resolving one by the recipe's after-sb policy is in the notes, not a split brain:
    # the returning node's writes it discards never reached a client)
    sb = [g.node for g in (n1, n2)
          if g.first_line(r"Split-Brain detected but unresolved|CL: drbd split-brain", after=0)]
    solved = [(g.node, m.group(0)) for g in (n1, n2)
              for _t, m in g.matching(r"Split-Brain detected, \d+ primaries, automatically solved.*")]
    for node, line in solved[:2]:
        res.notes.append(f"{node}: DRBD {line.strip()[:90]} (after-sb policy of the recipe)")
    p1, p2 = primary_intervals(roles(n1), t_end), primary_intervals(roles(n2), t_end)
    both, _ = observe.overlap(p1, p2, 0, t_end)
    res.split_brain = bool(sb) or both > 0
    if sb:
        res.notes.append(f"DRBD split brain left unresolved on {', '.join(sb)}")
    if both > 0:
        res.notes.append(f"both nodes DRBD Primary for {both:.2f}s")
    # the writes
    a = acks(c)
    res.acked_set = {n for _t, n in a}
    res.acked = len(res.acked_set)
    times = [t for t, _n in a]
    if times:
        gaps = [(y - x, x) for x, y in zip(times, times[1:])]
        gaps.append((res.t_stop - times[-1], times[-1]))
        g, at = max(gaps)
        res.gap = g
        res.notes.append(f"longest ACK gap {g:.2f}s, from {at - t0:+.2f}s after the fault; "
                         f"{sum(1 for t in times if t > t0)} records acknowledged after the fault")
    errs = c.matching(r"^ERR (\d+) (.*)")
    if errs:
        res.notes.append(f"the writer saw {len(errs)} errors, first: {errs[0][1].group(0)[:60]} at "
                         f"{errs[0][0] - t0:+.2f}s")
    res.attempted = max([n for _t, n in a] + [int(m.group(1)) for _t, m in errs] + [-1])
    for what, g in (("fence", target), ("fence on the other node", other)):
        hit = g.first_line(r"fencing check=.*", after=t0)
        if hit and hit[0] <= t_end:
            res.notes.append(f"wdfeed {what} at {hit[0] - t0:+.2f}s: {hit[1].group(0)[:150]}")
    soft = target.first_line(SOFTDOG_LINE, after=t0)
    if soft:
        res.notes.append(f"softdog fired on {target.node} at {soft[0] - t0:+.2f}s")
    for g in (n1, n2):
        for pat, what in ((r"returning after partition", "partition heal"),
                          (r"Resources being acquired from", "takeover started"),
                          (r"Performing heartbeat restart exec", "heartbeat restart"),
                          (r"Giving up resources due to failure of (\S+)", "resource failure"),
                          (r"EXT4-fs \(vda\): Remounting filesystem read-only|Aborting journal on device vda",
                           "root read-only")):
            hit = g.first_line(pat, after=t0)
            if hit and hit[0] <= t_end:
                res.notes.append(f"{g.node}: {what} at {hit[0] - t0:+.2f}s ({hit[1].group(0)[:80]})")


def finish(case, with_wdfeed, guests, res):
    """After the guests stopped: heartbeat's logs from the servers' roots, the ledger offline
    from the final primary's backing disk, then the verdict."""
    for node in (hc.PRIMARY, hc.STANDBY):
        g = guests.get(node)
        if g is None or not g.disks or not os.path.exists(g.disks[0][0]):
            continue
        for log in ("ha-log", "ha-debug"):
            with open(os.path.join(g.workdir, log), "w") as f:
                subprocess.run(["debugfs", "-R", f"cat /var/log/{log}", g.disks[0][0]], stdout=f,
                               stderr=subprocess.DEVNULL)
    if not hasattr(res, "t_end"):
        return          # the case stopped before its figures: nothing measured
    n1, n2 = guests[hc.PRIMARY], guests[hc.STANDBY]
    final = final_primary(n1, n2, res.t_stop)
    res.final = final
    off = None
    if final is None:
        res.notes.append("no node was ever DRBD Primary: no backing disk to read offline")
    else:
        if not any(x[2] == "Primary" for x in roles(final)[-1:]):
            res.notes.append(f"no node was DRBD Primary at the end: read the disk of {final.node}, "
                             "Primary last")
        off = read_offline(final, res)
    if case.data:
        lost = set(res.acked_set)
        got = []
        if getattr(res, "nfs_intact", None) is not None:
            got.append(("over NFS", res.nfs_intact))
        else:
            res.notes.append(f"the ledger could not be read over NFS: {getattr(res, 'nfs_error', '?')}")
        if off is not None:
            got.append((f"offline from {final.node}'s disk", off))
        if got:
            missing = {w: res.acked_set - s for w, s in got}
            lost = set().union(*missing.values())
            for w, s in got:
                res.notes.append(f"read {w}: {len(s)} intact records, {len(missing[w])} acknowledged ones "
                                 "missing or torn" + (f" (first {sorted(missing[w])[:5]})" if missing[w] else ""))
                beyond = [n for n in s if n > res.attempted + 1]
                if beyond:
                    res.notes.append(f"read {w}: records never written are present: {beyond[:5]}")
                    res.beyond = True
            res.lost = len(lost)
        res.complete = len(got) == 2
    res.measured = True
    if with_wdfeed:
        judge(case, guests, res)


def final_primary(n1, n2, t_stop):
    last = {}
    for g in (n1, n2):
        r = [x for x in roles(g) if x[0] <= t_stop]
        last[g.node] = r[-1] if r else None
    prim = [g for g in (n1, n2) if last[g.node] and last[g.node][2] == "Primary"]
    if len(prim) == 1:
        return prim[0]
    if len(prim) == 2:
        serving = [g for g in prim if last[g.node][1] == 1]
        return serving[0] if serving else prim[0]
    # nobody is Primary now (the service is down): the node that was Primary last has the data
    was = [(max(t for t, _v, ro in roles(g) if ro == "Primary" and t <= t_stop), g) for g in (n1, n2)
           if any(ro == "Primary" and t <= t_stop for t, _v, ro in roles(g))]
    return max(was, key=lambda x: x[0])[1] if was else None


def read_offline(node, res):
    """The intact records of /ledger in the node's DRBD backing disk, read on a copy after
    e2fsck replayed the ext4 journal."""
    src = node.disks[1][0]
    copy = os.path.join(res.workdir, f"offline-{node.node}.img")
    vm.run(["cp", "--sparse=always", src, copy])
    try:
        fsck = subprocess.run(["e2fsck", "-fy", copy], capture_output=True, text=True)
        if fsck.returncode >= 4:
            res.notes.append(f"e2fsck of {node.node}'s backing disk: rc={fsck.returncode}: "
                             f"{fsck.stdout.strip().splitlines()[-1:]}")
        out = os.path.join(res.workdir, f"ledger-{node.node}")
        subprocess.run(["debugfs", "-R", f"dump /ledger {out}", copy], capture_output=True, text=True)
        if not os.path.exists(out):
            res.notes.append(f"no /ledger in {node.node}'s backing disk")
            return set()
        with open(out, "rb") as f:
            ok, bad = intact_records(f.read(), int(res.run_id, 16))
        if bad:
            res.notes.append(f"offline: {len(bad)} torn or foreign records, first {bad[:5]}")
        return ok
    finally:
        os.unlink(copy)


def judge(case, guests, res):
    n1, n2 = guests[hc.PRIMARY], guests[hc.STANDBY]
    target = n1 if case.target == hc.PRIMARY else n2
    other = n2 if target is n1 else n1
    t0, t_end = res.t0, res.t_end
    failed = []
    early = [(g.node, m.group(0)[:100]) for g in (n1, n2) for t, m in g.matching(r"fencing check=.*") if t < t0]
    for node, line in early:
        failed.append(f"wdfeed fenced {node} before the fault: {line}")
    if case.data:
        if not getattr(res, "complete", False):
            failed.append("the ledger was not read both ways (over NFS and offline)")
        if res.lost is None or res.lost > 0:
            failed.append(f"lost={res.lost}: acknowledged records missing")
        if getattr(res, "beyond", False):
            failed.append("records that were never written are present")
    if res.dual and res.dual > 0:
        failed.append(f"both nodes served the address for {res.dual:.2f}s")
    if res.split_brain:
        failed.append("split brain (unresolved by DRBD, or both nodes Primary at once)")
    other_fence = other.first_line(r"fencing check=.*", after=t0)
    if other_fence and other_fence[0] <= t_end:
        failed.append(f"{other.node} was fenced: {other_fence[1].group(0)[:120]}")
    if reset_time(other, t0, t_end):
        failed.append(f"{other.node} was reset")
    if not case.fenced:
        fence = target.first_line(r"fencing check=.*", after=t0)
        if fence and fence[0] <= t_end:
            failed.append(f"{target.node} was fenced: {fence[1].group(0)[:120]}")
        if res.reset is not None:
            failed.append(f"{target.node} was reset at {res.reset:.2f}s")
    else:
        limit = res.bound + slack(res.bound)
        if res.reset is None or res.reset > limit:
            failed.append(f"{target.node} was reset after {fmt(res.reset)}s, not within the bound "
                          f"{res.bound:.2f}s + slack {slack(res.bound):.2f}s")
    if case.takeover:
        fence = target.first_line(r"fencing check=.*", after=t0)
        fence_rel = 0.0 if case.fault in ("seed", "freeze") or not fence else fence[0] - t0
        claim = observe.first_claim(observe.reports(other), t0, t_end)
        start = takeover_start_time(other, t0, claim) if claim else None
        want = fence_rel + hc.DEADTIME_S + (start or 0.0) + 2
        if res.takeover is None or res.takeover > want:
            failed.append(f"{other.node} served {fmt(res.takeover)}s after the fault, not within {want:.2f}s "
                          f"(fence {fence_rel:.2f}s + deadtime {hc.DEADTIME_S}s + group start {fmt(start)}s + 2s)")
        elif start is not None:
            res.notes.append(f"{other.node}'s group started in {start:.2f}s (heartbeat's takeover decision "
                             "to the address up)")
    else:
        if res.takeover is not None:
            failed.append(f"n2 took the address {res.takeover:.2f}s after the fault")
        gave_up = [t for t, v, _ro in roles(n1) if t0 < t <= t_end and v == 0]
        if gave_up and case.target == hc.STANDBY:
            failed.append(f"n1 gave up the address at {gave_up[0] - t0:+.2f}s")
        if case.fault in ("seed", "freeze"):
            bound = hc.PEER_TIMEOUT_S + 1
            if res.gap is None or res.gap > bound:
                failed.append(f"longest ACK gap {fmt(res.gap)}s, more than DRBD's peer timeout "
                              f"{hc.PEER_TIMEOUT_S:.1f}s + 1s")
    if case.fenced and case.data and res.t_reset:
        back = target.first_line(r"CL: ready", after=res.t_reset)
        if back is None:
            failed.append(f"{target.node} did not come back (no ready line after its reset)")
        else:
            synced = target.first_line(r"CL: drbd .*ro:Secondary/Primary ds:UpToDate/UpToDate", after=back[0])
            if synced is None:
                failed.append(f"{target.node} came back but DRBD did not resync to UpToDate/UpToDate "
                              f"as Secondary: {target.matching(r'CL: drbd .*')[-1:]}")
            else:
                res.notes.append(f"{target.node} back {back[0] - res.t_reset:.1f}s after its reset, DRBD "
                                 f"UpToDate as Secondary {synced[0] - back[0]:.1f}s later")
            again = [t for t, v, ro in roles(target) if t > back[0] and (v == 1 or ro == "Primary")]
            if again:
                failed.append(f"{target.node} took resources back at {again[0] - t0:+.2f}s")
            elif t_end - back[0] < AFTER_BACK_S:
                failed.append(f"{target.node} was watched only {t_end - back[0]:.1f}s after it came back")
    res.reason = "; ".join(failed)
    res.ok = not failed
