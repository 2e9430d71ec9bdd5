//! The one scanner of `<number><unit>` that durations and sizes share: a decimal number
//! (digits and at most a point, no sign, no exponent) and the unit text after it, up to the
//! next number.

/// One term at the start of a string.
pub(super) struct Term<'a> {
    /// The number as written.
    pub num: &'a str,
    /// Its value; `None` if it does not parse (`1.2.3`, a lone `.`).
    pub value: Option<f64>,
    /// The unit as written (up to the next digit or point, or the end).
    pub unit: &'a str,
    /// What follows the unit.
    pub rest: &'a str,
}

/// The term `s` starts with; `None` if it does not start with a number.
pub(super) fn term(s: &str) -> Option<Term<'_>> {
    let is_num = |c: char| c.is_ascii_digit() || c == '.';
    let num_len = s.find(|c: char| !is_num(c)).unwrap_or(s.len());
    if num_len == 0 {
        return None;
    }
    let (num, tail) = s.split_at(num_len);
    let unit_len = tail.find(is_num).unwrap_or(tail.len());
    let (unit, rest) = tail.split_at(unit_len);
    Some(Term {
        num,
        value: num.parse().ok().filter(|v: &f64| v.is_finite()),
        unit,
        rest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_term_is_a_number_its_unit_and_the_rest() {
        let t = term("1m30s").unwrap();
        assert_eq!(
            (t.num, t.value, t.unit, t.rest),
            ("1", Some(1.0), "m", "30s")
        );
        let t = term("1.5GiB").unwrap();
        assert_eq!(
            (t.num, t.value, t.unit, t.rest),
            ("1.5", Some(1.5), "GiB", "")
        );
        let t = term("1.2.3s").unwrap();
        assert_eq!((t.num, t.value), ("1.2.3", None));
        assert!(term("s15").is_none());
        assert!(term("").is_none());
        assert!(term("-1s").is_none(), "no sign");
    }
}
