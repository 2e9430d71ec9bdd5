//! What the fence record says: [`Found`], read from its text.

use std::path::Path;

use super::MAGIC;

/// What the record said at start-up.
#[derive(Clone, Debug, PartialEq)]
pub enum Found {
    /// No record, or an empty one: first start in this boot.
    Nothing,
    /// wdfeed ran in this boot and did not fence.
    CleanThisBoot,
    /// A record of another boot: ignored (it is overwritten as clean).
    OtherBoot { boot: String },
    /// wdfeed fenced in this boot: it must never arm or pet again until the reset.
    FencedThisBoot {
        at_boot_s: f64,
        at_epoch_s: u64,
        reason: String,
    },
    /// A record that names this boot but cannot be read as one: treated as fenced.
    Damaged { why: String },
}

impl Found {
    /// Whether wdfeed may arm in this boot.
    pub fn may_arm(&self) -> bool {
        matches!(
            self,
            Found::Nothing | Found::CleanThisBoot | Found::OtherBoot { .. }
        )
    }

    /// One line for the log and `status`.
    pub fn describe(&self, path: &Path) -> String {
        let p = path.display();
        match self {
            Found::Nothing => format!("no fence record at {p}: first start in this boot"),
            Found::CleanThisBoot => format!("fence record {p}: not fenced in this boot"),
            Found::OtherBoot { boot } => {
                format!("fence record {p} is of another boot ({boot}): ignored")
            }
            Found::FencedThisBoot {
                at_boot_s,
                at_epoch_s,
                reason,
            } => format!(
                "fenced earlier in this boot at {at_boot_s:.1} s after boot (unix time {at_epoch_s}) ({reason}): waiting for the reset (record {p})"
            ),
            Found::Damaged { why } => format!(
                "fence record {p} of this boot is damaged ({why}): treated as fenced, waiting for the reset"
            ),
        }
    }
}

/// What `text` says of the boot `boot_id`.
pub(super) fn parse(text: &[u8], boot_id: &str) -> Found {
    if text.iter().all(|&b| b == b'\n' || b == 0) {
        return Found::Nothing;
    }
    let Ok(text) = std::str::from_utf8(text) else {
        return Found::Damaged {
            why: "not UTF-8 text".into(),
        };
    };
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Found::Damaged {
            why: format!("the first line is not `{MAGIC}`"),
        };
    }
    let Some(boot) = lines.next().and_then(|l| l.strip_prefix("boot ")) else {
        return Found::Damaged {
            why: "no `boot` line".into(),
        };
    };
    if boot.len() != boot_id.len() {
        return Found::Damaged {
            why: "the `boot` line holds no whole boot id".into(),
        };
    }
    if boot != boot_id {
        return Found::OtherBoot {
            boot: boot.chars().take(40).collect(),
        };
    }
    match lines.next() {
        Some("state clean") => Found::CleanThisBoot,
        Some("state fenced") => parse_fenced(lines),
        _ => Found::Damaged {
            why: "no `state clean` or `state fenced` line".into(),
        },
    }
}

fn parse_fenced<'a>(mut lines: impl Iterator<Item = &'a str>) -> Found {
    let at = lines
        .next()
        .and_then(|l| l.strip_prefix("at "))
        .and_then(|l| {
            let (boot, epoch) = l.split_once(' ')?;
            Some((boot.parse::<f64>().ok()?, epoch.parse::<u64>().ok()?))
        });
    let Some((at_boot_s, at_epoch_s)) = at else {
        return Found::Damaged {
            why: "fenced, but the `at` line is missing or malformed".into(),
        };
    };
    let reason = lines
        .next()
        .and_then(|l| l.strip_prefix("reason "))
        .unwrap_or("reason not recorded")
        .trim_end()
        .to_string();
    Found::FencedThisBoot {
        at_boot_s,
        at_epoch_s,
        reason,
    }
}
