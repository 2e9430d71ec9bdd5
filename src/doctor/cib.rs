//! The cluster options Pacemaker keeps on disk (/var/lib/pacemaker/cib/cib.xml): the
//! `<nvpair name=... value=...>` elements, read as text. Only the few options the doctor
//! weighs against the fence bound are looked up; the live CIB may be newer than the file.

/// `name="..."` inside one tag.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = tag;
    loop {
        let at = rest.find(name)?;
        let before_ok = at == 0 || rest[..at].ends_with(char::is_whitespace);
        let after = &rest[at + name.len()..];
        let after_trim = after.trim_start();
        if before_ok && after_trim.starts_with('=') {
            let v = after_trim[1..].trim_start();
            let quote = v.chars().next()?;
            if quote != '"' && quote != '\'' {
                return None;
            }
            let end = v[1..].find(quote)?;
            return Some(&v[1..1 + end]);
        }
        rest = after;
    }
}

/// The value of the last `<nvpair name="NAME" value="...">` in `xml`.
pub fn option<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let mut found = None;
    let mut rest = xml;
    while let Some(start) = rest.find("<nvpair") {
        let tail = &rest[start + "<nvpair".len()..];
        let end = tail.find('>').unwrap_or(tail.len());
        let tag = &tail[..end];
        if attr(tag, "name") == Some(name) {
            found = attr(tag, "value");
        }
        rest = &tail[end..];
    }
    found
}

/// A Pacemaker time value in milliseconds (`crm_get_msec`): a bare number is seconds;
/// `ms`, `s`, `m`/`min`, `h`/`hr` are understood. `None` for anything else.
pub fn parse_msec(text: &str) -> Option<i64> {
    let t = text.trim();
    let digits_end = t
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
        .map_or(t.len(), |(i, _)| i);
    let number: i64 = t[..digits_end].parse().ok()?;
    let scale = match t[digits_end..].trim().to_ascii_lowercase().as_str() {
        "" | "s" | "sec" => 1000,
        "ms" | "msec" => 1,
        "m" | "min" => 60_000,
        "h" | "hr" => 3_600_000,
        _ => return None,
    };
    number.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CIB: &str = r#"<cib epoch="5" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="opt-have-watchdog" name="have-watchdog" value="true"/>
        <nvpair id="opt-swt" name="stonith-watchdog-timeout" value="18s"/>
        <nvpair name="stonith-enabled" id="opt-se" value='true'/>
      </cluster_property_set>
    </crm_config>
  </configuration>
</cib>"#;

    #[test]
    fn finds_options_whatever_the_attribute_order() {
        assert_eq!(option(CIB, "stonith-watchdog-timeout"), Some("18s"));
        assert_eq!(option(CIB, "stonith-enabled"), Some("true"));
        assert_eq!(option(CIB, "have-watchdog"), Some("true"));
        assert_eq!(option(CIB, "fencing-watchdog-timeout"), None);
        assert_eq!(option("<nvpair name=\"x\" value=", "x"), None);
        assert_eq!(option("garbage < nvpair >", "x"), None);
    }

    #[test]
    fn pacemaker_times() {
        assert_eq!(parse_msec("18"), Some(18_000));
        assert_eq!(parse_msec("18s"), Some(18_000));
        assert_eq!(parse_msec("1500ms"), Some(1_500));
        assert_eq!(parse_msec("2min"), Some(120_000));
        assert_eq!(parse_msec("-1"), Some(-1_000));
        assert_eq!(parse_msec("soon"), None);
        assert_eq!(parse_msec(""), None);
    }
}
