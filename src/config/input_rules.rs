//! Rules on values no one means to write, for the whole document: periods too short to be
//! real, NUL bytes anywhere. Each refuses with a rule the operator can read; the floors are
//! documented in docs/CHECKS.md and README.md. Rules on one check kind's own keys live with
//! that kind (`health::checks`).

use std::time::Duration;

use super::tree::key_text;
use super::wording::MAX_PROBLEMS;
use super::Problem;
use crate::units::format_duration;

/// The shortest `interval` and `every`: 10 ms is one jiffy at HZ=100, the coarsest timer tick a
/// kernel may have; shorter periods cannot be kept, and would spin the SCHED_FIFO feeder (or
/// a check thread) for nothing, the device timeout being at least 1 s.
pub const MIN_PERIOD: Duration = Duration::from_millis(10);

/// The message for a period below [`MIN_PERIOD`], or `None`.
pub fn period_too_short(d: Duration) -> Option<String> {
    (!d.is_zero() && d < MIN_PERIOD).then(|| {
        format!(
            "{} is below the floor of {}: no kernel timer is that fine, and the thread would spin; write e.g. `5s`",
            format_duration(d),
            format_duration(MIN_PERIOD)
        )
    })
}

/// Every string in the document (key or value) that holds a NUL byte: no path or name may.
/// The first [`MAX_PROBLEMS`] are listed; the path is written out only for those.
pub fn nul_bytes(doc: &serde_yaml::Value, problems: &mut Vec<Problem>) {
    let mut at = String::new();
    walk(doc, &mut at, problems);
}

fn walk(v: &serde_yaml::Value, at: &mut String, problems: &mut Vec<Problem>) {
    let refuse = |problems: &mut Vec<Problem>, key: &str, s: &str| {
        if problems.len() < MAX_PROBLEMS {
            problems.push(Problem {
                key: key.to_string(),
                message: format!(
                    "`{}` holds a NUL byte: no path, name or argument may",
                    s.escape_debug()
                ),
                location: None,
            })
        }
    };
    match v {
        serde_yaml::Value::String(s) if s.contains('\0') => refuse(problems, at, s),
        serde_yaml::Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = at.len();
                at.push_str(&format!("[{i}]"));
                walk(item, at, problems);
                at.truncate(len);
            }
        }
        serde_yaml::Value::Mapping(map) => {
            for (k, item) in map {
                let name = key_text(k);
                let len = at.len();
                if len > 0 {
                    at.push('.');
                }
                at.push_str(&name);
                if name.contains('\0') {
                    refuse(problems, at, &name);
                }
                walk(item, at, problems);
                at.truncate(len);
            }
        }
        serde_yaml::Value::Tagged(t) => walk(&t.value, at, problems),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_below_one_jiffy_is_refused_and_zero_is_left_to_its_own_rule() {
        assert!(period_too_short(Duration::from_millis(9)).is_some());
        assert!(period_too_short(Duration::from_millis(10)).is_none());
        assert!(period_too_short(Duration::ZERO).is_none());
    }
}
