//! What an operator asks of the feeder, handed over without a lock: a fence now (`wdfeed
//! fence`), its reason in a buffer that exists from start-up, and the end of a maintenance
//! pause (`wdfeed pause`). The control thread writes; the feeder and the fence read. Neither
//! waits on the other, and reading allocates nothing.
//!
//! A fence is asked once: the first request writes the reason and then publishes it
//! (`NONE` → `WRITING` → `ASKED`), so the buffer is never written again once the feeder can
//! see it. A pause is one word, its end on CLOCK_BOOTTIME; after it ends the word keeps that
//! end, so the fence that follows can say the pause had just ended.

use std::fmt;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use crate::health::cut_text;
use crate::time::duration_to_nanos;

/// The longest reason an operator may give, in bytes.
pub const REASON_CAP: usize = 200;

/// The longest `max-pause` may be: a pause must end by itself, and one longer than a day is
/// not maintenance (stop wdfeed instead).
pub const MAX_MAX_PAUSE: Duration = Duration::from_secs(24 * 3600);
/// `max-pause` when the config does not say.
pub const DEFAULT_MAX_PAUSE: Duration = Duration::from_secs(3600);

const NONE: u8 = 0;
const WRITING: u8 = 1;
const ASKED: u8 = 2;

/// The operator's requests as the feeder reads them.
pub struct Operator {
    fence: AtomicU8,
    uid: AtomicU32,
    pid: AtomicI32,
    len: AtomicUsize,
    reason: [AtomicU8; REASON_CAP],
    /// The pause's end on CLOCK_BOOTTIME in nanoseconds (0: never paused). Kept after the
    /// end: a fence that follows names it.
    pause_until: AtomicU64,
}

impl Default for Operator {
    fn default() -> Self {
        Operator {
            fence: AtomicU8::new(NONE),
            uid: AtomicU32::new(0),
            pid: AtomicI32::new(0),
            len: AtomicUsize::new(0),
            reason: std::array::from_fn(|_| AtomicU8::new(0)),
            pause_until: AtomicU64::new(0),
        }
    }
}

impl Operator {
    /// Asks the feeder to fence, for `reason` (cut to [`REASON_CAP`]), from `uid` and `pid`.
    /// False if a fence was asked already: the first request stands.
    pub fn ask_fence(&self, uid: u32, pid: i32, reason: &str) -> bool {
        if self
            .fence
            .compare_exchange(NONE, WRITING, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return false;
        }
        let text = cut_text(reason, REASON_CAP);
        for (slot, b) in self.reason.iter().zip(text.bytes()) {
            slot.store(b, Ordering::Relaxed);
        }
        self.len.store(text.len(), Ordering::Relaxed);
        self.uid.store(uid, Ordering::Relaxed);
        self.pid.store(pid, Ordering::Relaxed);
        // Release: whoever sees ASKED sees the reason written above.
        self.fence.store(ASKED, Ordering::Release);
        true
    }

    /// Whether an operator asked for a fence. Lock-free.
    pub fn fence_asked(&self) -> bool {
        self.fence.load(Ordering::Acquire) == ASKED
    }

    /// The operator's reason and who asked, as the fence records it: `<reason> (wdfeed fence,
    /// uid U, pid P)`. Writes nothing before a fence was asked. No lock, no allocation.
    pub fn write_fence_reason(&self, out: &mut impl fmt::Write) -> fmt::Result {
        if !self.fence_asked() {
            return Ok(());
        }
        let mut buf = [0u8; REASON_CAP];
        let len = self.len.load(Ordering::Relaxed).min(REASON_CAP);
        for (dst, src) in buf.iter_mut().zip(&self.reason).take(len) {
            *dst = src.load(Ordering::Relaxed);
        }
        // Only whole characters were written (cut_text), and never again after ASKED.
        let text = std::str::from_utf8(&buf[..len]).unwrap_or("(unreadable)");
        write!(
            out,
            "{text} (wdfeed fence, uid {}, pid {})",
            self.uid.load(Ordering::Relaxed),
            self.pid.load(Ordering::Relaxed)
        )
    }

    /// Pauses check fences until `until` (CLOCK_BOOTTIME), or ends the pause when `until` is
    /// now or earlier.
    pub fn set_pause_until(&self, until: Duration) {
        self.pause_until
            .store(duration_to_nanos(until).max(1), Ordering::SeqCst);
    }

    /// Whether failing checks are paused at `now`. Lock-free.
    pub fn paused_at(&self, now: Duration) -> bool {
        let until = self.pause_until.load(Ordering::SeqCst);
        until != 0 && duration_to_nanos(now) < until
    }

    /// The end of the pause in progress at `now`, if any.
    pub fn pause_end(&self, now: Duration) -> Option<Duration> {
        self.paused_at(now)
            .then(|| Duration::from_nanos(self.pause_until.load(Ordering::SeqCst)))
    }

    /// How long before `now` the last pause ended, if one did.
    pub fn pause_ended_before(&self, now: Duration) -> Option<Duration> {
        let until = self.pause_until.load(Ordering::SeqCst);
        (until != 0 && until <= duration_to_nanos(now))
            .then(|| now.saturating_sub(Duration::from_nanos(until)))
    }
}

/// Writes `; a maintenance pause ended X s before` when the last pause ended within
/// `within` before `now`: the fence that comes right after a pause says why it came then.
pub fn write_pause_note(op: &Operator, now: Duration, within: Duration, out: &mut impl fmt::Write) {
    if let Some(ago) = op.pause_ended_before(now).filter(|a| *a <= within) {
        let _ = write!(
            out,
            "; a maintenance pause ended {:.1} s before",
            ago.as_secs_f64()
        );
    }
}

/// Whether `reason` may be sent: 1 to [`REASON_CAP`] bytes, no control characters (they
/// would break the kernel log line, the record and the status). The error says what to fix.
pub fn check_reason(reason: &str) -> Result<(), String> {
    if reason.trim().is_empty() {
        return Err("the reason is empty: say why, e.g. --reason 'demote of r0 failed'".into());
    }
    if reason.len() > REASON_CAP {
        return Err(format!(
            "the reason is {} bytes, over {REASON_CAP}: shorten it",
            reason.len()
        ));
    }
    if let Some(c) = reason.chars().find(|c| c.is_control()) {
        return Err(format!(
            "the reason holds the control character {:?}: write it on one line of plain text",
            c
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fence::Line;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn the_first_fence_request_stands_and_reads_back_without_allocating() {
        let op = Operator::default();
        assert!(!op.fence_asked());
        let mut none = Line::<64>::default();
        op.write_fence_reason(&mut none).unwrap();
        assert_eq!(none.as_str(), "");
        assert!(op.ask_fence(0, 4242, "demote of r0 failed"));
        assert!(!op.ask_fence(0, 1, "second"), "the first request stands");
        assert!(op.fence_asked());
        let (text, n) = crate::ffi::alloc_count::allocations(|| {
            let mut l = Line::<300>::default();
            op.write_fence_reason(&mut l).unwrap();
            l
        });
        assert_eq!(n, 0, "reading the reason allocated");
        assert_eq!(
            text.as_str(),
            "demote of r0 failed (wdfeed fence, uid 0, pid 4242)"
        );
    }

    #[test]
    fn a_long_reason_is_cut_on_a_character_boundary() {
        let op = Operator::default();
        op.ask_fence(0, 1, &"é".repeat(150));
        let mut l = Line::<400>::default();
        op.write_fence_reason(&mut l).unwrap();
        assert!(l.as_str().starts_with(&"é".repeat(100)), "{}", l.as_str());
        assert!(!l.as_str().starts_with(&"é".repeat(101)));
    }

    #[test]
    fn a_pause_holds_until_its_end_and_is_remembered_after() {
        let op = Operator::default();
        assert!(!op.paused_at(S(10)));
        assert_eq!(op.pause_ended_before(S(10)), None);
        op.set_pause_until(S(100));
        assert!(op.paused_at(S(99)));
        assert_eq!(op.pause_end(S(99)), Some(S(100)));
        assert!(!op.paused_at(S(100)), "the end is not paused");
        assert_eq!(op.pause_ended_before(S(103)), Some(S(3)));
        let mut l = Line::<128>::default();
        write_pause_note(&op, S(103), S(5), &mut l);
        assert_eq!(l.as_str(), "; a maintenance pause ended 3.0 s before");
        let mut l = Line::<128>::default();
        write_pause_note(&op, S(200), S(5), &mut l);
        assert_eq!(l.as_str(), "", "long ago: not this fence's story");
        // resume: the end moves to now
        op.set_pause_until(S(500));
        op.set_pause_until(S(120));
        assert!(!op.paused_at(S(120)));
    }

    #[test]
    fn reasons_are_plain_short_text() {
        assert!(check_reason("demote of r0 failed").is_ok());
        assert!(check_reason(&"x".repeat(200)).is_ok());
        let e = check_reason(&"x".repeat(201)).unwrap_err();
        assert!(e.contains("201 bytes, over 200"), "{e}");
        for bad in ["a\nb", "tab\there", "bell\u{7}", "del\u{7f}", "c1\u{85}"] {
            let e = check_reason(bad).unwrap_err();
            assert!(e.contains("control character"), "{bad:?}: {e}");
        }
        assert!(check_reason("  ").unwrap_err().contains("empty"));
    }
}
