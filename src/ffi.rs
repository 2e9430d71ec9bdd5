//! The only module with `unsafe`: the kernel watchdog ioctls of
//! `include/uapi/linux/watchdog.h`, the pidfd syscalls, realtime scheduling, and the
//! interface ioctls the fence's isolation step issues, the pidfd slots of the kill list, the
//! futex the lock-free sleeps wait on, and the peer credentials and poll of the operators'
//! control socket. Each is
//! wrapped in a safe function taking a borrowed file descriptor, so no caller can hand the
//! kernel a dangling pointer or a closed descriptor.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::ioctl::ioctl_num_type;
use nix::{ioctl_read_bad, ioctl_readwrite_bad, request_code_read, request_code_readwrite};

/// `struct watchdog_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WatchdogInfo {
    pub options: u32,
    pub firmware_version: u32,
    pub identity: [u8; 32],
}

impl WatchdogInfo {
    /// The identity string, cut at its first NUL.
    pub fn identity(&self) -> String {
        let end = self.identity.iter().position(|&b| b == 0).unwrap_or(32);
        String::from_utf8_lossy(&self.identity[..end])
            .trim()
            .to_string()
    }
}

const WATCHDOG_IOCTL_BASE: u8 = b'W';
const INT: usize = std::mem::size_of::<libc::c_int>();

pub const WDIOC_GETSUPPORT: ioctl_num_type =
    request_code_read!(WATCHDOG_IOCTL_BASE, 0, std::mem::size_of::<WatchdogInfo>());
pub const WDIOC_GETBOOTSTATUS: ioctl_num_type = request_code_read!(WATCHDOG_IOCTL_BASE, 2, INT);
pub const WDIOC_KEEPALIVE: ioctl_num_type = request_code_read!(WATCHDOG_IOCTL_BASE, 5, INT);
pub const WDIOC_SETTIMEOUT: ioctl_num_type = request_code_readwrite!(WATCHDOG_IOCTL_BASE, 6, INT);
pub const WDIOC_GETTIMEOUT: ioctl_num_type = request_code_read!(WATCHDOG_IOCTL_BASE, 7, INT);
pub const WDIOC_SETPRETIMEOUT: ioctl_num_type =
    request_code_readwrite!(WATCHDOG_IOCTL_BASE, 8, INT);

ioctl_read_bad!(raw_getsupport, WDIOC_GETSUPPORT, WatchdogInfo);
ioctl_read_bad!(raw_getbootstatus, WDIOC_GETBOOTSTATUS, libc::c_int);
ioctl_read_bad!(raw_keepalive, WDIOC_KEEPALIVE, libc::c_int);
ioctl_readwrite_bad!(raw_settimeout, WDIOC_SETTIMEOUT, libc::c_int);
ioctl_read_bad!(raw_gettimeout, WDIOC_GETTIMEOUT, libc::c_int);
ioctl_readwrite_bad!(raw_setpretimeout, WDIOC_SETPRETIMEOUT, libc::c_int);

/// WDIOC_GETSUPPORT.
pub fn wd_get_support(fd: BorrowedFd<'_>) -> Result<WatchdogInfo, Errno> {
    let mut info = WatchdogInfo::default();
    // SAFETY: fd is open for the borrow's lifetime; `info` is a live, writable
    // `struct watchdog_info` of exactly the size encoded in the request.
    unsafe { raw_getsupport(fd.as_raw_fd(), &mut info) }?;
    Ok(info)
}

/// An ioctl that reads one `int` back.
fn read_int(
    fd: BorrowedFd<'_>,
    f: unsafe fn(RawFd, *mut libc::c_int) -> nix::Result<libc::c_int>,
) -> Result<i32, Errno> {
    let mut v: libc::c_int = 0;
    // SAFETY: fd is open for the borrow's lifetime; `v` is a live int, the size every
    // request passed here encodes.
    unsafe { f(fd.as_raw_fd(), &mut v) }?;
    Ok(v)
}

/// An ioctl that takes one `int` and may write one back.
fn write_int(
    fd: BorrowedFd<'_>,
    f: unsafe fn(RawFd, *mut libc::c_int) -> nix::Result<libc::c_int>,
    value: i32,
) -> Result<i32, Errno> {
    let mut v: libc::c_int = value;
    // SAFETY: as in read_int: a live int of the encoded size on an open descriptor.
    unsafe { f(fd.as_raw_fd(), &mut v) }?;
    Ok(v)
}

/// WDIOC_GETBOOTSTATUS.
pub fn wd_get_bootstatus(fd: BorrowedFd<'_>) -> Result<i32, Errno> {
    read_int(fd, raw_getbootstatus)
}

/// WDIOC_KEEPALIVE.
pub fn wd_keepalive(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    read_int(fd, raw_keepalive).map(drop)
}

/// WDIOC_SETTIMEOUT; returns the value the driver wrote back (what it granted).
pub fn wd_set_timeout(fd: BorrowedFd<'_>, secs: i32) -> Result<i32, Errno> {
    write_int(fd, raw_settimeout, secs)
}

/// WDIOC_GETTIMEOUT.
pub fn wd_get_timeout(fd: BorrowedFd<'_>) -> Result<i32, Errno> {
    read_int(fd, raw_gettimeout)
}

/// WDIOC_SETPRETIMEOUT; returns the value written back.
pub fn wd_set_pretimeout(fd: BorrowedFd<'_>, secs: i32) -> Result<i32, Errno> {
    write_int(fd, raw_setpretimeout, secs)
}

/// pidfd_open(2): a descriptor that names one process for as long as it is held, so a
/// signal sent through it can never reach a process that reused the PID.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether the process a pidfd names has exited (a zombie or reaped), without waiting: the
/// kernel makes a pidfd readable once the whole thread group is gone (poll(2) on a pidfd).
pub fn pidfd_exited(pidfd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one live pollfd on a descriptor open for the borrow; the count is 1 and
    // a timeout of 0 never blocks.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(p.revents & (libc::POLLIN | libc::POLLHUP) != 0)
}

/// pidfd_send_signal(2) with no siginfo.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: the descriptor is open for the borrow; a null siginfo is allowed and flags are 0.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A pidfd held in an atomic word (pid in the high half, descriptor in the low half), so
/// that one thread can swap it while another signals through it, neither waiting on the
/// other: the kill list's slots, which the fence reads on the feeder.
pub struct PidfdSlot(std::sync::atomic::AtomicU64);

/// The word of an empty slot (no descriptor is ever -1).
const EMPTY_SLOT: u64 = u64::MAX;

impl PidfdSlot {
    pub const fn empty() -> Self {
        PidfdSlot(std::sync::atomic::AtomicU64::new(EMPTY_SLOT))
    }

    fn pack(pid: i32, fd: RawFd) -> u64 {
        (u64::from(pid.unsigned_abs()) << 32) | u64::from(fd.unsigned_abs())
    }

    fn unpack(word: u64) -> Option<(i32, RawFd)> {
        if word == EMPTY_SLOT {
            return None;
        }
        let pid = i32::try_from(word >> 32).ok()?;
        let fd = RawFd::try_from(word & 0xffff_ffff).ok()?;
        Some((pid, fd))
    }

    /// Puts `new` in and hands back what the slot held. The caller decides whether the old
    /// descriptor may be closed now (no signal through it can be under way) or must be
    /// leaked (`std::mem::forget`).
    pub fn replace(&self, new: Option<(i32, OwnedFd)>) -> Option<(i32, OwnedFd)> {
        use std::os::fd::IntoRawFd;
        let word = match new {
            Some((pid, fd)) => Self::pack(pid, fd.into_raw_fd()),
            None => EMPTY_SLOT,
        };
        let old = self.0.swap(word, std::sync::atomic::Ordering::SeqCst);
        // SAFETY: the slot owned this number since it was packed from an OwnedFd given up
        // with into_raw_fd, and the swap took it out: nothing else owns it.
        Self::unpack(old).map(|(pid, fd)| (pid, unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// The process held now, if any.
    pub fn pid(&self) -> Option<i32> {
        Self::unpack(self.0.load(std::sync::atomic::Ordering::SeqCst)).map(|(pid, _)| pid)
    }

    /// Sends `signal` through the held pidfd without taking it out: no lock, no allocation.
    /// `None` for an empty slot.
    pub fn signal(&self, signal: i32) -> Option<(i32, io::Result<()>)> {
        let (pid, fd) = Self::unpack(self.0.load(std::sync::atomic::Ordering::SeqCst))?;
        // SAFETY: pidfd_send_signal takes integers and a null siginfo; a descriptor number
        // closed meanwhile fails with EBADF (the kill list never closes one while a fence
        // may be reading its slots).
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd,
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        Some((
            pid,
            if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            },
        ))
    }
}

impl Drop for PidfdSlot {
    fn drop(&mut self) {
        drop(self.replace(None));
    }
}

/// Sleeps while `word` holds `expected`, for at most `timeout` (FUTEX_WAIT, private): the
/// wait of [`crate::time::Stopper`], which takes no lock, so the feeder may use it.
/// Returns early on a wake, a signal or a spurious wake-up; the caller checks its state.
pub fn futex_wait(
    word: &std::sync::atomic::AtomicU32,
    expected: u32,
    timeout: std::time::Duration,
) {
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(i32::try_from(timeout.subsec_nanos()).unwrap_or(0)),
    };
    // SAFETY: `word` is a live, aligned 32-bit atomic for the whole call and `ts` outlives
    // it; FUTEX_WAIT only reads both.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            &ts as *const libc::timespec,
        );
    }
}

/// Wakes every thread in [`futex_wait`] on `word`.
pub fn futex_wake_all(word: &std::sync::atomic::AtomicU32) {
    // SAFETY: `word` is a live, aligned 32-bit atomic; FUTEX_WAKE only uses its address.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        );
    }
}

/// Puts the calling thread under SCHED_FIFO at `priority` (1..=99). With `reset_on_fork`,
/// processes it starts (the `command` check's) begin at normal priority.
pub fn set_thread_fifo(priority: i32, reset_on_fork: bool) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    let policy = if reset_on_fork {
        libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK
    } else {
        libc::SCHED_FIFO
    };
    // SAFETY: pid 0 is the calling thread; `param` lives across the call.
    if unsafe { libc::sched_setscheduler(0, policy, &param) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// This process's effective uid (geteuid(2), which cannot fail).
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid takes nothing, touches no memory of ours and always succeeds.
    unsafe { libc::geteuid() }
}

/// Limits glibc to one malloc arena. With mlockall every arena glibc reserves per thread
/// would be locked in memory too. Call before starting threads.
pub fn limit_malloc_arenas() -> bool {
    // SAFETY: mallopt only sets an allocator tunable; it takes two integers.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) == 1 }
}

/// An interface name as `struct ifreq` carries it: 1 to IFNAMSIZ-1 bytes and a NUL.
#[derive(Clone, Copy)]
pub struct IfName([libc::c_char; libc::IFNAMSIZ]);

impl IfName {
    /// `None` if the name is empty, too long for IFNAMSIZ, or holds a NUL.
    pub fn new(name: &str) -> Option<IfName> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
            return None;
        }
        let mut raw = [0 as libc::c_char; libc::IFNAMSIZ];
        for (dst, &b) in raw.iter_mut().zip(bytes) {
            *dst = libc::c_char::from_ne_bytes([b]);
        }
        Some(IfName(raw))
    }

    /// A request for this interface; everything else zero.
    fn request(&self) -> libc::ifreq {
        // SAFETY: `ifreq` is plain old data (a char array and a union of integers, addresses
        // and pointers that the kernel only reads as integers here); all-zero is valid.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        req.ifr_name = self.0;
        req
    }
}

/// A datagram socket for the interface ioctls (SIOCGIFFLAGS, SIOCSIFFLAGS), in this
/// network namespace; AF_UNIX if the kernel has no IPv4.
pub fn interface_socket() -> io::Result<OwnedFd> {
    for family in [libc::AF_INET, libc::AF_UNIX] {
        // SAFETY: socket(2) takes three integers and returns a new descriptor or -1.
        let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd >= 0 {
            // SAFETY: the kernel just returned this descriptor and nothing else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    Err(io::Error::last_os_error())
}

/// One interface ioctl on a request that lives on the caller's stack.
fn interface_ioctl(
    sock: BorrowedFd<'_>,
    request: libc::c_ulong,
    req: &mut libc::ifreq,
) -> Result<(), Errno> {
    // SAFETY: the socket is open for the borrow; `req` is a live, writable `struct ifreq`
    // with a NUL-terminated name, the argument every request passed here takes.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), request, req as *mut libc::ifreq) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// SIOCGIFINDEX: the interface's index (ENODEV if there is none of that name).
pub fn interface_index(sock: BorrowedFd<'_>, name: &IfName) -> Result<i32, Errno> {
    let mut req = name.request();
    interface_ioctl(sock, libc::SIOCGIFINDEX, &mut req)?;
    // SAFETY: SIOCGIFINDEX succeeded, so the kernel wrote the union's ifindex member.
    Ok(unsafe { req.ifr_ifru.ifru_ifindex })
}

/// SIOCGIFFLAGS: the interface's flags (IFF_UP, ...).
pub fn interface_flags(sock: BorrowedFd<'_>, name: &IfName) -> Result<libc::c_short, Errno> {
    let mut req = name.request();
    interface_ioctl(sock, libc::SIOCGIFFLAGS, &mut req)?;
    // SAFETY: SIOCGIFFLAGS succeeded, so the kernel wrote the union's flags member.
    Ok(unsafe { req.ifr_ifru.ifru_flags })
}

/// SIOCSIFFLAGS: sets the interface's flags (needs CAP_NET_ADMIN in its namespace).
pub fn set_interface_flags(
    sock: BorrowedFd<'_>,
    name: &IfName,
    flags: libc::c_short,
) -> Result<(), Errno> {
    let mut req = name.request();
    req.ifr_ifru.ifru_flags = flags;
    interface_ioctl(sock, libc::SIOCSIFFLAGS, &mut req)
}

/// Who is at the other end of a connected Unix socket, as the kernel recorded it at
/// connect(2) (SO_PEERCRED): pid, uid, gid. Not what the peer says of itself.
pub fn peer_credentials(sock: BorrowedFd<'_>) -> io::Result<(i32, u32, u32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::ucred>())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: the descriptor is open for the borrow; `cred` and `len` live on this stack for
    // the whole call, and `len` says exactly how large `cred` is, so the kernel writes
    // within it.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast::<libc::c_void>(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((cred.pid, cred.uid, cred.gid))
}

/// Waits at most `timeout` for `fd` to be readable (a listening socket: a connection to
/// accept). False on timeout or an interrupting signal.
pub fn poll_readable(fd: BorrowedFd<'_>, timeout: std::time::Duration) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one pollfd on this stack for the whole call, its descriptor open for the borrow.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::EINTR) {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(r > 0)
}

/// Tests only: this thread (not the process) takes on `uid` for real, effective and saved
/// ids, as the raw setresuid(2) does, so a test can be an unprivileged peer of a socket.
/// There is no way back for the thread: give it a thread of its own.
#[cfg(test)]
pub fn thread_setresuid(uid: u32) -> io::Result<()> {
    // SAFETY: setresuid takes three integers; the raw syscall changes only this thread's
    // credentials (glibc's wrapper would change every thread's).
    let r = unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
pub mod alloc_count {
    //! Tests only: a global allocator that counts the allocations a thread makes while it asks
    //! to be watched, so a test can prove that the feeder's tick and the fence allocate nothing
    //! (with one malloc arena for every thread, an allocation there could wait on the arena lock
    //! held by a preempted thread that is not realtime).

    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    struct Counting;

    thread_local! {
        static WATCHING: Cell<bool> = const { Cell::new(false) };
        static COUNT: Cell<u64> = const { Cell::new(0) };
    }

    fn note() {
        if WATCHING.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
    }

    // SAFETY: every call is passed on unchanged to the system allocator; the counting only
    // touches const-initialised thread-locals, which never allocate.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            note();
            // SAFETY: the caller's contract is passed on unchanged.
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            note();
            // SAFETY: as above.
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            note();
            // SAFETY: as above.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: as above.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;

    /// Runs `f` on this thread and returns what it returned and how many allocations it made.
    pub fn allocations<R>(f: impl FnOnce() -> R) -> (R, u64) {
        COUNT.with(|c| c.set(0));
        WATCHING.with(|w| w.set(true));
        let r = f();
        WATCHING.with(|w| w.set(false));
        (r, COUNT.with(Cell::get))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcodes_match_the_x86_64_kernel_header() {
        assert_eq!(WDIOC_GETSUPPORT, 0x8028_5700);
        assert_eq!(WDIOC_GETBOOTSTATUS, 0x8004_5702);
        assert_eq!(WDIOC_KEEPALIVE, 0x8004_5705);
        assert_eq!(WDIOC_SETTIMEOUT, 0xC004_5706);
        assert_eq!(WDIOC_GETTIMEOUT, 0x8004_5707);
        assert_eq!(WDIOC_SETPRETIMEOUT, 0xC004_5708);
    }

    #[test]
    fn identity_is_cut_at_nul() {
        let mut info = WatchdogInfo::default();
        info.identity[..14].copy_from_slice(b"i6300ESB timer");
        assert_eq!(info.identity(), "i6300ESB timer");
        info.identity = [b'x'; 32];
        assert_eq!(info.identity().len(), 32);
    }

    #[test]
    fn a_watchdog_ioctl_on_a_file_that_is_no_watchdog_fails_cleanly() {
        use std::os::fd::AsFd;
        let f = tempfile::tempfile().unwrap();
        assert_eq!(wd_get_support(f.as_fd()).unwrap_err(), Errno::ENOTTY);
        assert_eq!(wd_keepalive(f.as_fd()).unwrap_err(), Errno::ENOTTY);
    }

    #[test]
    fn pidfd_names_our_own_child_and_can_signal_it() {
        use std::os::fd::AsFd;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pidfd = pidfd_open(i32::try_from(child.id()).unwrap()).unwrap();
        pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL).unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }
}
