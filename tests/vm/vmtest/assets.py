"""Everything the guests are made of: host packages, the Debian kernel, its modules, the
busybox initramfs with the wdfeed binary, and the per-case data disk.

Nothing here boots a VM. Downloads are cached under tests/vm/cache (gitignored), so a rerun
only rebuilds the initramfs when the wdfeed binary or the guest scripts changed.
"""

import glob
import hashlib
import os
import shutil
import stat
import struct
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
VMDIR = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(VMDIR))
CACHE = os.path.join(VMDIR, "cache")

# Host tools the suite needs, and the Debian package that ships each.
HOST_TOOLS = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-nbd": "qemu-utils",
    "busybox": "busybox-static",
    "mkfs.ext4": "e2fsprogs",
}


class SetupError(Exception):
    """The host cannot provide something the suite needs; the message says what and why."""


def log(msg):
    print(f"vm: {msg}", flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


# ---------------------------------------------------------------------------- host packages

def _qemu_versions_match():
    """qemu-system-x86 and qemu-utils must come from the same QEMU release (Debian's
    qemu-utils from backports declares Breaks on an older qemu-system-common)."""
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}\n", "qemu-utils", "qemu-system-x86"],
                         capture_output=True, text=True)
    versions = [v for v in out.stdout.split() if v]
    return len(versions) == 2 and versions[0] == versions[1]


def ensure_host_packages():
    missing = sorted({pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None})
    if not missing and _qemu_versions_match():
        return
    if os.geteuid() != 0:
        raise SetupError(f"missing host packages {missing} and not root: "
                         f"apt-get install --no-install-recommends {' '.join(missing)}")
    log(f"installing host packages: {' '.join(missing) or 'matching qemu-utils'}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
    base = ["apt-get", "install", "-y", "-q", "--no-install-recommends"]
    pkgs = sorted(set(missing) | {"qemu-system-x86", "qemu-utils", "busybox-static"})
    first = subprocess.run(base + pkgs, env=env, capture_output=True, text=True)
    if first.returncode == 0 and _qemu_versions_match():
        return
    # A newer qemu-utils (e.g. from backports) breaks Debian 12's qemu-system-x86: take the
    # qemu-utils built from the same source as the qemu-system-x86 candidate.
    cand = subprocess.run(["apt-cache", "policy", "qemu-system-x86"], capture_output=True,
                          text=True).stdout
    version = next((ln.split()[1] for ln in cand.splitlines() if "Candidate:" in ln), None)
    if not version or version == "(none)":
        raise SetupError(f"apt-get install failed and no qemu-system-x86 candidate:\n{first.stderr}")
    pinned = [p if p != "qemu-utils" else f"qemu-utils={version}" for p in pkgs]
    second = subprocess.run(base + ["--allow-downgrades"] + pinned, env=env,
                            capture_output=True, text=True)
    if second.returncode != 0:
        raise SetupError(f"apt-get install {' '.join(pinned)} failed:\n{second.stderr}")


# ---------------------------------------------------------------------------- kernel

def ensure_kernel():
    """Returns (vmlinuz, modules_dir). Fetches the kernel the distribution's linux-image-amd64
    points at with `apt-get download` and unpacks it with `dpkg -x` (never installs it)."""
    existing = sorted(glob.glob(os.path.join(CACHE, "kernel", "boot", "vmlinuz-*")))
    if existing:
        return _kernel_paths(existing[-1])
    os.makedirs(CACHE, exist_ok=True)
    dep = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], capture_output=True, text=True)
    names = [ln.split(":", 1)[1].strip() for ln in dep.stdout.splitlines()
             if ln.strip().startswith("Depends:") and "linux-image-6" in ln]
    if not names:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
        dep = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], capture_output=True, text=True)
        names = [ln.split(":", 1)[1].strip() for ln in dep.stdout.splitlines()
                 if ln.strip().startswith("Depends:") and "linux-image-6" in ln]
    if not names:
        raise SetupError(f"cannot tell which kernel linux-image-amd64 depends on:\n{dep.stdout}{dep.stderr}")
    pkg = names[0]
    log(f"downloading {pkg}")
    debs = glob.glob(os.path.join(CACHE, f"{pkg}_*.deb"))
    if not debs:
        run(["apt-get", "download", "-q", pkg], cwd=CACHE, stdout=subprocess.DEVNULL)
        debs = glob.glob(os.path.join(CACHE, f"{pkg}_*.deb"))
    tmp = os.path.join(CACHE, "kernel.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    run(["dpkg", "-x", debs[0], tmp])
    os.rename(tmp, os.path.join(CACHE, "kernel"))
    return _kernel_paths(sorted(glob.glob(os.path.join(CACHE, "kernel", "boot", "vmlinuz-*")))[-1])


def _kernel_paths(vmlinuz):
    release = os.path.basename(vmlinuz)[len("vmlinuz-"):]
    for base in ("lib", "usr/lib"):
        mods = os.path.join(CACHE, "kernel", base, "modules", release)
        if os.path.isdir(mods):
            return vmlinuz, mods
    raise SetupError(f"no modules directory for kernel {release} under {CACHE}/kernel")


# ---------------------------------------------------------------------------- modules

def _modinfo(path):
    """The key=value strings of a .ko's .modinfo ELF section (no host modinfo/depmod needed)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise SetupError(f"{path}: not an ELF64 object")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    sections = []
    for i in range(shnum):
        name, _type, _flags, _addr, off, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        sections.append((name, off, size))
    strtab_off = sections[shstrndx][1]
    info = {}
    for name, off, size in sections:
        end = data.index(b"\0", strtab_off + name)
        if data[strtab_off + name:end] == b".modinfo":
            for item in data[off:off + size].split(b"\0"):
                if b"=" in item:
                    k, v = item.decode(errors="replace").split("=", 1)
                    info.setdefault(k, []).append(v)
    return info


class Modules:
    """Module name -> .ko path and dependencies, read from the unpacked kernel tree."""

    def __init__(self, moddir):
        self.paths = {}
        for p in glob.glob(os.path.join(moddir, "kernel", "**", "*.ko"), recursive=True):
            self.paths[os.path.basename(p)[:-3].replace("-", "_")] = p
        self._deps = {}

    def path(self, name):
        key = name.replace("-", "_")
        if key not in self.paths:
            raise SetupError(f"kernel has no module {name}")
        return self.paths[key]

    def deps(self, name):
        key = name.replace("-", "_")
        if key not in self._deps:
            info = _modinfo(self.path(key))
            self._deps[key] = [d.replace("-", "_") for d in ",".join(info.get("depends", [""])).split(",") if d]
        return self._deps[key]

    def closure(self, names):
        """Names plus all their dependencies, each after what it depends on."""
        order, seen = [], set()

        def visit(n):
            n = n.replace("-", "_")
            if n in seen:
                return
            seen.add(n)
            for d in self.deps(n):
                visit(d)
            order.append(n)

        for n in names:
            visit(n)
        return order


# ---------------------------------------------------------------------------- cpio (newc)

class Cpio:
    """A minimal writer of the newc archives the kernel unpacks as initramfs."""

    def __init__(self):
        self.buf = bytearray()
        self.ino = 1000
        self.dirs = set()

    def _entry(self, name, mode, data=b"", rdev=(0, 0)):
        self.ino += 1
        name_b = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, 0, len(data),
                  0, 0, rdev[0], rdev[1], len(name_b), 0]
        self.buf += b"070701" + b"".join(b"%08X" % f for f in fields)
        self.buf += name_b
        self.buf += b"\0" * (-len(self.buf) % 4)
        self.buf += data
        self.buf += b"\0" * (-len(self.buf) % 4)

    def dir(self, name):
        name = name.strip("/")
        if not name or name in self.dirs:
            return
        self.dir(os.path.dirname(name))
        self.dirs.add(name)
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name, data, mode=0o644):
        name = name.strip("/")
        self.dir(os.path.dirname(name))
        if isinstance(data, str):
            data = data.encode()
        self._entry(name, stat.S_IFREG | mode, data)

    def copy(self, name, src, mode=None):
        with open(src, "rb") as f:
            data = f.read()
        self.file(name, data, mode if mode is not None else (os.stat(src).st_mode & 0o777))

    def symlink(self, name, target):
        name = name.strip("/")
        self.dir(os.path.dirname(name))
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name, major, minor):
        name = name.strip("/")
        self.dir(os.path.dirname(name))
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def finish(self):
        self._entry("TRAILER!!!", 0)
        self.buf += b"\0" * (-len(self.buf) % 512)
        return bytes(self.buf)


def build_release(name="wdfeed"):
    """`cargo build --release --locked` of this tree; returns the path of binary `name` as
    cargo reports it (the repository's .cargo/config.toml sets a build target, so release
    binaries are under target/<host tuple>/release/, not target/release/)."""
    import json
    log("cargo build --release --locked")
    r = subprocess.run(["cargo", "build", "--release", "--locked", "--message-format=json-render-diagnostics"],
                       cwd=REPO, stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise SetupError("cargo build --release --locked failed")
    for line in r.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
                and msg["target"]["name"] == name:
            return msg["executable"]
    raise SetupError(f"cargo build --release built no binary {name}")


def _ldd(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if out.returncode != 0:
        if "not a dynamic executable" in out.stdout + out.stderr:
            return []
        raise SetupError(f"ldd {binary} failed: {out.stderr.strip()}")
    libs = []
    for ln in out.stdout.splitlines():
        parts = ln.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            libs.append(parts[2])
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])
    return libs


def build_base_initramfs(out_path, moddir, module_names, binaries, guest_files):
    """The shared part of every guest: busybox and its applets, the binaries with the libraries
    ldd names, all modules any driver or scenario loads (flat under /lib/modules), and the
    guest scripts. Per-case files come in a second archive appended to this one."""
    mods = Modules(moddir)
    cpio = Cpio()
    for d in ("proc", "sys", "dev", "run", "tmp", "mnt", "etc", "root", "sbin", "usr/bin", "usr/sbin"):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3)
    bb = shutil.which("busybox")
    cpio.copy("bin/busybox", bb, 0o755)
    applets = subprocess.run([bb, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        # a binary of the same name (watchdog) wins: the kernel's unpacker keeps the first
        if a != "busybox" and a not in binaries:
            cpio.symlink(f"bin/{a}", "busybox")
    libs = set()
    for name, src in binaries.items():
        cpio.copy(f"bin/{name}", src, 0o755)
        libs.update(_ldd(src))
    for lib in sorted(libs):
        cpio.copy(lib, os.path.realpath(lib), 0o755)
    for m in mods.closure(module_names):
        cpio.copy(f"lib/modules/{m}.ko", mods.path(m), 0o644)
    for name, (data, mode) in guest_files.items():
        cpio.file(name, data, mode)
    tmp = out_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(cpio.finish())
    os.rename(tmp, out_path)
    return mods


def file_digest(paths):
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def make_ext4(path, size_mb):
    """A sparse raw image with a fresh ext4 on it, made on the host (fast, and the guest
    needs no mkfs)."""
    with open(path, "wb") as f:
        f.truncate(size_mb << 20)
    run(["mkfs.ext4", "-F", "-q", "-L", "data", "-E", "lazy_itable_init=0,lazy_journal_init=0,nodiscard", path],
        stdout=subprocess.DEVNULL)
