//! Logging to stderr through tracing: a fixed phrase plus fields. Under systemd
//! (JOURNAL_STREAM set) the journal adds timestamps, so wdfeed leaves them out.
//!
//! Lines are handed to a writer thread through a bounded queue, and dropped when it is full:
//! a journald stuck on a dead disk stops the log, never the feeder or the fence. The thread
//! has a small stack, like every thread wdfeed starts, because mlockall locks all of it.

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Lines queued for the writer thread at most; more are dropped (the start-up writes a few
/// dozen). Each slot is a few words, allocated once.
const QUEUED_LINES: usize = 1024;

/// How long exit waits for the queued lines to reach stderr.
const FLUSH_AT_EXIT: Duration = Duration::from_secs(1);

/// Installs the subscriber; `level` is `error`, `warn`, `info`, `debug` or `trace`, or
/// `target=level` directives separated by commas (a bare level among them is the default).
pub fn init(level: &str) -> Result<LogGuard, String> {
    const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];
    // A bare word that is no level would be taken as a target name and silence everything.
    if !level.contains('=') && !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "--log-level `{level}` is not a level: use error, warn, info, debug or trace"
        ));
    }
    let filter: Targets = level.parse().map_err(|e| {
        format!("--log-level `{level}` is not a level: use error, warn, info, debug or trace ({e})")
    })?;
    let (writer, guard) = start_writer(io::stderr())?;
    let builder = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_target(false)
        .with_ansi(false);
    let result = if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().finish().with(filter).try_init()
    } else {
        builder.finish().with(filter).try_init()
    };
    result.map_err(|e| format!("cannot start logging: {e}"))?;
    Ok(guard)
}

enum Message {
    Line(Vec<u8>),
    /// Sent at exit: the writer answers once everything before it is written.
    Flush(SyncSender<()>),
}

/// The subscriber's side of the queue: every formatted event is one `write` of one line.
#[derive(Clone)]
pub struct QueueWriter {
    queue: SyncSender<Message>,
}

impl Write for QueueWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Full (the writer is stuck) or gone: the line is lost, the caller never waits.
        match self.queue.try_send(Message::Line(buf.to_vec())) {
            Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for QueueWriter {
    type Writer = QueueWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Starts the writer thread that copies queued lines to `out`.
fn start_writer<W: Write + Send + 'static>(out: W) -> Result<(QueueWriter, LogGuard), String> {
    let (queue, lines) = mpsc::sync_channel(QUEUED_LINES);
    crate::system::threads::spawn("log-writer", move || write_lines(lines, out))
        .map_err(|e| format!("cannot start logging: no log writer thread: {e}"))?;
    let guard = LogGuard {
        queue: queue.clone(),
    };
    Ok((QueueWriter { queue }, guard))
}

fn write_lines<W: Write>(lines: Receiver<Message>, mut out: W) {
    for message in lines {
        match message {
            // Nowhere to report a failed write to: the log is that place.
            Message::Line(line) => {
                let _ = out.write_all(&line);
            }
            Message::Flush(done) => {
                let _ = out.flush();
                let _ = done.send(());
            }
        }
    }
}

/// Keeps the log writer fed; dropping it waits (a second at most) until what is queued
/// has been written.
pub struct LogGuard {
    queue: SyncSender<Message>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let (done_tx, done) = mpsc::sync_channel(1);
        if self.queue.try_send(Message::Flush(done_tx)).is_ok() {
            match done.recv_timeout(FLUSH_AT_EXIT) {
                Ok(()) | Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_reach_the_output_in_order_by_the_time_the_guard_is_dropped() {
        let out = Shared::default();
        let (writer, guard) = start_writer(out.clone()).unwrap();
        for i in 0..100 {
            writer
                .make_writer()
                .write_all(format!("line {i}\n").as_bytes())
                .unwrap();
        }
        drop(guard);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let expected: String = (0..100).map(|i| format!("line {i}\n")).collect();
        assert_eq!(text, expected);
    }

    /// An output that never returns, like stderr into a journald stuck on a dead disk.
    struct Stuck;

    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            std::thread::sleep(Duration::from_secs(3600));
            Ok(0)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_output_drops_lines_and_never_blocks_the_caller() {
        let (writer, guard) = start_writer(Stuck).unwrap();
        let started = std::time::Instant::now();
        for _ in 0..QUEUED_LINES * 3 {
            writer.make_writer().write_all(b"line\n").unwrap();
        }
        // The queue is full: one more flush request is refused at once, so drop returns.
        drop(guard);
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "a stuck log writer blocked"
        );
    }
}
