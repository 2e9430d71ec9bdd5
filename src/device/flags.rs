//! The option and status bits of `struct watchdog_info`, decoded for humans.

pub const WDIOF_OVERHEAT: u32 = 0x0001;
pub const WDIOF_FANFAULT: u32 = 0x0002;
pub const WDIOF_EXTERN1: u32 = 0x0004;
pub const WDIOF_EXTERN2: u32 = 0x0008;
pub const WDIOF_POWERUNDER: u32 = 0x0010;
pub const WDIOF_CARDRESET: u32 = 0x0020;
pub const WDIOF_POWEROVER: u32 = 0x0040;
pub const WDIOF_SETTIMEOUT: u32 = 0x0080;
pub const WDIOF_MAGICCLOSE: u32 = 0x0100;
pub const WDIOF_PRETIMEOUT: u32 = 0x0200;
pub const WDIOF_ALARMONLY: u32 = 0x0400;
pub const WDIOF_KEEPALIVEPING: u32 = 0x8000;

const NAMES: &[(u32, &str)] = &[
    (WDIOF_OVERHEAT, "overheat"),
    (WDIOF_FANFAULT, "fan-fault"),
    (WDIOF_EXTERN1, "external-1"),
    (WDIOF_EXTERN2, "external-2"),
    (WDIOF_POWERUNDER, "power-under"),
    (WDIOF_CARDRESET, "card-reset"),
    (WDIOF_POWEROVER, "power-over"),
    (WDIOF_SETTIMEOUT, "set-timeout"),
    (WDIOF_MAGICCLOSE, "magic-close"),
    (WDIOF_PRETIMEOUT, "pretimeout"),
    (WDIOF_ALARMONLY, "alarm-only"),
    (WDIOF_KEEPALIVEPING, "keepalive"),
];

/// The names of the bits set in `bits`, e.g. `["set-timeout", "magic-close", "keepalive"]`;
/// bits no header names are shown in hex.
pub fn decode(bits: u32) -> Vec<String> {
    let mut out: Vec<String> = NAMES
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    let known = NAMES.iter().fold(0, |acc, (b, _)| acc | b);
    if bits & !known != 0 {
        out.push(format!("0x{:x}", bits & !known));
    }
    out
}

/// Why the last reset happened, from a boot status, in words.
pub fn describe_bootstatus(bits: u32) -> String {
    if bits == 0 {
        return "normal boot (or the driver does not report the cause)".into();
    }
    let names = decode(bits);
    if bits & WDIOF_CARDRESET != 0 {
        format!(
            "previous reset was caused by the watchdog ({})",
            names.join(", ")
        )
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_itco_option_set() {
        assert_eq!(
            decode(0x8180),
            vec!["set-timeout", "magic-close", "keepalive"]
        );
    }

    #[test]
    fn unknown_bits_are_shown_not_dropped() {
        assert_eq!(
            decode(0x10000 | WDIOF_CARDRESET),
            vec!["card-reset", "0x10000"]
        );
    }

    #[test]
    fn card_reset_reads_as_a_watchdog_reset() {
        assert!(describe_bootstatus(32).starts_with("previous reset was caused by the watchdog"));
        assert!(describe_bootstatus(0).starts_with("normal boot"));
    }
}
