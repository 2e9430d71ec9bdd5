//! The fence latch: once closed, never open again.

use std::sync::atomic::{AtomicBool, Ordering};

/// Once closed, never open again: after a fence wdfeed never pets.
#[derive(Debug, Default)]
pub struct Latch {
    closed: AtomicBool,
}

impl Latch {
    pub fn new() -> Self {
        Latch::default()
    }

    /// Closes the latch; true for the one call that closed it.
    pub fn close(&self) -> bool {
        !self.closed.swap(true, Ordering::SeqCst)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}
