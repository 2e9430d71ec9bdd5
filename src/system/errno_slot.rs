//! The outcome of one step that a realtime thread takes and another thread reports later:
//! not tried yet, done, or the errno it failed with, in one atomic word (no lock, no
//! allocation on either side).

use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;

/// Not tried yet.
const NOT_TRIED: i32 = -1;
/// Done.
const DONE: i32 = 0;

#[derive(Debug)]
pub struct ErrnoSlot(AtomicI32);

impl Default for ErrnoSlot {
    fn default() -> Self {
        Self::new()
    }
}

impl ErrnoSlot {
    pub const fn new() -> Self {
        ErrnoSlot(AtomicI32::new(NOT_TRIED))
    }

    /// Records how the step went: done, or the errno it failed with.
    pub fn set(&self, outcome: Result<(), Errno>) {
        let v = match outcome {
            Ok(()) => DONE,
            // An errno is never 0 or negative; a bogus one still reads as a failure.
            Err(e) => (e as i32).max(1),
        };
        self.0.store(v, Ordering::SeqCst);
    }

    /// `None` before the step was tried.
    pub fn get(&self) -> Option<Result<(), Errno>> {
        match self.0.load(Ordering::SeqCst) {
            NOT_TRIED => None,
            DONE => Some(Ok(())),
            e => Some(Err(Errno::from_raw(e))),
        }
    }
}

/// An io::Error's errno, for a slot (EIO when it has none).
pub fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_says_not_tried_done_or_the_errno() {
        let s = ErrnoSlot::new();
        assert_eq!(s.get(), None);
        s.set(Err(Errno::EPERM));
        assert_eq!(s.get(), Some(Err(Errno::EPERM)));
        s.set(Ok(()));
        assert_eq!(s.get(), Some(Ok(())));
    }
}
