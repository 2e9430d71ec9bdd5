//! Tests only: threads parked while holding a lock, to prove that the feeder and the fence
//! never wait on one.

use std::sync::mpsc;
use std::thread::JoinHandle;

/// What a parked thread does: take its lock, then call `park` while holding it.
pub type Hold = Box<dyn FnOnce(&dyn Fn()) + Send>;

/// Threads that each hold a lock until this is dropped.
pub struct Parked {
    release: Option<mpsc::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Parked {
    /// Runs every `hold` on a thread of its own and returns once each holds its lock.
    pub fn hold(holds: Vec<Hold>) -> Parked {
        let (release, released) = mpsc::channel::<()>();
        let released = std::sync::Arc::new(std::sync::Mutex::new(released));
        let (held_tx, held) = mpsc::channel();
        let threads: Vec<_> = holds
            .into_iter()
            .map(|hold| {
                let (released, held_tx) = (std::sync::Arc::clone(&released), held_tx.clone());
                std::thread::spawn(move || {
                    hold(&|| {
                        held_tx.send(()).unwrap();
                        let _ = released.lock().unwrap().recv();
                    })
                })
            })
            .collect();
        for _ in &threads {
            held.recv().unwrap();
        }
        Parked {
            release: Some(release),
            threads,
        }
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        drop(self.release.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
