"""What the crash-dump cases add to a guest: Debian's kexec-tools and makedumpfile (fetched
with `apt-get download` and unpacked with `dpkg -x` under tests/vm/cache, never installed on
the host), the kernel image the guest loads as its crash kernel, and the dump kernel's own
initramfs, whose /init saves the dump on the data disk the way kdump-tools lays it out
(<dir>/<stamp>/dump.<stamp> and dmesg.<stamp>), or hangs, as the kernel command line says.

Also the host's reading of the dump afterwards: the file is taken out of the ext4 image with
debugfs (e2fsprogs, already a host tool of the suite) and judged as an ELF core file.
"""

import glob
import os
import shutil
import struct
import subprocess
import threading

from . import assets, cases

PACKAGES = ("kexec-tools", "makedumpfile")
# Guest paths of the tools; the libraries go where ldd found them.
TOOLS = {"bin/kexec": "sbin/kexec", "bin/makedumpfile": "usr/bin/makedumpfile"}
# What the dump kernel loads to reach the data disk.
DUMP_MODULES = ["virtio_pci", "virtio_blk", "crc32c_generic", "ext4"]
# Where the guest keeps what it loads as its crash kernel.
GUEST_KERNEL = "boot/vmlinuz"
GUEST_DUMP_INITRD = "boot/dump-initrd.cpio"
# The dumps' directory on the data disk (the crashdump-dir of the case's config).
DUMP_DIR = "crash"

DUMP_INIT = r"""#!/bin/sh
# /init of the dump kernel: save the crashed kernel's memory on the data disk, or hang, as
# the command line says (wdfeed_dump=save|hang).
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
up() { cut -d' ' -f1 /proc/uptime; }
mark() { echo "VMTEST: dump-kernel $* up=$(up)"; }
mark "up vmcore_bytes=$(stat -c %s /proc/vmcore 2>/dev/null)"
if grep -q wdfeed_dump=hang /proc/cmdline; then
    mark "hangs (as asked): only the hardware watchdog can end this"
    while :; do sleep 3600; done
fi
for m in $(cat /modules); do insmod /lib/modules/$m.ko || mark "error insmod $m"; done
_i=0
while [ ! -b /dev/vda ]; do usleep 100000; _i=$((_i + 1)); [ $_i -ge 100 ] && break; done
mkdir -p /mnt/data
mount -t ext4 /dev/vda /mnt/data || { mark "error cannot mount /dev/vda"; while :; do sleep 3600; done; }
_stamp=$(date +%Y%m%d%H%M)
_d=/mnt/data/@DUMP_DIR@/$_stamp
mkdir -p $_d
mark "saving to $_d"
makedumpfile --dump-dmesg /proc/vmcore $_d/dmesg.$_stamp > /tmp/dmesg.out 2>&1 \
    || { mark "error makedumpfile --dump-dmesg"; cat /tmp/dmesg.out; }
if makedumpfile -E -d 31 /proc/vmcore $_d/dump.$_stamp > /tmp/dump.out 2>&1; then
    sync
    mark "saved bytes=$(stat -c %s $_d/dump.$_stamp) path=@DUMP_DIR@/$_stamp/dump.$_stamp"
else
    cat /tmp/dump.out
    mark "error makedumpfile failed"
fi
umount /mnt/data
reboot -f
while :; do sleep 3600; done
"""


def _apt_depends(pkg):
    """The first alternative of each Depends of `pkg`, as apt-cache names them."""
    out = subprocess.run(["apt-cache", "depends", "--no-recommends", "--no-suggests", pkg],
                         capture_output=True, text=True).stdout
    deps = []
    for ln in out.splitlines():
        s = ln.strip()
        # "|Depends:" is an alternative that another one follows: the first one is taken
        if s.startswith("Depends:") and not ln.lstrip().startswith("|"):
            name = s.split(":", 1)[1].strip()
            if not name.startswith("<"):
                deps.append(name)
    return deps


def _installed(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", pkg], capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.endswith("installed")


def _library_closure():
    """The packages to unpack: the two tools, and every library package they depend on
    (transitively) that the host does not have installed."""
    want, seen, todo = list(PACKAGES), set(PACKAGES), list(PACKAGES)
    while todo:
        for d in _apt_depends(todo.pop()):
            if d in seen or not (d.startswith("lib") or d == "zlib1g"):
                continue
            seen.add(d)
            todo.append(d)
            if not _installed(d):
                want.append(d)
    return want


# Two cases may prepare their guests at once: one of them fetches and builds.
_LOCK = threading.Lock()


def ensure_tools():
    """{tool's guest path: {guest path: host path}} of kexec and makedumpfile, each with every
    library it loads."""
    with _LOCK:
        return _ensure_tools()


def _ensure_tools():
    root = os.path.join(assets.CACHE, "dumptools", "root")
    if not os.path.isdir(root):
        debs = os.path.join(assets.CACHE, "dumptools", "debs")
        shutil.rmtree(debs, ignore_errors=True)
        os.makedirs(debs)
        pkgs = _library_closure()
        assets.log(f"downloading {' '.join(pkgs)}")
        r = subprocess.run(["apt-get", "download", "-q"] + pkgs, cwd=debs, capture_output=True, text=True)
        if r.returncode != 0:
            raise assets.SetupError(f"apt-get download {' '.join(pkgs)} failed:\n{r.stderr}")
        tmp = root + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for deb in sorted(glob.glob(os.path.join(debs, "*.deb"))):
            assets.run(["dpkg", "-x", deb, tmp])
        os.rename(tmp, root)
    libdirs = sorted({os.path.dirname(p) for p in glob.glob(os.path.join(root, "**", "*.so*"), recursive=True)})
    tools = {}
    for guest, rel in TOOLS.items():
        binary = os.path.join(root, rel)
        if not os.path.exists(binary):
            raise assets.SetupError(f"{rel} is not in the unpacked {' '.join(PACKAGES)}")
        files = tools[guest] = {guest: binary}
        env = dict(os.environ, LD_LIBRARY_PATH=":".join(libdirs))
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, env=env)
        if "not found" in out.stdout or out.returncode != 0:
            raise assets.SetupError(f"ldd {binary}: a library is missing:\n{out.stdout}{out.stderr}")
        for ln in out.stdout.splitlines():
            parts = ln.split()
            path = parts[2] if "=>" in parts and len(parts) >= 3 else (parts[0] if parts else "")
            if path.startswith("/"):
                # a library from the unpacked tree goes where the host would have it
                guest_path = path[len(root):] if path.startswith(root) else path
                files[guest_path.lstrip("/")] = os.path.realpath(path)
    return tools


def build_dump_initrd(path, moddir, tools):
    """The dump kernel's initramfs: busybox, makedumpfile and its libraries, the modules for
    the data disk, and DUMP_INIT."""
    mods = assets.Modules(moddir)
    cpio = assets.Cpio()
    for d in ("proc", "sys", "dev", "tmp", "mnt"):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3)
    bb = shutil.which("busybox")
    cpio.copy("bin/busybox", bb, 0o755)
    applets = subprocess.run([bb, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        if a != "busybox" and a != "makedumpfile":
            cpio.symlink(f"bin/{a}", "busybox")
    for guest, host in tools["bin/makedumpfile"].items():
        cpio.copy(guest, host, 0o755)
    order = mods.closure(DUMP_MODULES)
    for m in order:
        cpio.copy(f"lib/modules/{m}.ko", mods.path(m), 0o644)
    cpio.file("modules", " ".join(order) + "\n")
    cpio.file("init", DUMP_INIT.replace("@DUMP_DIR@", DUMP_DIR), 0o755)
    with open(path, "wb") as f:
        f.write(cpio.finish())


def guest_files(ctx):
    """What the case archive of a crash-dump case carries: (guest path, host path) pairs."""
    tools = ensure_tools()
    with _LOCK:
        inputs = [shutil.which("busybox"), ctx.vmlinuz] + sorted(tools["bin/makedumpfile"].values())
        digest = assets.file_digest(inputs)
        digest += "-" + assets.hashlib.sha256(DUMP_INIT.encode()).hexdigest()[:8]
        initrd = os.path.join(assets.CACHE, f"dump-initrd-{digest}.cpio")
        if not os.path.exists(initrd):
            for old in glob.glob(os.path.join(assets.CACHE, "dump-initrd-*.cpio")):
                os.unlink(old)
            build_dump_initrd(initrd + ".tmp", ctx.moddir, tools)
            os.rename(initrd + ".tmp", initrd)
    files = [(GUEST_KERNEL, ctx.vmlinuz), (GUEST_DUMP_INITRD, initrd)]
    files += list(tools["bin/kexec"].items())
    return files


# ---------------------------------------------------------------------------- the dump, read back

def take_out(image, guest_path, dest):
    """Copies guest_path (relative to the data disk's root) out of the ext4 image; True if
    it was there."""
    r = subprocess.run(["debugfs", "-R", f"dump -p /{guest_path} {dest}", image],
                       capture_output=True, text=True)
    return r.returncode == 0 and os.path.exists(dest) and os.path.getsize(dest) > 0


def list_dir(image, guest_path):
    r = subprocess.run(["debugfs", "-R", f"ls -p /{guest_path}", image], capture_output=True, text=True)
    names = []
    for ln in r.stdout.splitlines():
        parts = ln.strip("/").split("/")
        if len(parts) >= 5 and parts[4] not in (".", ".."):
            names.append(parts[4])
    return names


def judge_core(path, release, must_hold=b"wdfeed: FENCE"):
    """Why the file at `path` is not a dump of the guest's kernel (None if it is one): an ELF64
    core file for x86-64 whose VMCOREINFO note names the kernel release, with PT_LOAD segments
    of memory, holding `must_hold` (the fence's kernel log line, in the printk buffer it saved).
    Returns (problem or None, facts)."""
    size = os.path.getsize(path)
    facts = {"bytes": size}
    with open(path, "rb") as f:
        head = f.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF":
            return "no ELF magic", facts
        if head[4] != 2 or head[5] != 1:
            return "not ELF64 little-endian", facts
        e_type, e_machine = struct.unpack_from("<HH", head, 16)
        if e_type != 4:
            return f"ELF type {e_type}, not ET_CORE (4)", facts
        if e_machine != 62:
            return f"ELF machine {e_machine}, not x86-64 (62)", facts
        phoff, = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        f.seek(phoff)
        phdrs = f.read(phentsize * phnum)
        loads, note = 0, None
        for i in range(phnum):
            p_type, _flags, off, _va, _pa, filesz, _memsz = struct.unpack_from("<IIQQQQQ", phdrs, i * phentsize)
            if p_type == 1:
                loads += filesz
            elif p_type == 4 and note is None:
                note = (off, filesz)
        facts["load_bytes"] = loads
        if note is None:
            return "no PT_NOTE segment", facts
        f.seek(note[0])
        notes = f.read(min(note[1], 1 << 20))
    info = _vmcoreinfo(notes)
    facts["osrelease"] = info.get("OSRELEASE")
    facts["crashtime"] = info.get("CRASHTIME")
    if info.get("OSRELEASE") != release:
        return f"VMCOREINFO names kernel {info.get('OSRELEASE')!r}, not {release!r}", facts
    if loads < 8 << 20:
        return f"only {loads} bytes of memory in PT_LOAD segments", facts
    with open(path, "rb") as f:
        found, tail = False, b""
        while True:
            block = f.read(8 << 20)
            if not block:
                break
            if must_hold in tail + block:
                found = True
                break
            tail = block[-len(must_hold):]
    facts["holds_fence_line"] = found
    if not found:
        return f"the dump does not hold {must_hold!r} (the kernel log it saved lacks the fence)", facts
    return None, facts


def _vmcoreinfo(notes):
    """The key=value lines of the VMCOREINFO ELF note."""
    i = 0
    while i + 12 <= len(notes):
        namesz, descsz, _type = struct.unpack_from("<III", notes, i)
        name = notes[i + 12:i + 12 + namesz].rstrip(b"\0")
        desc_at = i + 12 + ((namesz + 3) & ~3)
        desc = notes[desc_at:desc_at + descsz]
        if name == b"VMCOREINFO":
            return dict(ln.split("=", 1) for ln in desc.decode("ascii", "replace").splitlines() if "=" in ln)
        i = desc_at + ((descsz + 3) & ~3)
    return {}


# ---------------------------------------------------------------------------- the verdicts

def _release(guest):
    m = guest.first_line(r"VMTEST: boot kernel=(\S+)")
    return m[1].group(1) if m else None


def judge(guest, scen, res, t0, r_hw):
    """A crash-dump case after its reset: the dump kernel ran, and either saved a real dump
    of the crashed kernel (taken out of the disk image and read here) or hung until the
    hardware watchdog reset it, with the crashdump timeout wdfeed had set."""
    t_end = t0 + res.after
    up = guest.first_line(r"VMTEST: dump-kernel up", after=t0)
    if up is None or up[0] > t_end:
        res.reason = "the dump kernel never started before the reset"
        return False
    crash = guest.first_line(r"wdfeed: CRASHDUMP .*", after=t0)
    if scen.fence_mode == "crashdump":
        # wdfeed's own log never comes (the kernel crashes first): the kernel log says it.
        fence = guest.first_line(r"wdfeed: FENCE .* mode=crashdump", after=t0)
        if fence is None or fence[0] > up[0]:
            res.reason = "no `wdfeed: FENCE ... mode=crashdump` kernel log line before the dump kernel"
            return False
        if crash is None or not crash[1].group(0).startswith("wdfeed: CRASHDUMP every device now resets"):
            res.reason = f"wdfeed did not say it crashes into the dump kernel: {crash[1].group(0) if crash else 'no CRASHDUMP line'}"
            return False
        res.notes.append(f"wdfeed fenced {fence[0] - t0:.2f}s after the fault and crashed "
                         f"{crash[0] - fence[0]:.3f}s later: {crash[1].group(0)[:120]}")
        t_crash = crash[0]
    else:
        panic = guest.first_line(r"Kernel panic - not syncing: Watchdog pre-timeout", after=t0)
        if panic is None:
            res.reason = "the pretimeout never panicked the kernel"
            return False
        want = scen.device_timeout - scen.pretimeout
        res.notes.append(f"the pretimeout panicked the kernel {panic[0] - t0:.2f}s after the "
                         f"fault (timeout - pretimeout = {want}s after the last pet)")
        if panic[0] - t0 > want + cases.slack(want):
            res.reason = f"the pretimeout panic came {panic[0] - t0:.2f}s after the fault, not within {want}s + slack"
            return False
        t_crash = panic[0]
    res.notes.append(f"the dump kernel was up {up[0] - t_crash:.2f}s after the crash; the reset "
                     f"came {t_end - up[0]:.2f}s after that")
    if scen.dump == "hang":
        if crash is None:
            res.reason = "wdfeed never said it crashes into the dump kernel (CRASHDUMP line)"
            return False
        # The fence's pet came just before its CRASHDUMP line: the hardware resets the hung
        # dump kernel one crashdump timeout later.
        waited = t_end - crash[0]
        want = float(scen.crashdump_timeout)
        sl = 1.0 + 0.1 * want
        res.notes.append(f"the hardware reset the hung dump kernel {waited:.2f}s after the "
                         f"fence's pet (crashdump-timeout {want:.0f}s)")
        if abs(waited - want) > sl:
            res.reason = (f"the hung dump kernel was reset {waited:.2f}s after the fence's pet, "
                          f"not the crashdump-timeout {want:.0f}s +- {sl:.2f}s")
            return False
        return True
    saved = guest.first_line(r"VMTEST: dump-kernel saved bytes=(\d+) path=(\S+)", after=t0)
    if saved is None or saved[0] > t_end:
        res.reason = "the dump kernel did not save a dump before the reset"
        return False
    res.notes.append(f"the dump kernel saved {int(saved[1].group(1)) / 2**20:.1f} MiB "
                     f"{saved[0] - up[0]:.2f}s after it came up")
    rel = saved[1].group(2)
    res.dump_path = "/mnt/data/" + rel
    image = os.path.join(guest.workdir, "data.img")
    local = os.path.join(guest.workdir, "vmcore")
    if not take_out(image, rel, local):
        res.reason = f"debugfs cannot take {rel} out of the data disk image"
        return False
    must = b"wdfeed: FENCE" if scen.fence_mode == "crashdump" else b"pre-timeout"
    problem, facts = judge_core(local, _release(guest), must)
    res.notes.append("the dump, read on the host: " + ", ".join(f"{k}={v}" for k, v in facts.items()))
    os.unlink(local)
    if problem:
        res.reason = f"{rel} is not a dump of the guest's kernel: {problem}"
        return False
    return True


def judge_boot2(guest, res, boot_timeout):
    """Boot 2 of a crashdump case: wdfeed names the cause, with the dump boot 1 saved, in
    its log, in `wdfeed status` and in its metrics."""
    def fail(why):
        res.ok = False
        res.reason = "boot 2: " + why
        return False
    started = guest.wait_line(r"VMTEST: (starting wdfeed|error)", boot_timeout)
    if started is None or started[1].group(1) == "error":
        return fail("the guest never started wdfeed")
    done = guest.wait_line(r"VMTEST: (boot2-done|error)", 90)
    if done is None or done[1].group(1) == "error":
        return fail("wdfeed did not name the dump"
                    + (": " + done[1].string.split("VMTEST: error", 1)[1].strip() if done else ""))
    said = guest.first_line(r"the previous boot was fenced \(crashdump\) at .*; a dump was saved at (\S+) .*")
    if said is None:
        return fail("no log line names the previous boot's fence and dump")
    res.notes.append(f"boot 2 log: {said[1].group(0)[:240]}")
    want = getattr(res, "dump_path", None)
    if said[1].group(1) != want:
        return fail(f"the dump named ({said[1].group(1)}) is not the one boot 1 saved ({want})")
    status = guest.first_line(r"status: .*previous boot: fenced \(crashdump\).*")
    if status is None:
        return fail("`wdfeed status` does not name the previous boot's dump")
    metric = guest.first_line(r"metrics: wdfeed_previous_boot_dump_bytes\{.*complete=\"1\"\} \d+")
    if metric is None:
        return fail("the metrics have no wdfeed_previous_boot_dump_bytes")
    res.notes.append(f"boot 2 status: {status[1].group(0)[:200]}")
    res.notes.append(f"boot 2 {metric[1].group(0)[:200]}")
    return True
