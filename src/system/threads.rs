//! The one way wdfeed starts a thread: named, and with the small stack every long-lived
//! thread gets (mlockall locks every page of it; [`THREAD_STACK`] says how it was sized).

use std::io;
use std::thread::{self, JoinHandle};

pub use super::hardening::THREAD_STACK;

/// Starts `work` on a thread named `name` with [`THREAD_STACK`] bytes of stack.
pub fn spawn<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> io::Result<JoinHandle<T>> {
    spawn_with_stack(name, THREAD_STACK, work)
}

/// The same with a stack of `stack` bytes (a short-lived thread that recurses deeper).
pub fn spawn_with_stack<T: Send + 'static>(
    name: &str,
    stack: usize,
    work: impl FnOnce() -> T + Send + 'static,
) -> io::Result<JoinHandle<T>> {
    thread::Builder::new()
        .name(name.into())
        .stack_size(stack)
        .spawn(work)
}
