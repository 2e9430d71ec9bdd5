//! Time: the daemon's clock (CLOCK_BOOTTIME, and a fake one for tests), the sleep that a
//! stopping daemon cuts short, and start-up work under a deadline.

mod clock;
pub mod deadline;
mod stopper;

#[cfg(test)]
pub use clock::or_stop;
#[cfg(test)]
pub use clock::FakeClock;
pub use clock::{duration_to_nanos, micros, millis, BootClock, Clock};
pub use stopper::Stopper;
