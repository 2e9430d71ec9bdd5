//! `wdfeed check`: every check once, in parallel, each under its deadline; a table of check,
//! verdict, elapsed time and evidence. Exit 0 when healthy, 1 when not.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::config::{self, CheckConfig};
use crate::health::runner::run_once;
use crate::health::Verdict;
use crate::system::Root;
use crate::time::{BootClock, Clock};
use crate::Failure;

#[derive(Debug, Serialize)]
struct Row {
    check: String,
    kind: &'static str,
    healthy: bool,
    /// The check's condition (`when:`) did not hold: it watched nothing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    idle: bool,
    evidence: String,
    elapsed_ms: f64,
}

pub fn run(root: &Root, config_path: Option<&Path>, json: bool) -> Result<(), Failure> {
    let loaded = config::load(config_path).map_err(Failure::config)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let rows: Vec<Row> = std::thread::scope(|s| {
        let handles: Vec<_> = loaded
            .config
            .checks
            .iter()
            .map(|c| s.spawn(move || run_check(c, root)))
            .collect();
        handles
            .into_iter()
            .zip(&loaded.config.checks)
            .map(|(h, c)| {
                h.join().unwrap_or_else(|_| Row {
                    check: c.name.clone(),
                    kind: c.settings.kind(),
                    healthy: false,
                    idle: false,
                    evidence: "the check panicked".into(),
                    elapsed_ms: 0.0,
                })
            })
            .collect()
    });
    if json {
        let text =
            serde_json::to_string_pretty(&rows).map_err(|e| Failure::runtime(e.to_string()))?;
        outln!("{text}");
    } else {
        print_table(&rows);
    }
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| !r.healthy)
        .map(|r| r.check.as_str())
        .collect();
    if failed.is_empty() {
        if !json {
            let idle = rows.iter().filter(|r| r.idle).count();
            let idle = if idle > 0 {
                format!(" ({idle} idle: its condition does not hold)")
            } else {
                String::new()
            };
            outln!(
                "healthy: {} of {} checks passed{idle}",
                rows.len(),
                rows.len()
            );
        }
        Ok(())
    } else {
        if !json {
            outln!(
                "UNHEALTHY: {} of {} checks failed: {}",
                failed.len(),
                rows.len(),
                failed.join(", ")
            );
        }
        Err(Failure {
            code: Failure::UNHEALTHY,
            message: String::new(),
        })
    }
}

fn run_check(c: &CheckConfig, root: &Root) -> Row {
    let row = |v: Verdict, elapsed: Duration| Row {
        check: c.name.clone(),
        kind: c.settings.kind(),
        healthy: v.healthy,
        idle: v.idle,
        evidence: v.evidence,
        elapsed_ms: (elapsed.as_secs_f64() * 1e6).round() / 1e3,
    };
    let check = match c.build(root) {
        Ok(check) => check,
        Err(e) => {
            return row(
                Verdict::unhealthy(format!("cannot prepare the check: {e}")),
                Duration::ZERO,
            )
        }
    };
    let clock = BootClock;
    let mut once = run_once(check, clock.now(), c.schedule.deadline);
    // A check that compares samples (block-io, process in D state) may need a later one to
    // decide; it says how much later. Twice at most: the second wait is a remainder.
    for _ in 0..2 {
        let Some(check) = once.check.take() else {
            break;
        };
        match check.settle_time() {
            Some(wait) if once.verdict.healthy => {
                std::thread::sleep(wait);
                once = run_once(check, clock.now(), c.schedule.deadline);
            }
            _ => break,
        }
    }
    row(once.verdict, once.elapsed)
}

fn print_table(rows: &[Row]) {
    let width = rows.iter().map(|r| r.check.len()).max().unwrap_or(5).max(5);
    outln!(
        "{:<width$}  {:<7}  {:>10}  EVIDENCE",
        "CHECK",
        "VERDICT",
        "ELAPSED"
    );
    for r in rows {
        let verdict = match (r.healthy, r.idle) {
            (true, true) => "idle",
            (true, false) => "ok",
            (false, _) => "FAIL",
        };
        outln!(
            "{:<width$}  {:<7}  {:>8.1}ms  {}",
            r.check,
            verdict,
            r.elapsed_ms,
            r.evidence
        );
    }
}
