"""What every engine's guests are made of, built the same way: the host's iproute2 (for the
network namespace), Debian packages downloaded with `apt-get download` into the cache and
unpacked with `dpkg -x` (never installed on the host), the shared libraries `ldd` lists, and
initramfs images cached under a digest of everything in them.

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
GUESTDIR = os.path.join(CLUSTERDIR, "guest")
LIB_SH = os.path.join(GUESTDIR, "lib.sh")
REPO = vm.REPO
MULTIARCH = "x86_64-linux-gnu"


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


def ensure_tree(cache, debs_wanted, what):
    """The unpacked tree (cache/root) of the packages `debs_wanted`: downloaded into
    cache/debs the first time, unpacked again when the list changes. `what` names them in
    the log."""
    root = os.path.join(cache, "root")
    stamp = os.path.join(root, ".debs")
    listed = " ".join(sorted(debs_wanted))
    if os.path.exists(stamp):
        with open(stamp) as f:
            if f.read() == listed:
                return root
    debs = os.path.join(cache, "debs")
    os.makedirs(debs, exist_ok=True)
    have = {os.path.basename(p).split("_", 1)[0] for p in glob.glob(os.path.join(debs, "*.deb"))}
    want = [p for p in debs_wanted if p not in have]
    if want:
        log(f"downloading {len(want)} Debian packages ({what})")
        apt_download(want, debs)
    tmp = root + f".tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    for deb in sorted(glob.glob(os.path.join(debs, "*.deb"))):
        if os.path.basename(deb).split("_", 1)[0] in debs_wanted:
            vm.run(["dpkg", "-x", deb, tmp])
    with open(os.path.join(tmp, ".debs"), "w") as f:
        f.write(listed)
    shutil.rmtree(root, ignore_errors=True)
    try:
        os.rename(tmp, root)
    except OSError:            # another run unpacked it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def lib_dirs(root):
    return [os.path.join(root, "lib", MULTIARCH), os.path.join(root, "usr", "lib", MULTIARCH),
            os.path.join(root, "usr", "lib")]


def ldd(binary, dirs=(), owner=None):
    """[(name in the guest, file on the host)] of the shared libraries `ldd` lists for a
    binary, resolved first in dirs (the unpacked packages), then on the host. `owner` names
    the package list to extend when one is not found."""
    env = dict(os.environ)
    if dirs:
        env["LD_LIBRARY_PATH"] = ":".join(dirs)
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        if "not a dynamic executable" in out.stdout + out.stderr:
            return []
        raise vm.SetupError(f"ldd {binary} failed: {out.stderr.strip()}")
    libs = []
    for ln in out.stdout.splitlines():
        parts = ln.split()
        if "not" in parts and "found" in parts:
            raise vm.SetupError(f"ldd {binary}: {ln.strip()}: add its package to the package list"
                                + (f" in {owner}" if owner else ""))
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            libs.append((f"lib/{MULTIARCH}/{parts[0]}", os.path.realpath(parts[2])))
        elif parts and parts[0].startswith("/"):
            libs.append((parts[0].lstrip("/"), os.path.realpath(parts[0])))   # the loader
    return libs


def find(root, rel):
    """(name in the guest, file on the host) of a file of the unpacked packages; /usr-merged
    or not."""
    for cand in (rel, "usr/" + rel if not rel.startswith("usr/") else rel[4:]):
        p = os.path.join(root, cand)
        if os.path.lexists(p):
            return cand, p
    raise vm.SetupError(f"no {rel} in the unpacked packages under {root}")


class Image:
    """A guest filesystem tree being put together: busybox and its applets, binaries with the
    libraries ldd names, whole trees, modules, files. Written as a cpio (an initramfs) or
    staged into a directory (an ext4 root made with `mkfs.ext4 -d`)."""

    def __init__(self, owner):
        self.cpio = vm.Cpio()
        self.owner = owner
        self.libs = {}
        self.placed = set()

    def base(self, dirs=()):
        for d in ("proc", "sys", "dev", "run", "tmp", "root", "sbin", "bin", "usr/bin", "usr/sbin",
                  "var", "etc") + tuple(dirs):
            self.cpio.dir(d)
        self.cpio.chardev("dev/console", 5, 1)
        self.cpio.chardev("dev/null", 1, 3)

    def busybox(self, skip=("busybox", "watchdog")):
        """busybox and a link for every applet no binary of the image already provides
        (call it after the binaries: the kernel's unpacker keeps the first entry)."""
        bb = shutil.which("busybox")
        self.cpio.copy("bin/busybox", bb, 0o755)
        applets = subprocess.run([bb, "--list"], capture_output=True, text=True, check=True).stdout.split()
        for a in applets:
            if a in skip:
                continue
            for d in ("bin", "sbin", "usr/bin", "usr/sbin"):
                if f"{d}/{a}" in self.placed:
                    break
            else:
                self.cpio.symlink(f"bin/{a}", "busybox")

    def binary(self, name, src, dirs=()):
        self.cpio.copy(name, os.path.realpath(src), 0o755)
        self.placed.add(name)
        self.libs.update(ldd(src, dirs, self.owner))

    def tree(self, root, rel):
        """A whole directory of the unpacked packages, links kept, modes kept."""
        base = os.path.join(root, rel)
        for d, _subs, files in os.walk(base):
            reld = os.path.relpath(d, root)
            self.cpio.dir(reld)
            for f in sorted(files + [s for s in _subs if os.path.islink(os.path.join(d, s))]):
                p = os.path.join(d, f)
                name = os.path.join(reld, f)
                if os.path.islink(p):
                    self.cpio.symlink(name, os.readlink(p))
                else:
                    self.cpio.copy(name, p, os.stat(p).st_mode & 0o777)
                    self.placed.add(name)

    def modules(self, mods, names):
        for m in mods.closure(names):
            self.cpio.copy(f"lib/modules/{m}.ko", mods.path(m), 0o644)

    def finish_libs(self):
        for name, src in sorted(self.libs.items()):
            if name not in self.placed:
                self.cpio.copy(name, src, 0o755)
                self.placed.add(name)

    def write(self, out):
        self.finish_libs()
        tmp = out + f".tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(self.cpio.finish())
        os.rename(tmp, out)
        return out


def cached(cache, stem, parts, extra="", ext=None):
    """(path, exists) of an image cached under a digest of the files `parts` and the text
    `extra`; older images of the same stem are removed when a new one is due."""
    os.makedirs(cache, exist_ok=True)
    digest = vm.file_digest(parts) + "-" + hashlib.sha256(extra.encode()).hexdigest()[:8]
    ext = ext or ("cpio" if stem.startswith("initramfs") else "img")
    out = os.path.join(cache, f"{stem}-{digest}.{ext}")
    if os.path.exists(out):
        return out, True
    for old in glob.glob(os.path.join(cache, f"{stem}-*")):
        if not old.endswith((".tmp", ".d")) and ".tmp" not in old:
            os.unlink(old)
    return out, False


def guest_script(name):
    with open(os.path.join(GUESTDIR, name)) as f:
        return f.read()
