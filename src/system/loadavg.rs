//! `/proc/loadavg`: the 1, 5 and 15 minute load averages.

use crate::system::sysfile::{self, ReadError};
use crate::system::Root;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadAvg {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

/// Reads `<root>/proc/loadavg`.
pub fn read(root: &Root) -> Result<LoadAvg, ReadError> {
    let path = root.proc("loadavg");
    let text = sysfile::read_capped(root, &path, sysfile::SMALL)?;
    parse(&text).map_err(|what| ReadError::new(root.node_name(&path), None, what))
}

/// `1.02 0.34 0.12 1/82 7325`: only the first three fields are used.
pub fn parse(text: &str) -> Result<LoadAvg, String> {
    let mut it = text.split_whitespace();
    let mut next = |item: &str| -> Result<f64, String> {
        let t = it.next().ok_or_else(|| format!("{item} missing"))?;
        match t.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
            _ => Err(format!(
                "{item} `{}` is not a load average",
                sysfile::shorten(t)
            )),
        }
    };
    Ok(LoadAvg {
        one: next("1 minute load")?,
        five: next("5 minute load")?,
        fifteen: next("15 minute load")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_line() {
        // Captured from /proc/loadavg on Linux 6.18.
        let l = parse("1.02 0.34 0.12 1/82 7325\n").unwrap();
        assert_eq!((l.one, l.five, l.fifteen), (1.02, 0.34, 0.12));
    }

    #[test]
    fn truncated_garbage_and_huge_are_errors() {
        for bad in [
            "",
            "1.02 0.34",
            "1.02 x 0.12",
            "NaN 1 1",
            "inf 1 1",
            "-1 1 1",
            "\u{0}",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse(&"9".repeat(1_000_000)).is_err());
        assert_eq!(parse("1e300 1 1").unwrap().one, 1e300);
    }
}
