//! Byte sizes as operators write them in check settings: `256MiB`, `1G`, `512kB`.
//!
//! K, M, G, T and their `iB` forms count in 1024s (as free(1) and systemd do); kB, MB, GB, TB
//! count in 1000s. A bare number is refused, as bare durations are: `256` could mean anything.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanSize(pub u64);

impl HumanSize {
    pub fn bytes(self) -> u64 {
        self.0
    }
}

/// Parses `256MiB`, `1.5G`, `512kB`, `100B`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let Some(term) = super::term::term(s) else {
        return Err(format!(
            "`{text}` is not a size: expected a number, e.g. `256MiB`"
        ));
    };
    let num = term.num;
    // One term only: everything after the number is the unit (`1G2` has the unit `G2`).
    let unit = &s[num.len()..];
    let value = term
        .value
        .ok_or_else(|| format!("`{text}` is not a size: `{num}` is not a number"))?;
    let scale: f64 = match unit.trim() {
        "B" => 1.0,
        "K" | "KiB" => 1024.0,
        "M" | "MiB" => 1024.0 * 1024.0,
        "G" | "GiB" => 1024.0 * 1024.0 * 1024.0,
        "T" | "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "" => {
            return Err(format!(
                "`{text}` has no unit: write e.g. `{num}MiB` (B, K, M, G, T, KiB.., kB..)"
            ))
        }
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (B, K, M, G, T, KiB.., kB..)"
            ))
        }
    };
    let bytes = value * scale;
    if !bytes.is_finite() || bytes >= 2f64.powi(63) {
        return Err(format!("`{text}` is too large a size"));
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "in range and non-negative (no sign was accepted): the cast only drops the fraction"
    )]
    Ok(bytes.round() as u64)
}

/// `256MiB`-style, in the largest binary unit that fits: exact when it divides evenly,
/// else to one decimal (`117.2MiB`).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (name, unit) in UNITS {
        if bytes >= unit {
            if bytes.is_multiple_of(unit) {
                return format!("{}{name}", bytes / unit);
            }
            return format!("{:.1}{name}", bytes as f64 / unit as f64);
        }
    }
    format!("{bytes}B")
}

impl fmt::Display for HumanSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_size(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = HumanSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size with a unit, e.g. `256MiB`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanSize, E> {
                parse_size(v).map(HumanSize).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HumanSize, E> {
                Err(E::custom(format!("`{v}` has no unit: write e.g. `{v}MiB`")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HumanSize, E> {
                Err(E::custom(format!(
                    "`{v}` is not a size: write e.g. `256MiB`"
                )))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<HumanSize, E> {
                Err(E::custom(format!("`{v}` has no unit: write e.g. `{v}MiB`")))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_operators_write() {
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("512kB"), Ok(512_000));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size(" 2 GiB "), Ok(2 << 30));
    }

    #[test]
    fn refuses_bare_numbers_garbage_and_huge() {
        assert!(parse_size("256").unwrap_err().contains("no unit"));
        assert!(parse_size("").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("-1MiB").is_err());
        assert!(parse_size("1..2M").is_err());
        assert!(parse_size("3 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_size("99999999999T")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_size(&"9".repeat(400)).is_err());
        let e = serde_yaml::from_str::<HumanSize>("256").unwrap_err();
        assert!(e.to_string().contains("`256MiB`"), "{e}");
    }

    #[test]
    fn formats_back() {
        assert_eq!(format_size(256 << 20), "256MiB");
        assert_eq!(format_size(3 << 29), "1.5GiB");
        assert_eq!(format_size(120_000 << 10), "117.2MiB");
        assert_eq!(format_size(1_500_000), "1.4MiB");
        assert_eq!(format_size(1000), "1000B");
        assert_eq!(format_size(u64::MAX), "16777216.0TiB");
    }
}
