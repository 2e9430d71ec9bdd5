//! `memory`: the kernel can still hand out at least `min-available` bytes without swapping
//! (`MemAvailable` in `/proc/meminfo`). Off unless configured.
//!
//! What it cannot see: a cgroup that is out of memory while the node is not, and memory that
//! is available but fragmented. A node this low usually has the OOM killer at work, which may
//! pick the cluster stack: pair it with a `process` check.

use std::time::Duration;

use serde::Deserialize;

use super::{CheckKind, KeyProblem};
use crate::health::{Check, Verdict};
use crate::system::{meminfo, Root};
use crate::units::{format_size, HumanSize};

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Least `MemAvailable`, e.g. `256MiB`.
    pub min_available: HumanSize,
}

impl CheckKind for Settings {
    const KIND: &'static str = "memory";

    fn label(&self) -> String {
        format!("memory min-available {}", self.min_available)
    }

    fn problems(&self) -> Vec<KeyProblem> {
        if self.min_available.bytes() == 0 {
            vec![KeyProblem::new("min-available", "must be more than 0B")]
        } else {
            Vec::new()
        }
    }

    fn build(&self, root: &Root) -> Result<Box<dyn Check>, String> {
        Ok(Box::new(Memory::new(self.clone(), root)?))
    }
}

pub struct Memory {
    root: Root,
    min: HumanSize,
}

impl Memory {
    pub fn new(settings: Settings, root: &Root) -> Result<Self, String> {
        Ok(Memory {
            root: root.clone(),
            min: settings.min_available,
        })
    }
}

impl Check for Memory {
    fn run(&mut self, _now: Duration) -> Verdict {
        match meminfo::available(&self.root) {
            Err(e) => Verdict::unhealthy(e.to_string()),
            Ok(bytes) if bytes < self.min.bytes() => Verdict::unhealthy(format!(
                "MemAvailable {}, below min-available {}",
                format_size(bytes),
                self.min
            )),
            Ok(bytes) => Verdict::healthy(format!(
                "MemAvailable {} (min-available {})",
                format_size(bytes),
                self.min
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_and_above_the_minimum() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        std::fs::create_dir_all(root.proc("")).unwrap();
        std::fs::write(
            root.proc("meminfo"),
            "MemTotal:  1000000 kB\nMemFree:  100000 kB\nMemAvailable:   122880 kB\n",
        )
        .unwrap();
        let mut c = Memory::new(
            Settings {
                min_available: HumanSize(256 << 20),
            },
            &root,
        )
        .unwrap();
        assert_eq!(
            c.run(Duration::ZERO),
            Verdict::unhealthy("MemAvailable 120MiB, below min-available 256MiB")
        );
        let mut c = Memory::new(
            Settings {
                min_available: HumanSize(100 << 20),
            },
            &root,
        )
        .unwrap();
        assert!(c.run(Duration::ZERO).healthy);
        std::fs::write(root.proc("meminfo"), "MemTotal:  1000000 kB\n").unwrap();
        assert!(c
            .run(Duration::ZERO)
            .evidence
            .contains("no MemAvailable line"));
    }
}
