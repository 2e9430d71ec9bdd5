"""The systemd guest: Debian's systemd as PID 1 on a real ext4 root, wdfeed started by the
shipped unit (systemd/wdfeed.service, unmodified, with its sandboxing), a data disk (vdb)
for DRBD, and a case script run by a service of its own.

The root image is built once from Debian packages (`apt-get download`, `dpkg -x`, then
`mkfs.ext4 -d`) and cached under tests/vm/cache, keyed by what went into it (not wdfeed:
a new build does not make a new image). Per case the template is copied, and a small
initramfs loads the modules, lays the case's files over the root (/case-root in the case
archive: wdfeed, the unit, the config, the script) and `switch_root`s into
/lib/systemd/systemd. A case
is data (`Scenario`): its config, its script (sourced after guest/systemd/lib.sh) and any
files it wants on the root; the script judges itself (`done` or `fail <reason>`), the host
adds what only it can see (the VM stayed up, wdfeed's bound).
"""

import glob
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass

from . import assets, cases
from .qemu import Guest

GUEST_DIR = os.path.join(assets.VMDIR, "guest", "systemd")
DEB_DIR = os.path.join(assets.CACHE, "systemd-debs")
ROOT_MB = 192
APPEND = "console=ttyS0 panic=0 quiet rdinit=/init systemd.unit=vmtest.target"

# systemd 252 of Debian 12 and what its binaries link (ldd, checked when the root is built),
# util-linux's mount/umount, drbd-utils (drbdadm, drbdsetup-84, drbdmeta: libc only).
PACKAGES = [
    "systemd", "libsystemd-shared", "libsystemd0", "libc6", "libgcc-s1", "gcc-12-base",
    "libacl1", "libapparmor1", "libaudit1", "libaudit-common", "libblkid1", "libcap2",
    "libcap-ng0", "libcrypt1", "libcryptsetup12", "libdevmapper1.02.1", "libargon2-1",
    "libjson-c5", "libfdisk1", "libgcrypt20", "libgpg-error0", "libip4tc2", "libkmod2",
    "liblz4-1", "liblzma5", "libmount1", "libpam0g", "libpcre2-8-0", "libseccomp2",
    "libselinux1", "libssl3", "libzstd1", "libuuid1", "libudev1", "libsmartcols1", "zlib1g",
    "libbz2-1.0", "libp11-kit0", "libffi8", "libmd0", "mount", "drbd-utils",
]

# The i6300esb card (a real PCI watchdog, reset after one timeout), the disks, ext4, DRBD.
MACHINE = cases.DRIVERS["i6300esb"].machine
MODULES = cases.BASE_MODULES + [("i6300esb", ""), ("drbd", "")]

# One single-node DRBD resource on vdb; its peer never answers (WFConnection), so the node
# is Primary alone, as a primary whose standby is down.
DRBD_CONF = """global { usage-count no; }
resource r0 {
  device /dev/drbd0;
  disk /dev/vdb;
  meta-disk internal;
  on vm { address 127.0.0.1:7789; }
  on peer { address 127.0.0.2:7789; }
}
"""

FAKE = "#!/bin/sh\nwhile :; do sleep 1; done\n"


@dataclass(frozen=True)
class Scenario:
    name: str
    doc: str
    case: str                  # shell, sourced after lib.sh by vmtest.service
    config: str                # /etc/wdfeed/watchdog.yaml
    files: tuple = ()          # ((path on the root, text, mode), ...): more files for the case
    data_mb: int = 64          # vdb; its ext4 leaves the last MiB for DRBD's meta data
    limit_s: int = 300         # from QEMU's start to the script's `done`
    stay_up_s: int = 0         # after `done` the VM must stay up this long
    programs: tuple = ()       # ((path on the root, C source under tests/vm/guest), ...):
                               # helpers built on the host (cc -static) for the case
    reset_after: str = ""      # after `done` the VM must be reset by the watchdog within
                               # wdfeed's bound + slack of the VMTEST line matching this


_build_lock = threading.Lock()


def log(msg):
    assets.log(f"systemd guest: {msg}")


def ensure_debs():
    os.makedirs(DEB_DIR, exist_ok=True)
    missing = [p for p in PACKAGES if not glob.glob(os.path.join(DEB_DIR, f"{p}_*.deb"))]
    if not missing:
        return
    log(f"apt-get download {len(missing)} packages")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["apt-get", "download", "-q"] + missing, cwd=DEB_DIR, env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
        r = subprocess.run(["apt-get", "download", "-q"] + missing, cwd=DEB_DIR, env=env,
                           capture_output=True, text=True)
    if r.returncode != 0:
        raise assets.SetupError(f"apt-get download {' '.join(missing)} failed:\n{r.stderr}")


def _debs():
    out = []
    for p in PACKAGES:
        found = sorted(glob.glob(os.path.join(DEB_DIR, f"{p}_*.deb")))
        if not found:
            raise assets.SetupError(f"no .deb for {p} in {DEB_DIR}")
        out.append(found[-1])
    return out


def _guest_files():
    return sorted(os.path.join(GUEST_DIR, f) for f in os.listdir(GUEST_DIR))


def ensure_root(ctx):
    """The root template for these packages and guest files: built once."""
    with _build_lock:
        ensure_debs()
        debs = _debs()
        busybox = shutil.which("busybox")
        h = hashlib.sha256()
        h.update(" ".join(os.path.basename(d) for d in debs).encode())
        h.update(DRBD_CONF.encode())
        h.update(assets.file_digest([busybox] + _guest_files()).encode())
        image = os.path.join(assets.CACHE, f"systemd-root-{h.hexdigest()[:16]}.img")
        if os.path.exists(image):
            return image
        log("building the root image")
        stage = tempfile.mkdtemp(prefix="systemd-root-", dir=assets.CACHE)
        try:
            _stage_root(stage, debs, busybox)
            tmp = image + ".tmp"
            with open(tmp, "wb") as f:
                f.truncate(ROOT_MB << 20)
            assets.run(["mkfs.ext4", "-F", "-q", "-L", "root", "-d", stage,
                        "-E", "lazy_itable_init=0,lazy_journal_init=0,nodiscard", tmp],
                       stdout=subprocess.DEVNULL)
            os.rename(tmp, image)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        return image


def _write(stage, path, text, mode=0o644):
    full = os.path.join(stage, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(text)
    os.chmod(full, mode)


def _stage_root(stage, debs, busybox):
    os.chmod(stage, 0o755)
    for d in debs:
        assets.run(["dpkg", "-x", d, stage])
    # busybox for the shell and the small tools, where no package put a binary
    shutil.copy(busybox, os.path.join(stage, "bin", "busybox"))
    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    for a in applets:
        name = os.path.basename(a)
        if any(os.path.lexists(os.path.join(stage, d, name))
               for d in ("bin", "sbin", "usr/bin", "usr/sbin")):
            continue
        os.symlink("/bin/busybox", os.path.join(stage, "bin", name))
    # the shipped unit (it comes with each case) enabled as its [Install] says
    wants = os.path.join(stage, "etc", "systemd", "system", "sysinit.target.wants")
    os.makedirs(wants, exist_ok=True)
    os.symlink("/lib/systemd/system/wdfeed.service", os.path.join(wants, "wdfeed.service"))
    for name in ("vmtest.target", "vmtest.service"):
        shutil.copy(os.path.join(GUEST_DIR, name), os.path.join(stage, "etc", "systemd", "system", name))
    os.makedirs(os.path.join(stage, "etc", "systemd", "journald.conf.d"), exist_ok=True)
    shutil.copy(os.path.join(GUEST_DIR, "journald-console.conf"),
                os.path.join(stage, "etc", "systemd", "journald.conf.d", "console.conf"))
    lib = os.path.join(stage, "usr", "local", "lib", "vmtest")
    os.makedirs(lib, exist_ok=True)
    for name in ("lib.sh", "run"):
        shutil.copy(os.path.join(GUEST_DIR, name), os.path.join(lib, name))
    _write(stage, "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    _write(stage, "/etc/group", "root:x:0:\nsystemd-journal:x:101:\nnogroup:x:65534:\n")
    _write(stage, "/etc/hostname", "vm\n")
    _write(stage, "/etc/machine-id", "2f6b4b6c1c8e4d7fa0e3d9b5c4a1e7f0\n", 0o444)
    _write(stage, "/etc/os-release", 'PRETTY_NAME="wdfeed test guest (Debian 12 packages)"\nID=debian\nVERSION_ID="12"\n')
    _write(stage, "/etc/fstab", "# the root is mounted by the initramfs\n")
    _write(stage, "/etc/drbd.conf", DRBD_CONF)
    _write(stage, "/usr/local/bin/fakehb", FAKE, 0o755)
    for d in ("srv/data", "root", "tmp", "var/lib/drbd", "var/lib/wdfeed", "etc/wdfeed"):
        os.makedirs(os.path.join(stage, d), exist_ok=True)
    os.chmod(os.path.join(stage, "tmp"), 0o1777)


def _base_initramfs(ctx):
    """busybox, the modules and guest/systemd/init; cached like the suite's own."""
    init = os.path.join(GUEST_DIR, "init")
    names = [m for m, _ in MODULES]
    digest = assets.file_digest([shutil.which("busybox"), init, ctx.vmlinuz])
    digest += "-" + hashlib.sha256(" ".join(names).encode()).hexdigest()[:8]
    path = os.path.join(assets.CACHE, f"initramfs-systemd-{digest}.cpio")
    with _build_lock:
        if not os.path.exists(path):
            with open(init) as f:
                assets.build_base_initramfs(path, ctx.moddir, names, {}, {"init": (f.read(), 0o755)})
    return path


def case_archive(ctx, scen, path):
    cpio = assets.Cpio()
    mods = ctx.mods.closure([m for m, _ in MODULES])
    params = dict(MODULES)
    # libcrc32c finds crc32c at load time: the generic one first
    mods.sort(key=lambda m: m != "crc32c_generic")
    cpio.file("case.modules", "".join(f"{m} {params.get(m, '')}\n" for m in mods))
    cpio.copy("case-root/usr/sbin/wdfeed", ctx.wdfeed, 0o755)
    for unit in ("wdfeed.service", "wdfeed-fence@.service"):
        cpio.copy(f"case-root/lib/systemd/system/{unit}",
                  os.path.join(assets.REPO, "systemd", unit), 0o644)
    cpio.file("case-root/etc/wdfeed/watchdog.yaml", scen.config, 0o600)
    cpio.file("case-root/usr/local/lib/vmtest/case.sh", scen.case, 0o644)
    for p, text, mode in scen.files:
        cpio.file("case-root/" + p.lstrip("/"), text, mode)
    for p, source in scen.programs:
        cpio.copy("case-root/" + p.lstrip("/"), build_program(source), 0o755)
    with open(path, "wb") as f:
        f.write(cpio.finish())


def build_program(source):
    """A static build of a C helper under tests/vm/guest, cached by its source's digest."""
    src = os.path.join(assets.VMDIR, "guest", source)
    with open(src, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    out = os.path.join(assets.CACHE, f"{os.path.basename(source)}-{digest}.bin")
    if not os.path.exists(out):
        tmp = out + ".tmp"
        r = subprocess.run(["cc", "-O2", "-static", "-o", tmp, src], capture_output=True, text=True)
        if r.returncode != 0:
            raise assets.SetupError(f"cannot build {source} (cc -static; gcc and libc6-dev): {r.stderr.strip()[:300]}")
        os.replace(tmp, out)
    return out


def prepare(ctx):
    ctx.systemd_root = ensure_root(ctx)
    ctx.systemd_initramfs = _base_initramfs(ctx)


def run_case(ctx, scen, result_cls):
    res = result_cls("systemd", scen.name)
    t_case = time.monotonic()
    workdir = os.path.join(ctx.outdir, f"systemd-{scen.name}")
    os.makedirs(workdir, exist_ok=True)
    root = os.path.join(workdir, "root.img")
    assets.run(["cp", "--sparse=always", ctx.systemd_root, root])
    data = os.path.join(workdir, "data.img")
    with open(data, "wb") as f:
        f.truncate(scen.data_mb << 20)
    assets.run(["mkfs.ext4", "-F", "-q", "-L", "data",
                "-E", "lazy_itable_init=0,lazy_journal_init=0,nodiscard", data,
                f"{scen.data_mb - 1}M"], stdout=subprocess.DEVNULL)
    case_cpio = os.path.join(workdir, "case.cpio")
    case_archive(ctx, scen, case_cpio)
    guest = Guest(workdir, MACHINE, ctx.vmlinuz, [ctx.systemd_initramfs, case_cpio], APPEND,
                  disk=root, extra_disks=[data])
    try:
        guest.start()
        drive(guest, scen, res)
    except Exception as e:  # a harness error is a failed case, with its cause
        res.ok = False
        res.reason = f"harness error: {type(e).__name__}: {e}"
    finally:
        if res.outcome == "none":
            end = guest.wait_outcome(0)
            res.outcome = end[1] if end else "up"
        guest.stop()
        res.tail = guest.tail(80) + res.tail
        res.wall = time.monotonic() - t_case
        if res.ok:
            for big in (root, data, os.path.join(workdir, "initrd.cpio")):
                if os.path.exists(big):
                    os.unlink(big)
    return res


def drive(guest, scen, res):
    end_line = guest.wait_line(r"VMTEST: (done|fail|error)", scen.limit_s)
    bound = guest.first_line(cases.WDFEED_SAYS["bound"])
    if bound:
        res.bound = float(bound[1].group(1))
    start = guest.first_line(r"VMTEST: boot ")
    for t, m in guest.matching(r"VMTEST: note (.*?) up=[0-9.]+$"):
        res.notes.append(f"+{t - (start[0] if start else guest.t_start):.1f}s {m.group(1)}")
    if end_line is None:
        gone = guest.wait_outcome(0)
        res.outcome = gone[1] if gone else "up"
        res.reason = (f"the case did not end within {scen.limit_s}s"
                      + (f": the VM ended ({gone[2]})" if gone else ""))
        return
    t_end, m = end_line
    res.after = t_end - guest.t_start
    if m.group(1) != "done":
        res.reason = m.string.split("VMTEST: ", 1)[1].strip()
        gone = guest.wait_outcome(0)
        res.outcome = gone[1] if gone else "up"
        return
    if scen.reset_after:
        fault = guest.first_line(scen.reset_after)
        if fault is None:
            res.reason = f"no VMTEST line matches /{scen.reset_after}/"
            return
        limit = res.bound + cases.slack(res.bound)
        gone = guest.wait_outcome(max(0.0, fault[0] + limit - time.monotonic()) + 5)
        if gone is None:
            res.outcome = "up"
            res.reason = f"no reset within {limit:.1f}s (B + slack) of the fault"
            return
        res.outcome = gone[1]
        after = gone[0] - fault[0]
        res.notes.append(f"reset {after:.2f}s after the fault ({gone[2]}), bound {res.bound:.1f}s")
        if after > limit:
            res.reason = f"the reset came {after:.2f}s after the fault, over B + slack {limit:.2f}s"
            return
        res.ok = True
        return
    gone = guest.wait_outcome(scen.stay_up_s)
    if gone is not None:
        res.outcome = gone[1]
        res.reason = f"the VM ended {gone[0] - t_end:.2f}s after the case was done ({gone[2]})"
        return
    res.outcome = "up"
    if scen.stay_up_s:
        res.notes.append(f"the VM stayed up {scen.stay_up_s}s after the case was done")
    res.ok = True
