//! The rules a config must meet, applied to the raw mirror to build a [`Config`]. Every
//! broken rule is collected with the key it is about; the caller adds the location.

use std::collections::HashSet;
use std::time::Duration;

use super::check_keys::parse_check;
use super::entries;
use super::input_rules;
use super::raw::{FenceMode, OnExit, RawConfig, RawFence};
use super::{CheckConfig, Config, DeviceConfig, FenceConfig, Problem, DEFAULT_TIMEOUT};
use crate::health::Schedule;
use crate::units::format_duration;
use crate::units::HumanDuration;

/// The largest timeout every driver takes as it is: ipmi_watchdog silently wraps larger
/// values (6554 s became 0.4 s at the BMC).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(6553);

/// More consecutive failures than this would make a check's detection time meaningless.
pub const MAX_TOLERANCE: u32 = 10;

pub fn build(raw: RawConfig, problems: &mut Vec<Problem>) -> Config {
    let devices = devices(raw.devices, problems);
    let min_timeout = devices
        .iter()
        .map(|d| d.timeout)
        .min()
        .unwrap_or(DEFAULT_TIMEOUT);
    let interval = interval(raw.interval, min_timeout, problems);
    let timeouts: Vec<Duration> = devices.iter().map(|d| d.timeout).collect();
    let fence = fence(raw.fence, interval, min_timeout, &timeouts, problems);
    let checks = checks(raw.checks, interval, min_timeout, problems);
    let metrics_textfile = metrics_textfile(raw.metrics.textfile, problems);
    Config {
        devices,
        interval,
        on_exit: raw.on_exit.unwrap_or(OnExit::Disarm),
        rejoin_delay: raw.rejoin_delay.map(HumanDuration::get),
        max_pause: max_pause(raw.max_pause, problems),
        rejoin_budget: rejoin_budget(raw.rejoin_budget, problems),
        fence,
        checks,
        metrics_textfile,
    }
}

/// `max-pause`: from 1 s to a day. A pause must end by itself; one longer than a day is
/// not maintenance.
fn max_pause(raw: Option<HumanDuration>, problems: &mut Vec<Problem>) -> Duration {
    use crate::fence::operator::{DEFAULT_MAX_PAUSE, MAX_MAX_PAUSE};
    let d = or_default(raw, DEFAULT_MAX_PAUSE);
    if d < Duration::from_secs(1) || d > MAX_MAX_PAUSE {
        push(
            problems,
            "max-pause".into(),
            format!(
                "{} is not from 1s to {}: a pause must end by itself, and a longer one is no maintenance (stop wdfeed instead)",
                format_duration(d),
                format_duration(MAX_MAX_PAUSE)
            ),
        );
    }
    d
}

/// `rejoin-budget`: `fences` from 0 (off) to what the state record keeps, `within` from a
/// minute (a shorter window could not hold two boots) to a week (longer is no reboot loop).
fn rejoin_budget(
    raw: Option<super::raw::RawBudget>,
    problems: &mut Vec<Problem>,
) -> crate::rejoin::budget::Budget {
    use crate::rejoin::budget::{Budget, DEFAULT, MAX_FENCES};
    let raw = raw.unwrap_or_default();
    let b = Budget {
        fences: raw.fences.unwrap_or(DEFAULT.fences),
        within: or_default(raw.within, DEFAULT.within),
    };
    if b.fences > MAX_FENCES {
        push(
            problems,
            "rejoin-budget.fences".into(),
            format!(
                "{} is over {MAX_FENCES}, the boots the state record keeps; 0 turns the budget off",
                b.fences
            ),
        );
    }
    let (min, max) = (Duration::from_secs(60), Duration::from_secs(7 * 24 * 3600));
    if b.within < min || b.within > max {
        push(
            problems,
            "rejoin-budget.within".into(),
            format!(
                "{} is not from {} to {}: a reboot loop fences again within minutes",
                format_duration(b.within),
                format_duration(min),
                format_duration(max)
            ),
        );
    }
    b
}

/// `metrics.textfile` must be an absolute path to a `.prom` file (node_exporter reads only
/// those). Whether its directory exists is the daemon's warning, never a config error.
fn metrics_textfile(
    raw: Option<std::path::PathBuf>,
    problems: &mut Vec<Problem>,
) -> Option<std::path::PathBuf> {
    let path = raw?;
    if !path.is_absolute() || path.extension().is_none_or(|e| e != "prom") {
        push(
            problems,
            "metrics.textfile".into(),
            format!(
                "`{}` is not an absolute path ending in .prom (node_exporter's textfile collector reads only *.prom), e.g. /var/lib/prometheus/node-exporter/wdfeed.prom",
                path.display()
            ),
        );
    }
    Some(path)
}

fn push(problems: &mut Vec<Problem>, key: String, message: String) {
    problems.push(Problem {
        key,
        message,
        location: None,
    });
}

fn devices(raw: Vec<serde_yaml::Value>, problems: &mut Vec<Problem>) -> Vec<DeviceConfig> {
    let none = raw.is_empty();
    let read: Vec<_> = (raw.into_iter().enumerate())
        .filter_map(|(i, v)| entries::device(i, v, problems).map(|d| (i, d)))
        .collect();
    let mut problem = |key: String, message: String| push(problems, key, message);
    if none {
        problem(
            "devices".into(),
            "list at least one watchdog device, e.g. `devices: [{path: /dev/watchdog0, timeout: 30s}]` (see `wdfeed info`)".into(),
        );
    }
    let mut seen = HashSet::new();
    let mut devices = Vec::new();
    for (i, d) in read {
        let key = |k: &str| format!("devices[{i}].{k}");
        if !d.path.is_absolute() {
            problem(
                key("path"),
                format!(
                    "`{}` is not an absolute path; write e.g. /dev/watchdog0",
                    d.path.display()
                ),
            );
        }
        let normal = crate::health::checks::normalize(&d.path);
        if !seen.insert(normal.clone()) {
            problem(
                key("path"),
                format!(
                    "{} is listed twice (as {} once worked out)",
                    d.path.display(),
                    normal.display()
                ),
            );
        }
        let timeout = or_default(d.timeout, DEFAULT_TIMEOUT);
        if timeout.subsec_nanos() != 0 || timeout < Duration::from_secs(1) {
            problem(key("timeout"), format!("{} is not a whole number of seconds of at least 1s (the kernel API counts whole seconds)", format_duration(timeout)));
        } else if timeout > MAX_TIMEOUT {
            problem(
                key("timeout"),
                format!(
                    "{} is over {}: IPMI BMCs wrap larger values silently",
                    format_duration(timeout),
                    format_duration(MAX_TIMEOUT)
                ),
            );
        }
        if let Some(pre) = d.pretimeout.map(|p| p.get()) {
            if pre.subsec_nanos() != 0 || pre >= timeout {
                problem(
                    key("pretimeout"),
                    format!(
                        "{} must be whole seconds and below the timeout {}",
                        format_duration(pre),
                        format_duration(timeout)
                    ),
                );
            }
        }
        devices.push(DeviceConfig {
            path: d.path,
            timeout,
            pretimeout: d.pretimeout.map(|p| p.get()),
        });
    }
    devices
}

fn interval(
    raw: Option<HumanDuration>,
    min_timeout: Duration,
    problems: &mut Vec<Problem>,
) -> Duration {
    let mut problem = |key: String, message: String| push(problems, key, message);
    let interval = or_default(raw, min_timeout / 6);
    if interval.is_zero() {
        problem("interval".into(), "must be above zero, e.g. `5s`".into());
    } else if let Some(m) = input_rules::period_too_short(interval) {
        problem("interval".into(), m);
    } else if interval > min_timeout / 3 {
        problem(
            "interval".into(),
            format!(
                "{} is too long for the {} device timeout: pet at least three times per timeout (interval at most {})",
                format_duration(interval),
                format_duration(min_timeout),
                format_duration(min_timeout / 3)
            ),
        );
    }

    interval
}

fn fence(
    raw: RawFence,
    interval: Duration,
    min_timeout: Duration,
    device_timeouts: &[Duration],
    problems: &mut Vec<Problem>,
) -> FenceConfig {
    let mode = raw.mode.unwrap_or(FenceMode::Watchdog);
    let crashdump = super::crashdump::rules(
        mode,
        raw.crashdump_timeout,
        raw.crashdump_dir,
        device_timeouts,
        problems,
    );
    let mut problem = |key: String, message: String| push(problems, key, message);
    let stall_threshold = or_default(raw.stall_threshold, min_timeout);
    if stall_threshold < interval * 2 {
        problem(
            "fence.stall-threshold".into(),
            format!(
                "{} would fence on ordinary scheduling delay: make it at least twice the interval ({})",
                format_duration(stall_threshold),
                format_duration(interval * 2)
            ),
        );
    }
    for (i, entry) in raw.kill.iter().enumerate() {
        super::kill_entry::problems(i, entry, &mut problem);
    }

    let mut seen = HashSet::new();
    for (i, name) in raw.isolate.iter().enumerate() {
        if let Some(why) = bad_interface_name(name) {
            problem(
                format!("fence.isolate[{i}]"),
                format!(
                    "`{}` is not an interface name: {why}; give it as `ip -br link` shows it",
                    name.escape_debug()
                ),
            );
        } else if !seen.insert(name.as_str()) {
            problem(
                format!("fence.isolate[{i}]"),
                format!("`{name}` is listed twice"),
            );
        }
    }

    if let Some(p) = &raw.handover_file {
        let text = p.to_string_lossy();
        if text.contains('\0') {
            problem("fence.handover-file".into(), format!("`{}` holds a NUL byte; write a plain absolute path on tmpfs, e.g. /run/wdfeed/handover", text.escape_debug()));
        } else if !p.is_absolute() {
            problem(
                "fence.handover-file".into(),
                format!(
                    "`{text}` is not an absolute path; write e.g. /run/wdfeed/handover (on tmpfs)"
                ),
            );
        }
    }

    FenceConfig {
        mode,
        kill: raw.kill,
        stall_threshold,
        isolate: raw.isolate,
        handover_file: raw.handover_file,
        crashdump,
    }
}

/// Why the kernel would refuse `name` as an interface name (dev_valid_name), if it would.
fn bad_interface_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 15 {
        Some("longer than 15 bytes (IFNAMSIZ - 1)")
    } else if name == "." || name == ".." {
        Some("`.` and `..` are not allowed")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c == '\0' || c.is_whitespace())
    {
        Some("it holds `/`, `:`, whitespace or NUL")
    } else {
        None
    }
}

fn checks(
    raw: Vec<serde_yaml::Value>,
    interval: Duration,
    min_timeout: Duration,
    problems: &mut Vec<Problem>,
) -> Vec<CheckConfig> {
    let mut checks = Vec::new();
    let mut names = HashSet::new();
    for (i, value) in raw.into_iter().enumerate() {
        let Some((common, mut settings)) = parse_check(i, value, problems) else {
            continue;
        };
        let key = |k: &str| format!("checks[{i}].{k}");
        let every = or_default(common.every, interval);
        let deadline = or_default(common.deadline, (every * 2).min(min_timeout / 2));
        let tolerance = common
            .tolerance
            .unwrap_or_else(|| settings.default_tolerance());
        for (k, d) in [("every", every), ("deadline", deadline)] {
            if d.is_zero() {
                push(problems, key(k), "must be above zero, e.g. `5s`".into());
            } else if let Some(m) = input_rules::period_too_short(d).filter(|_| k == "every") {
                push(problems, key(k), m);
            } else if d >= min_timeout {
                push(
                    problems,
                    key(k),
                    format!(
                        "{} must be below the device timeout {}",
                        format_duration(d),
                        format_duration(min_timeout)
                    ),
                );
            }
        }
        if tolerance > MAX_TOLERANCE {
            push(
                problems,
                key("tolerance"),
                format!("{tolerance} is more than {MAX_TOLERANCE} consecutive failures"),
            );
        }
        settings.settle_defaults(&Schedule {
            every,
            deadline,
            tolerance,
        });
        if let Some((limit_key, limit)) = settings.own_time_limit() {
            if limit >= deadline {
                push(
                    problems,
                    key(limit_key),
                    format!(
                        "{} must be below the check's deadline {}: a command still running at the deadline fails the check anyway",
                        format_duration(limit),
                        format_duration(deadline)
                    ),
                );
            }
        }
        for p in settings.problems().into_iter() {
            let k = if p.key.is_empty() {
                format!("checks[{i}]")
            } else {
                key(&p.key)
            };
            push(problems, k, p.message);
        }
        let when = common.when.as_ref().and_then(|v| {
            crate::health::condition::parse(v)
                .map_err(|p| {
                    let k = if p.key.is_empty() {
                        key("when")
                    } else {
                        key(&format!("when.{}", p.key))
                    };
                    push(problems, k, p.message);
                })
                .ok()
        });
        let name = common.label.unwrap_or_else(|| settings.label());
        if !names.insert(name.clone()) {
            push(
                problems,
                key("label"),
                format!("two checks are labelled `{name}`: give one a `label:` of its own"),
            );
        }
        checks.push(CheckConfig {
            name,
            schedule: Schedule {
                every,
                deadline,
                tolerance,
            },
            settings,
            when,
        });
    }
    checks
}

/// Lets the rules read a duration the operator may have left out.
fn or_default(d: Option<HumanDuration>, default: Duration) -> Duration {
    d.map(HumanDuration::get).unwrap_or(default)
}
