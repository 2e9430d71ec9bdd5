"""What the comparison's guests are made of: the VM suite's kernel, modules and init (reused
read-only from tests/vm), plus Debian's watchdog 5.16 and stress-ng, in a base initramfs of
its own (bench/cache/initramfs-compare-*.cpio), and the per-case archive."""

import glob
import hashlib
import os
import shutil
import subprocess
import sys

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(REPO, "tests", "vm"))

from vmtest import assets, cases, qemu, suite  # noqa: E402,F401

CACHE = os.path.join(BENCH, "cache")
WD_PACKAGE_VERSION = "5.16"

log = assets.log
SetupError = assets.SetupError


def _apt_env():
    return dict(os.environ, DEBIAN_FRONTEND="noninteractive")


def ensure_watchdog516():
    """Debian's watchdog package, fetched with `apt-get download` and unpacked with `dpkg -x`
    into bench/cache/watchdog (never installed). Returns (binary, package version, path of
    the package's /etc/watchdog.conf)."""
    top = os.path.join(CACHE, "watchdog")
    os.makedirs(top, exist_ok=True)
    debs = sorted(glob.glob(os.path.join(top, "watchdog_*.deb")))
    if not debs:
        log("apt-get download watchdog")
        r = subprocess.run(["apt-get", "download", "-q", "watchdog"], cwd=top, env=_apt_env(),
                           capture_output=True, text=True)
        if r.returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=_apt_env(), stdout=subprocess.DEVNULL)
            assets.run(["apt-get", "download", "-q", "watchdog"], cwd=top, env=_apt_env(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        debs = sorted(glob.glob(os.path.join(top, "watchdog_*.deb")))
    if not debs:
        raise SetupError("apt-get download watchdog left no .deb")
    deb = debs[-1]
    version = subprocess.run(["dpkg-deb", "-f", deb, "Version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    upstream = version.split(":")[-1].split("-")[0]
    if upstream != WD_PACKAGE_VERSION:
        raise SetupError(f"{os.path.basename(deb)} is watchdog {version}, not {WD_PACKAGE_VERSION}: "
                         "this comparison is written against 5.16 (Debian 12)")
    root = os.path.join(top, "root-" + version.replace(":", "_"))
    if not os.path.isdir(root):
        tmp = root + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        assets.run(["dpkg", "-x", deb, tmp])
        os.rename(tmp, root)
    binary = os.path.join(root, "usr", "sbin", "watchdog")
    conf = os.path.join(root, "etc", "watchdog.conf")
    for p in (binary, conf):
        if not os.path.exists(p):
            raise SetupError(f"the watchdog package has no {p}")
    return binary, version, conf


def ensure_stress_ng():
    path = shutil.which("stress-ng")
    if path is None:
        log("apt-get install stress-ng")
        r = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "stress-ng"],
                           env=_apt_env(), capture_output=True, text=True)
        if r.returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=_apt_env(), stdout=subprocess.DEVNULL)
            assets.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "stress-ng"],
                       env=_apt_env(), stdout=subprocess.DEVNULL)
        path = shutil.which("stress-ng")
    if path is None:
        raise SetupError("no stress-ng after apt-get install stress-ng")
    return path


# The write-and-sync probe watchdog 5.16 runs as its test-binary: its stand-in for wdfeed's
# writable check with probe (exit status non-zero when the write or the fsync fails).
WRITABLE_TEST = """\
#!/bin/sh
exec dd if=/dev/zero of=/mnt/data/.wd516-probe bs=512 count=1 conv=fsync 2>/dev/null
"""


class Context:
    def __init__(self, outdir, prebuilt_wdfeed=None):
        self.outdir = outdir
        self.prebuilt = prebuilt_wdfeed
        self.vmlinuz = self.moddir = self.base = self.mods = None
        self.wdfeed = self.wd516 = self.wd_version = self.wd_conf = self.stress = None
        self.kernel_release = ""

    def prepare(self):
        assets.ensure_host_packages()
        self.vmlinuz, self.moddir = assets.ensure_kernel()
        self.kernel_release = os.path.basename(self.vmlinuz)[len("vmlinuz-"):]
        if self.prebuilt:
            self.wdfeed = self.prebuilt
        else:
            self.wdfeed = assets.build_release("wdfeed")
        self.wd516, self.wd_version, self.wd_conf = ensure_watchdog516()
        self.stress = ensure_stress_ng()
        # watchdog 5.16 goes to /usr/sbin (its Debian path), called by that path: /bin/watchdog
        # is busybox's applet. It needs only libc, which wdfeed brings.
        binaries = {"wdfeed": self.wdfeed, "stress-ng": self.stress}
        init_path = os.path.join(assets.VMDIR, "guest", "init")
        with open(init_path) as f:
            init = f.read()
        with open(self.wd_conf) as f:
            debian_conf = f.read()
        fake = cases.fake_process_script()
        guest_files = {
            "init": (init, 0o755),
            "bin/fakehb": (fake, 0o755),
            "bin/fakerm": (fake, 0o755),
            "bin/wd516-writable-test": (WRITABLE_TEST, 0o755),
            "etc/watchdog.conf.debian": (debian_conf, 0o644),
        }
        with open(self.wd516, "rb") as f:
            guest_files["usr/sbin/watchdog"] = (f.read(), 0o755)
        # watchdog 5.16 is linked against glibc; wdfeed is static and brings none
        for lib in assets._ldd(self.wd516):
            with open(os.path.realpath(lib), "rb") as f:
                guest_files[lib.lstrip("/")] = (f.read(), 0o755)
        digest = assets.file_digest([shutil.which("busybox"), init_path, self.vmlinuz, self.wd516]
                                    + list(binaries.values()))
        extra = " ".join(sorted(suite.BASE_MODULE_SET)) + WRITABLE_TEST + debian_conf
        digest += "-" + hashlib.sha256(extra.encode()).hexdigest()[:8]
        os.makedirs(CACHE, exist_ok=True)
        self.base = os.path.join(CACHE, f"initramfs-compare-{digest}.cpio")
        if not os.path.exists(self.base):
            for old in os.listdir(CACHE):
                if old.startswith("initramfs-compare-"):
                    os.unlink(os.path.join(CACHE, old))
            log("building the base initramfs (busybox, wdfeed, watchdog 5.16, stress-ng)")
            assets.build_base_initramfs(self.base, self.moddir, suite.BASE_MODULE_SET, binaries,
                                        guest_files)
        self.mods = assets.Modules(self.moddir)

    def case_archive(self, path, driver, env, case_sh, files):
        """The second cpio of a guest: /case.modules, /case.env, /case.sh and `files`
        ({path: text})."""
        cpio = assets.Cpio()
        wanted = cases.BASE_MODULES + driver.modules
        params = dict(wanted)
        mods = self.mods.closure([m for m, _ in wanted])
        cpio.file("case.modules", "".join(f"{m} {params.get(m, '')}\n" for m in mods))
        full_env = {
            "DRIVER": driver.name, "WDDEV": driver.wddev, "TIMEOUT": driver.timeout, "DISK": "vda",
            "PETTER": "wdfeed", "STANDIN_BOUND": "0", "ARM_TIMEOUT": suite.ARM_TIMEOUT_S,
            "SETTLE": cases.SETTLE_S, "WDFEED_ARGS": "", "UP_FOR": 0,
        }
        full_env.update(env)
        cpio.file("case.env", "".join(f"{k}='{v}'\n" for k, v in full_env.items()))
        cpio.file("case.sh", case_sh)
        for name, text in files.items():
            cpio.file(name, text)
        with open(path, "wb") as f:
            f.write(cpio.finish())

    def boot(self, workdir, driver, env, case_sh, files, disk_mb=256, nbd=False):
        """Builds the guest's disk and archive and starts it; returns the qemu.Guest."""
        os.makedirs(workdir, exist_ok=True)
        disk = os.path.join(workdir, "data.img")
        assets.make_ext4(disk, disk_mb)
        case_cpio = os.path.join(workdir, "case.cpio")
        self.case_archive(case_cpio, driver, env, case_sh, files)
        guest = qemu.Guest(workdir, driver.machine, self.vmlinuz, [self.base, case_cpio], suite.APPEND,
                           disk=None if nbd else disk, nbd_image=disk if nbd else None,
                           trace=driver.trace)
        guest.start()
        return guest


def cleanup(workdir):
    """A finished guest's big files go; its logs stay."""
    for big in ("data.img", "initrd.cpio"):
        p = os.path.join(workdir, big)
        if os.path.exists(p):
            os.unlink(p)


def observe(guest, workdir, res, watch, tail_lines):
    """Runs `watch()` on a booted guest, then always stops it and keeps its tail and log path
    in `res`; an exception in `watch` becomes res["error"]. Returns res."""
    try:
        watch()
    except Exception as e:  # a harness error is reported with the run, not raised
        res["error"] = f"{type(e).__name__}: {e}"
    finally:
        guest.stop()
        res["tail"] = guest.tail(tail_lines)
        cleanup(workdir)
    res["log"] = os.path.join(workdir, "serial.log")
    return res
