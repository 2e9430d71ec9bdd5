//! Human durations as operators write them in `watchdog.yaml`: `500ms`, `15s`, `2m`, `1m30s`, `1.5s`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer};

/// A duration read from a human string. A bare number is refused: `15` could mean anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn get(self) -> Duration {
        self.0
    }
}

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        HumanDuration(d)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

/// Parses `15s`, `500ms`, `2m`, `1h`, `1m30s`, `1.5s` (units: ms, s, m, h).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration: write it with a unit, e.g. `15s`".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let Some(super::term::Term {
            num,
            value,
            unit,
            rest: next,
        }) = super::term::term(rest)
        else {
            return Err(format!(
                "`{text}` is not a duration: expected a number, e.g. `15s`"
            ));
        };
        let value =
            value.ok_or_else(|| format!("`{text}` is not a duration: `{num}` is not a number"))?;
        let scale = match unit.trim() {
            "ms" => 0.001,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "" => {
                return Err(format!(
                    "`{text}` has no unit: write `{num}s` (units: ms, s, m, h)"
                ))
            }
            other => {
                return Err(format!(
                    "`{text}`: unknown unit `{other}` (units: ms, s, m, h)"
                ))
            }
        };
        let secs = value * scale;
        if !secs.is_finite() || secs > 1.0e9 {
            return Err(format!("`{text}` is too long a duration"));
        }
        total += Duration::from_secs_f64(secs);
        rest = next;
    }
    Ok(total)
}

/// The shortest exact human form: `15s`, `500ms`, `2m`, `1.5s`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 && !d.is_zero() {
        return format!("{}us", d.as_micros());
    }
    if !ms.is_multiple_of(1000) {
        if ms < 1000 {
            return format!("{ms}ms");
        }
        return format!("{}s", d.as_secs_f64());
    }
    let s = d.as_secs();
    if s != 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s != 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration with a unit, e.g. `15s` or `500ms`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                parse_duration(v).map(HumanDuration).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "`{v}` has no unit: write `{v}s` (units: ms, s, m, h)"
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "`{v}` is not a duration: write e.g. `15s`"
                )))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "`{v}` has no unit: write `{v}s` (units: ms, s, m, h)"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl serde::Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_operators_write() {
        assert_eq!(parse_duration("15s").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration(" 0s ").unwrap(), Duration::ZERO);
    }

    #[test]
    fn refuses_numbers_without_units_and_garbage() {
        assert!(parse_duration("15").unwrap_err().contains("write `15s`"));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_duration("1..2s").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
        let e = serde_yaml::from_str::<HumanDuration>("15").unwrap_err();
        assert!(e.to_string().contains("write `15s`"), "{e}");
    }

    #[test]
    fn formats_back_to_the_shortest_exact_form() {
        for s in ["15s", "500ms", "2m", "1h", "1.5s", "0s", "90s"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}
