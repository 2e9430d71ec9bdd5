"""What the Pacemaker suite's guests are made of: Debian 12's corosync, corosync-qdevice,
corosync-qnetd, pacemaker, sbd, resource-agents and iproute2, with the packages of every
library `ldd` lists for their binaries (docs/PACEMAKER.md, "Packages"), downloaded with
`apt-get download` into the cache and unpacked with `dpkg -x`; nothing is installed on the
host. One initramfs serves the three guests (n1, n2 and the qnetd host q): guest/pcmk-init
decides by the node's archive what each one runs.
"""

import glob
import hashlib
import os
import shutil
import subprocess

from vmtest import assets as vm

from . import assets

HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTERDIR = os.path.dirname(HERE)
CACHE = os.path.join(vm.CACHE, "pacemaker")
MULTIARCH = assets.MULTIARCH

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


def _lib_dirs(root):
    return [os.path.join(root, "lib", MULTIARCH), os.path.join(root, "usr", "lib", MULTIARCH),
            os.path.join(root, "usr", "lib")]


def _find(root, rel):
    for cand in (rel, "usr/" + rel if not rel.startswith("usr/") else rel[4:]):
        p = os.path.join(root, cand)
        if os.path.exists(p):
            return cand, p
    raise vm.SetupError(f"no {rel} in the unpacked packages under {root}")


def ensure_packages():
    """The unpacked tree (CACHE/root). Downloads the .debs into CACHE/debs the first time."""
    root = os.path.join(CACHE, "root")
    stamp = os.path.join(root, ".debs")
    listed = " ".join(sorted(DEBS))
    if os.path.exists(stamp):
        with open(stamp) as f:
            if f.read() == listed:
                return root
    shutil.rmtree(root, ignore_errors=True)
    debs = os.path.join(CACHE, "debs")
    os.makedirs(debs, exist_ok=True)
    have = {os.path.basename(p).split("_", 1)[0] for p in glob.glob(os.path.join(debs, "*.deb"))}
    want = [p for p in DEBS if p not in have]
    if want:
        assets.log(f"downloading {len(want)} Debian packages (corosync, pacemaker, sbd and their libraries)")
        assets.apt_download(want, debs)
    tmp = root + f".tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    for deb in sorted(glob.glob(os.path.join(debs, "*.deb"))):
        vm.run(["dpkg", "-x", deb, tmp])
    with open(os.path.join(tmp, ".debs"), "w") as f:
        f.write(listed)
    try:
        os.rename(tmp, root)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "hacluster:x:100:101::/var/lib/pacemaker:/bin/false\n"
          "coroqnetd:x:102:102::/var/run/corosync-qnetd:/bin/false\n")
GROUP = "root:x:0:\nhaclient:x:101:hacluster\ncoroqnetd:x:102:\n"


def build_initramfs(vmlinuz, moddir, wdfeed, root):
    """The image the three guests boot (each node's archive is appended). Cached by digest."""
    init = os.path.join(CLUSTERDIR, "guest", "pcmk-init")
    busybox = shutil.which("busybox")
    parts = [busybox, init, vmlinuz, wdfeed, __file__]
    digest = vm.file_digest(parts) + "-" + hashlib.sha256(" ".join(MODULES + BINARIES).encode()).hexdigest()[:8]
    out = os.path.join(CACHE, f"initramfs-{digest}.cpio")
    if os.path.exists(out):
        return out
    for old in glob.glob(os.path.join(CACHE, "initramfs-*.cpio")):
        os.unlink(old)
    assets.log("building the Pacemaker initramfs (busybox, corosync, pacemaker, sbd, qnetd, wdfeed)")
    mods = vm.Modules(moddir)
    cpio = vm.Cpio()
    for d in ("proc", "sys", "dev", "run", "tmp", "mnt/data", "etc/corosync", "etc/wdfeed",
              "etc/default", "root", "sbin", "bin", "usr/bin", "usr/sbin", "var/lib", "var/log",
              "lib/modules", "dev/shm"):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3)
    cpio.symlink("var/run", "/run")
    cpio.copy("bin/busybox", busybox, 0o755)
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    libs = {}
    placed = set()
    for rel in BINARIES:
        name, src = _find(root, rel)
        cpio.copy(name, os.path.realpath(src), 0o755)
        placed.add(name)
        libs.update(assets.ldd(src, _lib_dirs(root)))
    for a in applets:
        if a in ("busybox", "watchdog"):
            continue
        if f"bin/{a}" not in placed:
            cpio.symlink(f"bin/{a}", "busybox")
    libs.update(assets.ldd(wdfeed))
    cpio.copy("bin/wdfeed", wdfeed, 0o755)
    for rel in FILES:
        cpio.copy(rel, os.path.join(root, rel), 0o755)
    for rel in DLOPENED:
        src = os.path.join(root, rel)
        cpio.copy(rel, os.path.realpath(src), 0o755)
        if rel.endswith(".so"):
            libs.update(assets.ldd(src, _lib_dirs(root)))
    dirs = set()
    for t in TREES:
        for d, _subs, files in os.walk(os.path.join(root, t)):
            reld = os.path.relpath(d, root)
            if reld not in dirs:
                cpio.dir(reld)
                dirs.add(reld)
            for f in sorted(files):
                p = os.path.join(d, f)
                rel = os.path.join(reld, f)
                if os.path.islink(p):
                    cpio.symlink(rel, os.readlink(p))
                else:
                    cpio.copy(rel, p, 0o755 if os.access(p, os.X_OK) else 0o644)
    for name, src in sorted(libs.items()):
        cpio.copy(name, src, 0o755)
    for m in mods.closure(MODULES):
        cpio.copy(f"lib/modules/{m}.ko", mods.path(m), 0o644)
    cpio.file("etc/passwd", PASSWD)
    cpio.file("etc/group", GROUP)
    with open(init) as f:
        cpio.file("init", f.read(), 0o755)
    tmp = out + f".tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(cpio.finish())
    os.rename(tmp, out)
    assets.log(f"initramfs {os.path.getsize(out) / 1e6:.1f} MB")
    return out
