//! Logging to stderr through tracing: a fixed phrase plus fields. Under systemd
//! (JOURNAL_STREAM set) the journal adds timestamps, so wdfeed leaves them out.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber; `level` is `error`, `warn`, `info`, `debug` or `trace`, or a
/// full filter directive.
pub fn init(level: &str) -> Result<(), String> {
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    let result = if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| format!("cannot start logging: {e}"))
}
