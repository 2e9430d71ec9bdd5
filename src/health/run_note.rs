//! The last run of a check as the fence reads it: published by the check's thread after
//! every run, read by the feeder when it fences, without a lock and without an allocation.
//!
//! A sequence lock over atomic words: the one writer (the check's thread) makes the
//! sequence odd, stores the fields, and makes it even again; a reader copies the fields and
//! keeps the copy only if the sequence was even and unchanged across it. A reader never
//! waits: after a few unlucky tries it says the evidence is being written.

use std::sync::atomic::{fence, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use super::LastRun;
use crate::time::duration_to_nanos;

/// The evidence kept, in bytes; longer evidence is cut (on a character boundary).
pub const EVIDENCE_CAP: usize = 400;

/// How a run ended, as the note keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// The check said unhealthy.
    Failed,
    /// The check said healthy, too late.
    Late,
}

/// A copy of the note, with its evidence in the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub outcome: Outcome,
    pub elapsed: Duration,
    pub finished_at: Duration,
    /// The evidence's length in the caller's buffer.
    pub len: usize,
}

pub struct RunNote {
    seq: AtomicU64,
    /// 0 before the first run; then 1 + the outcome's index.
    outcome: AtomicU8,
    elapsed_ns: AtomicU64,
    finished_ns: AtomicU64,
    len: AtomicUsize,
    evidence: [AtomicU8; EVIDENCE_CAP],
}

impl Default for RunNote {
    fn default() -> Self {
        RunNote {
            seq: AtomicU64::new(0),
            outcome: AtomicU8::new(0),
            elapsed_ns: AtomicU64::new(0),
            finished_ns: AtomicU64::new(0),
            len: AtomicUsize::new(0),
            evidence: std::array::from_fn(|_| AtomicU8::new(0)),
        }
    }
}

/// How many times a reader tries before it gives up on a note being rewritten.
const TRIES: usize = 4;

impl RunNote {
    /// Publishes `run` (one writer: the check's thread).
    pub fn publish(&self, run: &LastRun) {
        let outcome = if run.passed() {
            Outcome::Passed
        } else if run.verdict.healthy {
            Outcome::Late
        } else {
            Outcome::Failed
        };
        let text = cut(&run.verdict.evidence, EVIDENCE_CAP);
        self.seq.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::Release);
        self.outcome.store(outcome as u8 + 1, Ordering::Relaxed);
        self.elapsed_ns
            .store(duration_to_nanos(run.elapsed), Ordering::Relaxed);
        self.finished_ns
            .store(duration_to_nanos(run.finished_at), Ordering::Relaxed);
        for (slot, b) in self.evidence.iter().zip(text.bytes()) {
            slot.store(b, Ordering::Relaxed);
        }
        self.len.store(text.len(), Ordering::Relaxed);
        self.seq.fetch_add(1, Ordering::Release);
    }

    /// Copies the note into `evidence`: `Ok(None)` before the first run, `Err(())` if the
    /// note was being rewritten at every try. Never waits, never allocates.
    pub fn read(&self, evidence: &mut [u8; EVIDENCE_CAP]) -> Result<Option<Seen>, ()> {
        for _ in 0..TRIES {
            let before = self.seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let outcome = self.outcome.load(Ordering::Relaxed);
            let elapsed = self.elapsed_ns.load(Ordering::Relaxed);
            let finished = self.finished_ns.load(Ordering::Relaxed);
            let len = self.len.load(Ordering::Relaxed).min(EVIDENCE_CAP);
            for (dst, src) in evidence.iter_mut().zip(&self.evidence) {
                *dst = src.load(Ordering::Relaxed);
            }
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) != before {
                continue;
            }
            let outcome = match outcome {
                0 => return Ok(None),
                1 => Outcome::Passed,
                2 => Outcome::Failed,
                _ => Outcome::Late,
            };
            return Ok(Some(Seen {
                outcome,
                elapsed: Duration::from_nanos(elapsed),
                finished_at: Duration::from_nanos(finished),
                len,
            }));
        }
        Err(())
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Verdict;

    fn run(healthy: bool, evidence: &str, took_ms: u64) -> LastRun {
        LastRun::judge(
            if healthy {
                Verdict::healthy(evidence)
            } else {
                Verdict::unhealthy(evidence)
            },
            Duration::from_secs(10),
            Duration::from_secs(10) + Duration::from_millis(took_ms),
            Duration::from_secs(2),
            0,
        )
    }

    #[test]
    fn a_note_reads_back_what_was_published_last() {
        let note = RunNote::default();
        let mut buf = [0u8; EVIDENCE_CAP];
        assert_eq!(note.read(&mut buf), Ok(None));
        note.publish(&run(true, "all fine", 5));
        note.publish(&run(false, "/ read-only", 7));
        let seen = note.read(&mut buf).unwrap().unwrap();
        assert_eq!(seen.outcome, Outcome::Failed);
        assert_eq!(&buf[..seen.len], b"/ read-only");
        assert_eq!(seen.elapsed, Duration::from_millis(7));
        assert_eq!(
            seen.finished_at,
            Duration::from_secs(10) + Duration::from_millis(7)
        );
        note.publish(&run(true, "slow", 3000));
        assert_eq!(note.read(&mut buf).unwrap().unwrap().outcome, Outcome::Late);
    }

    #[test]
    fn long_evidence_is_cut_on_a_character_boundary() {
        let note = RunNote::default();
        let long = "é".repeat(EVIDENCE_CAP);
        note.publish(&run(false, &long, 1));
        let mut buf = [0u8; EVIDENCE_CAP];
        let seen = note.read(&mut buf).unwrap().unwrap();
        assert_eq!(seen.len, EVIDENCE_CAP);
        assert!(std::str::from_utf8(&buf[..seen.len]).is_ok());
    }

    #[test]
    fn a_reader_never_sees_a_torn_note() {
        let note = std::sync::Arc::new(RunNote::default());
        let writer = {
            let note = std::sync::Arc::clone(&note);
            std::thread::spawn(move || {
                let (a, b) = (
                    run(false, &"a".repeat(300), 1),
                    run(true, &"b".repeat(20), 2),
                );
                for i in 0..20_000 {
                    note.publish(if i % 2 == 0 { &a } else { &b });
                }
            })
        };
        let mut buf = [0u8; EVIDENCE_CAP];
        while !writer.is_finished() {
            if let Ok(Some(seen)) = note.read(&mut buf) {
                let text = &buf[..seen.len];
                match seen.outcome {
                    Outcome::Failed => assert!(seen.len == 300 && text.iter().all(|&b| b == b'a')),
                    Outcome::Passed => assert!(seen.len == 20 && text.iter().all(|&b| b == b'b')),
                    Outcome::Late => panic!("never published"),
                }
            }
        }
        writer.join().unwrap();
        let seen = note.read(&mut buf).unwrap().unwrap();
        assert_eq!(
            (seen.outcome, seen.len),
            (Outcome::Passed, 20),
            "the last one published"
        );
    }
}
