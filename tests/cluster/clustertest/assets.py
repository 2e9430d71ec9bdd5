"""What the two guests are made of beyond tests/vm's parts: the host's iproute2 (for the
network namespace), keepalived 2.2.7 and its libraries from Debian's packages (downloaded
with `apt-get download`, unpacked with `dpkg -x` into the cache, never installed), and the
busybox initramfs with keepalived, wdfeed and the guest init.

The kernel, its modules and the cpio writer come from tests/vm/vmtest/assets.py.
"""

import glob
import hashlib
import os
import shutil
import subprocess

from vmtest import assets as vm

HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTERDIR = os.path.dirname(HERE)
REPO = vm.REPO
CACHE = os.path.join(vm.CACHE, "cluster")

# keepalived and the packages of every library `ldd` lists for it on Debian 12, except
# libc6 (the host's C library runs every binary of the guest, wdfeed's too). Unpacking them
# all makes the guest independent of which of them the host happens to have.
KEEPALIVED_DEBS = [
    "keepalived", "libnl-3-200", "libnl-genl-3-200", "libsnmp40", "libnftnl11", "libmnl0",
    "libpci3", "libwrap0", "libssl3", "libpcre2-8-0", "libglib2.0-0", "libsystemd0",
    "libsensors5", "libperl5.36", "libmount1", "libgcrypt20", "libzstd1", "liblz4-1",
    "libudev1", "libnsl2", "libffi8", "libblkid1", "libgssapi-krb5-2", "libkrb5-3",
    "libk5crypto3", "libkrb5support0", "zlib1g", "libselinux1", "libcap2", "liblzma5",
    "libcrypt1", "libgpg-error0", "libtirpc3", "libcom-err2", "libkeyutils1",
]
MULTIARCH = "x86_64-linux-gnu"

# Modules of the guests, in the order guest/init loads them (dependencies are added from
# each .ko's .modinfo): virtio-net (the bridge port), the data disk with ext4, and the
# watchdog drivers (i6300esb first so that it is /dev/watchdog0, softdog /dev/watchdog1).
MODULES = ["virtio_pci", "virtio_net", "virtio_blk", "crc32c_generic", "ext4", "i6300esb", "softdog"]


def log(msg):
    print(f"cluster: {msg}", flush=True)


def ensure_host_packages():
    """tests/vm's host packages (QEMU, qemu-utils, busybox-static, e2fsprogs) and
    iproute2's `ip` (netns, bridge, tuntap: busybox's ip has none of them)."""
    vm.ensure_host_packages()
    ip = shutil.which("ip")
    ok = False
    if ip:
        out = subprocess.run([ip, "-V"], capture_output=True, text=True)
        ok = "iproute2" in (out.stdout + out.stderr)
    if ok:
        return
    if os.geteuid() != 0:
        raise vm.SetupError("iproute2 is missing and this is not root: apt-get install iproute2")
    log("installing host package: iproute2")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "iproute2"],
                       env=env, capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
        r = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "iproute2"],
                           env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise vm.SetupError(f"apt-get install iproute2 failed:\n{r.stderr}")


def apt_download(want, debs):
    """`apt-get download` of the packages `want` into `debs`; once more after an
    `apt-get update` when the package lists are missing or stale (a fresh machine)."""
    r = subprocess.run(["apt-get", "download", "-q"] + want, cwd=debs, capture_output=True, text=True)
    if r.returncode != 0:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
        r = subprocess.run(["apt-get", "download", "-q"] + want, cwd=debs, capture_output=True, text=True)
    if r.returncode != 0:
        raise vm.SetupError(f"apt-get download {' '.join(want)} failed:\n{r.stderr.strip()}")


def ensure_keepalived():
    """The unpacked tree (CACHE/root) with usr/sbin/keepalived and its libraries. Downloads
    the .debs into CACHE/debs the first time; never installs anything on the host."""
    root = os.path.join(CACHE, "root")
    binary = os.path.join(root, "usr", "sbin", "keepalived")
    if os.path.exists(binary):
        return root
    debs = os.path.join(CACHE, "debs")
    os.makedirs(debs, exist_ok=True)
    have = {os.path.basename(p).split("_", 1)[0] for p in glob.glob(os.path.join(debs, "*.deb"))}
    want = [p for p in KEEPALIVED_DEBS if p not in have]
    if want:
        log(f"downloading {len(want)} Debian packages (keepalived and its libraries)")
        apt_download(want, debs)
    tmp = root + f".tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    for deb in sorted(glob.glob(os.path.join(debs, "*.deb"))):
        vm.run(["dpkg", "-x", deb, tmp])
    if not os.path.exists(os.path.join(tmp, "usr", "sbin", "keepalived")):
        raise vm.SetupError(f"no usr/sbin/keepalived in the unpacked packages under {tmp}")
    try:
        os.rename(tmp, root)
    except OSError:            # another run unpacked it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def _lib_dirs(root):
    return [os.path.join(root, "lib", MULTIARCH), os.path.join(root, "usr", "lib", MULTIARCH)]


def ldd(binary, lib_dirs=()):
    """[(name in the guest, file on the host)] of the shared libraries `ldd` lists for a
    binary, resolved first in lib_dirs (the unpacked packages), then on the host."""
    env = dict(os.environ)
    if lib_dirs:
        env["LD_LIBRARY_PATH"] = ":".join(lib_dirs)
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        if "not a dynamic executable" in out.stdout + out.stderr:
            return []
        raise vm.SetupError(f"ldd {binary} failed: {out.stderr.strip()}")
    libs = []
    for ln in out.stdout.splitlines():
        parts = ln.split()
        if "not" in parts and "found" in parts:
            raise vm.SetupError(f"ldd {binary}: {ln.strip()}: add its package to KEEPALIVED_DEBS "
                                f"in {os.path.relpath(__file__, REPO)}")
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            libs.append((f"lib/{MULTIARCH}/{parts[0]}", os.path.realpath(parts[2])))
        elif parts and parts[0].startswith("/"):
            libs.append((parts[0].lstrip("/"), os.path.realpath(parts[0])))   # the loader
    return libs


def build_initramfs(vmlinuz, moddir, wdfeed, keepalived_root):
    """The image both guests boot (the per-node archive is appended to it). Cached under
    CACHE by a digest of everything in it; returns its path."""
    init = os.path.join(CLUSTERDIR, "guest", "init")
    keepalived = os.path.join(keepalived_root, "usr", "sbin", "keepalived")
    busybox = shutil.which("busybox")
    parts = [busybox, init, vmlinuz, wdfeed, keepalived]
    digest = vm.file_digest(parts) + "-" + hashlib.sha256(" ".join(MODULES).encode()).hexdigest()[:8]
    out = os.path.join(CACHE, f"initramfs-{digest}.cpio")
    if os.path.exists(out):
        return out
    for old in glob.glob(os.path.join(CACHE, "initramfs-*.cpio")):
        os.unlink(old)
    log("building the initramfs (busybox, keepalived, wdfeed, modules)")
    mods = vm.Modules(moddir)
    cpio = vm.Cpio()
    for d in ("proc", "sys", "dev", "run", "tmp", "mnt/data", "etc/keepalived", "etc/wdfeed",
              "root", "sbin", "usr/bin", "usr/sbin", "var"):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3)
    cpio.symlink("var/run", "/run")
    cpio.copy("bin/busybox", busybox, 0o755)
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        if a not in ("busybox", "watchdog"):
            cpio.symlink(f"bin/{a}", "busybox")
    cpio.copy("usr/sbin/keepalived", keepalived, 0o755)
    cpio.copy("bin/wdfeed", wdfeed, 0o755)
    libs = dict(ldd(keepalived, _lib_dirs(keepalived_root)))
    libs.update(ldd(wdfeed))
    for name, src in sorted(libs.items()):
        cpio.copy(name, src, 0o755)
    for m in mods.closure(MODULES):
        cpio.copy(f"lib/modules/{m}.ko", mods.path(m), 0o644)
    # keepalived runs notify scripts only for a user it can look up
    cpio.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
    cpio.file("etc/group", "root:x:0:\n")
    with open(init) as f:
        cpio.file("init", f.read(), 0o755)
    tmp = out + f".tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(cpio.finish())
    os.rename(tmp, out)
    return out
