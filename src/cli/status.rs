//! `wdfeed status`: the running daemon's state, from the file its status thread keeps.

use std::path::Path;

use crate::status;
use crate::system::Root;
use crate::time::{BootClock, Clock};
use crate::Failure;

/// How `wdfeed status` prints the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for operators.
    Text,
    /// The JSON the daemon wrote.
    Json,
    /// The Prometheus text format (docs/METRICS.md).
    Prometheus,
}

pub fn run(path: &Path, format: Format) -> Result<(), Failure> {
    let s = status::read(path).map_err(Failure::runtime)?;
    if let Err(why) = status::liveness::check(&Root::host(), s.pid, s.start_time) {
        not_running(&s, format, &why)?;
        return Err(Failure::runtime(why));
    }
    let age = BootClock.now().as_secs_f64() - s.written_at_s;
    if format == Format::Prometheus {
        out!("{}", status::render_prometheus(&s));
        out!("{}", running_metric(1));
    } else if format == Format::Json {
        let text = serde_json::to_string_pretty(&s).map_err(|e| Failure::runtime(e.to_string()))?;
        outln!("{text}");
    } else {
        outln!(
            "wdfeed pid {}: {} (as of {age:.1} s ago; rewritten on any change)",
            s.pid,
            s.summary()
        );
        if let Some(r) = &s.rejoin {
            outln!(
                "  rejoin delay {:.1} s: READY=1 in {:.1} s (`wdfeed rejoin-now` ends it); {}",
                r.delay_s,
                r.wait_left_s,
                r.cause
            );
        }
        if let Some(p) = &s.previous_boot {
            let cause = p
                .cause
                .strip_prefix("the previous boot ")
                .unwrap_or(&p.cause);
            outln!(
                "  previous boot: {}",
                cause.strip_prefix("was ").unwrap_or(cause)
            );
        }
        if let Some(h) = &s.hold {
            outln!(
                "  READY=1 held ({}) until `wdfeed rejoin-now`: {}",
                h.by,
                h.why
            );
        }
        if let Some(p) = &s.pause {
            outln!(
                "  maintenance pause by uid {} (pid {}): {}; failing checks do not fence for {:.0} s more (`wdfeed resume` ends it)",
                p.uid,
                p.pid,
                p.reason,
                p.left_s
            );
        }
        for d in &s.devices {
            let left = d
                .time_left_s
                .map(|t| format!("{t:.1} s (estimate)"))
                .unwrap_or_else(|| "-".into());
            outln!(
                "  device {}  {}  timeout {:.0} s  time left {left}",
                d.path.display(),
                d.identity.as_deref().unwrap_or("-"),
                d.timeout_s
            );
        }
        outln!(
            "  {:<24} {:<7} {:>10} {:>10}  EVIDENCE",
            "CHECK",
            "VERDICT",
            "LEASE",
            "LAST RUN"
        );
        for c in &s.checks {
            let verdict = match c.healthy {
                Some(true) if c.idle => "idle",
                Some(true) => "ok",
                Some(false) => "FAIL",
                None => "-",
            };
            let secs =
                |v: Option<f64>| v.map(|v| format!("{v:.1} s")).unwrap_or_else(|| "-".into());
            outln!(
                "  {:<24} {:<7} {:>10} {:>10}  {}",
                c.name,
                verdict,
                secs(c.lease_left_s),
                secs(c.last_run_age_s).replace(" s", " s ago"),
                c.evidence.as_deref().unwrap_or("")
            );
        }
        outln!(
            "  feeder wake-up lateness: p50 <= {} us, p99 <= {} us, p99.9 <= {} us, max {} us over {} wake-ups",
            s.lateness.p50_us, s.lateness.p99_us, s.lateness.p999_us, s.lateness.max_us, s.lateness.wakeups
        );
        if let Some(t) = &s.textfile {
            outln!(
                "  metrics textfile {}: {} writes, {} rounds skipped{}",
                t.path.display(),
                t.writes,
                t.skipped_rounds,
                t.warning
                    .as_deref()
                    .map(|w| format!("; WARNING: {w}"))
                    .unwrap_or_default()
            );
        }
    }
    // The daemon rewrites the file on any change and at least every refresh period: one
    // older than that (and three intervals) is of a daemon that is gone or stuck.
    let stale = s.fresh_for_s();
    if age > stale {
        return Err(Failure::runtime(format!(
            "the status was written {age:.0} s ago (more than its refresh period and three intervals, {stale:.0} s): wdfeed is stopped or stuck"
        )));
    }
    Ok(())
}

/// What a scraper or a script reads when the daemon that wrote the file is gone: the file's
/// content is not shown (it described a node that is no longer watched).
fn not_running(s: &status::Status, format: Format, why: &str) -> Result<(), Failure> {
    match format {
        Format::Text => {}
        Format::Json => {
            let v = serde_json::json!({"running": false, "pid": s.pid, "reason": why});
            let text =
                serde_json::to_string_pretty(&v).map_err(|e| Failure::runtime(e.to_string()))?;
            outln!("{text}");
        }
        Format::Prometheus => out!("{}", running_metric(0)),
    }
    Ok(())
}

fn running_metric(v: u8) -> String {
    format!(
        "# HELP wdfeed_running 1 while the daemon that wrote the status file runs, else 0.\n# TYPE wdfeed_running gauge\nwdfeed_running {v}\n"
    )
}
