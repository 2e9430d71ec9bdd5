//! The feeder's whole decision at one wake-up: pet, fence, or (fenced already) nothing.

use std::time::Duration;

use crate::fence::FenceReason;
use crate::health::lease::LeaseTable;

/// What one wake-up of the feeder decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Pet,
    Fence(FenceReason),
    /// Fenced already: do nothing, ever.
    Latched,
}

/// The whole decision, a pure function of the clock, the last wake-up and the leases.
pub fn decide(
    now: Duration,
    last_wake: Option<Duration>,
    stall_threshold: Duration,
    leases: &LeaseTable,
    latched: bool,
) -> Decision {
    if latched {
        return Decision::Latched;
    }
    if let Some(last) = last_wake {
        let gap = now.saturating_sub(last);
        if gap > stall_threshold {
            return Decision::Fence(FenceReason::Stall { gap });
        }
    }
    match leases.first_expired(now) {
        Some(index) => Decision::Fence(FenceReason::Check { index }),
        None => Decision::Pet,
    }
}
