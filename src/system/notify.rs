//! systemd's notify protocol (`Type=notify`): READY=1, STATUS=..., WATCHDOG=1. Does nothing
//! when `NOTIFY_SOCKET` is unset. The socket is connected once at start-up, so a
//! notification from the feeder is one send(2) of a static buffer: no allocation, no file.
//!
//! The socket never blocks. A service manager that stops reading (PID 1 busy in a
//! daemon-reexec, or wedged) fills its queue (net.unix.max_dgram_qlen, 10 by default)
//! within a few intervals, and so does any local user who floods /run/systemd/notify; a
//! blocking send would then put the feeder to sleep in the kernel, with no pet and no fence.
//! A notification that would block is dropped instead (a manager whose queue is full cannot
//! act on it anyway) and counted.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A connection to the service manager, or nothing.
#[derive(Debug, Default)]
pub struct Notifier {
    socket: Option<UnixDatagram>,
    /// Notifications dropped because the manager's queue was full.
    dropped: AtomicU64,
}

impl Notifier {
    /// Connects to `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).
    pub fn from_env() -> Self {
        match std::env::var_os("NOTIFY_SOCKET") {
            None => Notifier::default(),
            Some(addr) => match connect(&addr.to_string_lossy()) {
                Ok(socket) => Notifier {
                    socket: Some(socket),
                    dropped: AtomicU64::new(0),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reach the service manager (NOTIFY_SOCKET)");
                    Notifier::default()
                }
            },
        }
    }

    /// Sends one notification without ever waiting: a full queue drops it (and counts it);
    /// other failures are ignored (the manager may be gone at shutdown). Allocates nothing.
    pub fn send(&self, message: &str) {
        if let Some(s) = &self.socket {
            if let Err(e) = s.send(message.as_bytes()) {
                if e.kind() == io::ErrorKind::WouldBlock {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Notifications dropped so far because the manager's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// A notifier connected to a socket a test listens on.
    #[cfg(test)]
    pub fn connected_to(path: &std::path::Path) -> Self {
        Notifier {
            socket: Some(connect(&path.to_string_lossy()).expect("test notify socket")),
            dropped: AtomicU64::new(0),
        }
    }

    /// The keep-alive, for the feeder.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }
}

fn connect(addr: &str) -> io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    if let Some(name) = addr.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let sa = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        socket.connect_addr(&sa)?;
    } else {
        socket.connect(addr)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// systemd's WatchdogSec= for this process, from WATCHDOG_USEC (and WATCHDOG_PID, if set,
/// naming us).
pub fn watchdog_interval() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim() != std::process::id().to_string() {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_a_listening_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::connected_to(&path);
        n.send("READY=1");
        n.watchdog();
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
    }

    #[test]
    fn a_manager_that_stops_reading_never_blocks_a_send() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let _unread = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::connected_to(&path);
        // Far more than any queue (net.unix.max_dgram_qlen) holds: each send returns at once,
        // the ones that do not fit are dropped and counted.
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for _ in 0..1000 {
                n.watchdog();
            }
            let _ = done_tx.send(n.dropped());
        });
        let dropped = done
            .recv_timeout(Duration::from_secs(20))
            .expect("a send blocked on a socket nobody reads");
        assert!(dropped >= 500, "dropped {dropped}");
    }

    #[test]
    fn without_a_socket_nothing_happens() {
        let n = Notifier::default();
        assert!(n.socket.is_none());
        n.send("READY=1");
    }
}
