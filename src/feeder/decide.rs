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

/// What operators asked, as the feeder read it at this wake-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Asked {
    /// `wdfeed fence`: fence now.
    pub fence: bool,
    /// `wdfeed pause`: a check without a valid lease does not fence (the freeze guard does).
    pub paused: bool,
}

/// The whole decision, a pure function of the clock, the last wake-up, the leases and what
/// operators asked. The freeze guard comes before everything else but the latch: a frozen
/// node is fenced whatever an operator said.
pub fn decide(
    now: Duration,
    last_wake: Option<Duration>,
    stall_threshold: Duration,
    leases: &LeaseTable,
    latched: bool,
    asked: Asked,
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
    if asked.fence {
        return Decision::Fence(FenceReason::Operator);
    }
    if asked.paused {
        return Decision::Pet;
    }
    match leases.first_expired(now) {
        Some(index) => Decision::Fence(FenceReason::Check { index }),
        None => Decision::Pet,
    }
}
