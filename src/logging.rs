//! Logging to stderr through tracing: a fixed phrase plus fields. Under systemd
//! (JOURNAL_STREAM set) the journal adds timestamps, so wdfeed leaves them out.
//!
//! Lines are handed to a writer thread (tracing-appender's non-blocking writer, lossy): a
//! journald stuck on a dead disk stops the log, never the feeder or the fence.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber; `level` is `error`, `warn`, `info`, `debug` or `trace`, or a
/// full filter directive.
pub fn init(level: &str) -> Result<LogGuard, String> {
    const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];
    // A bare word that is no level would be taken as a target name and silence everything.
    if !level.contains('=') && !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "--log-level `{level}` is not a level: use error, warn, info, debug or trace"
        ));
    }
    let filter = EnvFilter::try_new(level).map_err(|e| {
        format!("--log-level `{level}` is not a level: use error, warn, info, debug or trace ({e})")
    })?;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(4096)
        .thread_name("log-writer")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false)
        .with_ansi(false);
    let result = if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| format!("cannot start logging: {e}"))?;
    Ok(LogGuard(guard))
}

/// Keeps the log writer thread alive; dropping it flushes what is queued.
pub struct LogGuard(
    #[expect(dead_code, reason = "held for its Drop")] tracing_appender::non_blocking::WorkerGuard,
);
