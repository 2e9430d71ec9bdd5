//! `load`: the load averages stay below their limits, as the classic watchdog daemon's
//! `max-load-1`, `max-load-5` and `max-load-15` do. Off unless configured.
//!
//! Reads `/proc/loadavg`. What it cannot see: load counts runnable and D-state tasks alike,
//! so a node waiting on a dead NFS server shows a high load while its CPUs idle, and a busy
//! but healthy node can cross a limit set too low. Prefer `block-io` and `process` for
//! fencing decisions; use this where operators already rely on it.

use std::time::Duration;

use serde::Deserialize;

use super::{CheckKind, KeyProblem};
use crate::health::{Check, Verdict};
use crate::system::{loadavg, Root};

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    #[serde(default, rename = "max-load-1")]
    pub max_load_1: Option<f64>,
    #[serde(default, rename = "max-load-5")]
    pub max_load_5: Option<f64>,
    #[serde(default, rename = "max-load-15")]
    pub max_load_15: Option<f64>,
}

impl Settings {
    fn limits(&self) -> [(&'static str, Option<f64>); 3] {
        [
            ("max-load-1", self.max_load_1),
            ("max-load-5", self.max_load_5),
            ("max-load-15", self.max_load_15),
        ]
    }
}

impl CheckKind for Settings {
    const KIND: &'static str = "load";

    fn label(&self) -> String {
        let set: Vec<String> = self
            .limits()
            .iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k} {v}")))
            .collect();
        format!("load {}", set.join(", "))
    }

    fn problems(&self) -> Vec<KeyProblem> {
        let mut out = Vec::new();
        if self.limits().iter().all(|(_, v)| v.is_none()) {
            out.push(KeyProblem::new(
                "",
                "set at least one of max-load-1, max-load-5, max-load-15",
            ));
        }
        for (key, v) in self.limits() {
            if let Some(v) = v.filter(|v| !(v.is_finite() && *v > 0.0)) {
                out.push(KeyProblem::new(
                    key,
                    format!("`{v}` must be a positive number"),
                ));
            }
        }
        out
    }

    fn build(&self, root: &Root) -> Result<Box<dyn Check>, String> {
        Ok(Box::new(Load::new(self.clone(), root)?))
    }
}

pub struct Load {
    root: Root,
    settings: Settings,
}

impl Load {
    pub fn new(settings: Settings, root: &Root) -> Result<Self, String> {
        Ok(Load {
            root: root.clone(),
            settings,
        })
    }
}

impl Check for Load {
    fn run(&mut self, _now: Duration) -> Verdict {
        let l = match loadavg::read(&self.root) {
            Ok(l) => l,
            Err(e) => return Verdict::unhealthy(e.to_string()),
        };
        let now = format!("load {:.2} {:.2} {:.2}", l.one, l.five, l.fifteen);
        let over: Vec<String> = self
            .settings
            .limits()
            .iter()
            .zip([l.one, l.five, l.fifteen])
            .filter_map(|((key, max), value)| {
                max.filter(|m| value > *m)
                    .map(|m| format!("above {key} {m}"))
            })
            .collect();
        if over.is_empty() {
            Verdict::healthy(format!(
                "{now}: {}",
                self.settings.label().replacen("load ", "within ", 1)
            ))
        } else {
            Verdict::unhealthy(format!("{now}: {}", over.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(line: &str) -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        std::fs::create_dir_all(root.proc("")).unwrap();
        std::fs::write(root.proc("loadavg"), line).unwrap();
        (dir, root)
    }

    #[test]
    fn limits_and_evidence() {
        let s = Settings {
            max_load_1: Some(8.0),
            max_load_5: None,
            max_load_15: Some(4.0),
        };
        let (_d, root) = node("12.50 8.00 4.00 3/412 9183\n");
        let v = Load::new(s.clone(), &root).unwrap().run(Duration::ZERO);
        assert_eq!(
            v,
            Verdict::unhealthy("load 12.50 8.00 4.00: above max-load-1 8")
        );
        let (_d, root) = node("1.02 0.34 0.12 1/82 7325\n");
        let v = Load::new(s, &root).unwrap().run(Duration::ZERO);
        assert_eq!(
            v,
            Verdict::healthy("load 1.02 0.34 0.12: within max-load-1 8, max-load-15 4")
        );
        let (_d, root) = node("1.02 0.3");
        let v = Load::new(
            Settings {
                max_load_1: Some(1.0),
                max_load_5: None,
                max_load_15: None,
            },
            &root,
        )
        .unwrap()
        .run(Duration::ZERO);
        assert_eq!(
            v,
            Verdict::unhealthy("/proc/loadavg: 15 minute load missing")
        );
    }

    #[test]
    fn static_rules() {
        let none = Settings {
            max_load_1: None,
            max_load_5: None,
            max_load_15: None,
        };
        assert_eq!(none.problems()[0].key, "");
        let bad = Settings {
            max_load_1: Some(0.0),
            max_load_5: Some(f64::NAN),
            max_load_15: Some(2.0),
        };
        let keys: Vec<String> = bad.problems().into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["max-load-1", "max-load-5"]);
    }
}
