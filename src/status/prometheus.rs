//! The status in the Prometheus text exposition format (version 0.0.4): a pure function of
//! a [`Status`], for `wdfeed status --format prometheus` and the node_exporter textfile.
//! The families and their labels are listed in docs/METRICS.md.

use std::fmt::Write;

use super::{CheckStatus, DeviceStatus, Status};

/// A family with one sample per check: name, type, help, and the value of a check (none:
/// no sample).
type CheckFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&CheckStatus) -> Option<f64>,
);

const CHECK_FAMILIES: &[CheckFamily] = &[
    (
        "wdfeed_check_healthy",
        "gauge",
        "1 when the check's last run passed (healthy within its deadline), else 0 (also before its first run).",
        |c| Some(flag(c.healthy == Some(true))),
    ),
    (
        "wdfeed_check_lease_remaining_seconds",
        "gauge",
        "Seconds until the check's lease runs out (negative: expired); absent before the first lease.",
        |c| c.lease_left_s,
    ),
    (
        "wdfeed_check_last_run_duration_seconds",
        "gauge",
        "How long the check's last finished run took.",
        |c| c.elapsed_ms.map(|ms| (ms * 1000.0).round() / 1e6),
    ),
    (
        "wdfeed_check_last_run_age_seconds",
        "gauge",
        "Seconds since the check's last run finished.",
        |c| c.last_run_age_s,
    ),
    (
        "wdfeed_check_consecutive_failures",
        "gauge",
        "Failed runs in a row (0 after a pass); past the check's tolerance its lease is withheld.",
        |c| Some(f64::from(c.consecutive_failures)),
    ),
];

/// A family with one sample per device, as [`CheckFamily`] (the whole status is at hand:
/// the last pet is the same for every device).
type DeviceFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Status, &DeviceStatus) -> Option<f64>,
);

const DEVICE_FAMILIES: &[DeviceFamily] = &[
    (
        "wdfeed_device_timeout_seconds",
        "gauge",
        "The watchdog timeout the device was armed with.",
        |_, d| Some(d.timeout_s),
    ),
    (
        "wdfeed_device_last_pet_age_seconds",
        "gauge",
        "Seconds since the feeder last petted the devices; absent before the first pet.",
        |s, _| s.last_pet_age_s,
    ),
    (
        "wdfeed_device_pets_total",
        "counter",
        "Pets the device took since wdfeed started.",
        |_, d| Some(d.pets_total as f64),
    ),
    (
        "wdfeed_device_pet_failures_total",
        "counter",
        "Pets the device refused (an error other than the device going away); a refused pet is no pet.",
        |_, d| Some(d.pet_failures_total as f64),
    ),
];

mod operator;

/// The metrics of `s`, one family after another, each with its HELP and TYPE lines.
pub fn render(s: &Status) -> String {
    let mut out = Out(String::with_capacity(4096));
    out.family(
        "wdfeed_build_info",
        "gauge",
        "Always 1; the version label says which wdfeed runs.",
    );
    out.sample("wdfeed_build_info", &[("version", &s.version)], 1.0);

    out.family(
        "wdfeed_dry_run",
        "gauge",
        "1 when wdfeed runs with --dry-run and pets no device.",
    );
    out.sample("wdfeed_dry_run", &[], flag(s.dry_run));

    out.family(
        "wdfeed_fence_bound_seconds",
        "gauge",
        "The fence bound B: a fault is followed by a hardware reset within this many seconds.",
    );
    out.sample("wdfeed_fence_bound_seconds", &[], s.bound_s);

    out.family(
        "wdfeed_fenced",
        "gauge",
        "1 once wdfeed fenced the node (latched for this boot); the reason label names the check or guard that fenced.",
    );
    match &s.fence {
        Some(f) => out.sample("wdfeed_fenced", &[("reason", &f.check)], 1.0),
        None => out.sample("wdfeed_fenced", &[], 0.0),
    }

    out.family(
        "wdfeed_rejoin_wait_seconds",
        "gauge",
        "Seconds READY=1 still waits for the rejoin delay (0: not waiting); the cluster stack ordered after wdfeed starts when it reaches 0.",
    );
    out.sample(
        "wdfeed_rejoin_wait_seconds",
        &[],
        s.rejoin.as_ref().map_or(0.0, |r| r.wait_left_s),
    );
    operator::render(&mut out, s);

    out.family(
        "wdfeed_previous_boot_dump_bytes",
        "gauge",
        "Size of the crash dump the previous boot left, found at start-up in fence.crashdump-dir; absent when none. The fenced label is the mode of the wdfeed fence that crashed it (its FENCE line in the dump's kernel log), or none; complete is 0 for a dump the dump kernel never finished.",
    );
    if let Some(p) = &s.previous_boot {
        let path = p.dump.display().to_string();
        out.sample(
            "wdfeed_previous_boot_dump_bytes",
            &[
                ("path", &path),
                ("fenced", p.fenced.as_deref().unwrap_or("none")),
                ("complete", if p.complete { "1" } else { "0" }),
            ],
            p.dump_bytes as f64,
        );
    }

    for (name, kind, help, value) in CHECK_FAMILIES {
        out.family(name, kind, help);
        for c in &s.checks {
            if let Some(v) = value(c) {
                out.sample(name, &[("check", &c.name)], v);
            }
        }
    }
    // Only conditional checks have it, with the condition as a second label.
    out.family(
        "wdfeed_check_idle",
        "gauge",
        "For a check with a condition (when:): 1 while the condition does not hold at its last run (the check watches nothing and holds its lease), else 0; the condition label is the condition as written.",
    );
    for c in &s.checks {
        if let Some(when) = &c.when {
            out.sample(
                "wdfeed_check_idle",
                &[("check", &c.name), ("condition", when)],
                flag(c.idle),
            );
        }
    }
    for (name, kind, help, value) in DEVICE_FAMILIES {
        out.family(name, kind, help);
        for d in &s.devices {
            if let Some(v) = value(s, d) {
                let path = d.path.display().to_string();
                out.sample(name, &[("device", &path)], v);
            }
        }
    }
    if s.devices.is_empty() {
        out.family(
            "wdfeed_last_pet_age_seconds",
            "gauge",
            "Seconds since the feeder last petted (or, in a dry run, would have petted).",
        );
        if let Some(age) = s.last_pet_age_s {
            out.sample("wdfeed_last_pet_age_seconds", &[], age);
        }
    }

    lateness(&mut out, s);

    if let Some(t) = &s.textfile {
        out.family(
            "wdfeed_textfile_skipped_rounds_total",
            "counter",
            "Rounds the textfile was not rewritten because the previous write had not finished.",
        );
        out.sample(
            "wdfeed_textfile_skipped_rounds_total",
            &[],
            t.skipped_rounds as f64,
        );
    }
    out.0
}

fn lateness(out: &mut Out, s: &Status) {
    let name = "wdfeed_feeder_lateness_seconds";
    out.family(
        name,
        "histogram",
        "How late the feeder woke for each pet round, against its schedule.",
    );
    let l = &s.lateness;
    let bucket = format!("{name}_bucket");
    for b in &l.buckets {
        let le = num(b.le_us as f64 / 1e6);
        out.sample(&bucket, &[("le", &le)], b.count as f64);
    }
    out.sample(&bucket, &[("le", "+Inf")], l.wakeups as f64);
    out.sample(&format!("{name}_sum"), &[], l.sum_s);
    out.sample(&format!("{name}_count"), &[], l.wakeups as f64);
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// A sample value as the text format writes it.
fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape_label(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {}", num(value));
    }
}

/// A label value with `\`, `"` and newlines escaped, as the text format requires.
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
pub(super) mod tests;
