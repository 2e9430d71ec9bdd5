//! `wdfeed fence`, `wdfeed pause`, `wdfeed resume`: a request to the running daemon on its
//! control socket (in `--runtime-dir`), and its answer, all within [`wire::ANSWER_WITHIN`].
//!
//! The command checks before it sends anything that the socket can only be root's: the
//! runtime directory is a real directory of root's that nobody else can write, the socket
//! is a socket of root's, and the process listening on it runs as root (SO_PEERCRED).
//! Anything else (a file, a symlink, a socket a user made) gets nothing.
//!
//! Exit codes: 0 done (or nothing to do), 1 no daemon answered (not running, no socket, no
//! answer in time), 2 a bad request (duration, reason, over `max-pause`), 4 refused (not
//! root, a socket that is not root's, or the daemon's state forbids it).

use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use crate::daemon::control::unsafe_dir;
use crate::daemon::control::wire::{self, Answer, Ask, Request};
use crate::fence::operator::{check_reason, REASON_CAP};
use crate::time::{BootClock, Clock};
use crate::units::parse_duration;
use crate::Failure;

pub fn fence(runtime_dir: &Path, reason: &str, cut_reason: bool) -> Result<(), Failure> {
    let reason = if cut_reason {
        cut_to_cap(reason)
    } else {
        reason
    };
    check_reason(reason).map_err(|e| Failure::usage(format!("--reason: {e}")))?;
    ask(
        runtime_dir,
        Ask::Fence {
            reason: reason.into(),
        },
    )
}

pub fn pause(runtime_dir: &Path, length: &str, reason: &str) -> Result<(), Failure> {
    let length = pause_length(length).map_err(|e| Failure::usage(format!("--for: {e}")))?;
    check_reason(reason).map_err(|e| Failure::usage(format!("--reason: {e}")))?;
    ask(
        runtime_dir,
        Ask::Pause {
            length,
            reason: reason.into(),
        },
    )
}

/// `reason` cut to [`REASON_CAP`] bytes on a character boundary, saying so on stderr.
fn cut_to_cap(reason: &str) -> &str {
    let cut = crate::health::run_note::cut(reason, REASON_CAP);
    if cut.len() < reason.len() {
        eprintln!(
            "wdfeed fence: the reason is {} bytes; sending its first {} (--cut-reason)",
            reason.len(),
            cut.len()
        );
    }
    cut
}

pub fn resume(runtime_dir: &Path) -> Result<(), Failure> {
    ask(runtime_dir, Ask::Resume)
}

/// A pause's length as the operator wrote it: a duration with a unit, above zero (the
/// daemon checks it against its `max-pause`).
fn pause_length(text: &str) -> Result<Duration, String> {
    if text.trim_start().starts_with('-') {
        return Err(format!(
            "`{text}` is negative: give how long the pause lasts, e.g. --for 10m"
        ));
    }
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err(format!(
            "`{text}` is zero: a pause of 0 ends before it starts; give how long, e.g. --for 10m"
        ));
    }
    Ok(d)
}

fn ask(runtime_dir: &Path, ask: Ask) -> Result<(), Failure> {
    let verb = ask.verb();
    let path = socket_path(runtime_dir)?;
    let request = Request {
        sent: BootClock.now(),
        ask,
    };
    // The exchange on a thread of its own: a connect to a stopped daemon's full queue would
    // block, and the command must answer in time whatever the daemon does.
    let (tx, rx) = mpsc::channel();
    let p = path.clone();
    crate::system::threads::spawn("control-request", move || {
        let _ = tx.send(exchange(&p, &request));
    })
    .map_err(|e| Failure::runtime(format!("cannot start a thread for the request: {e}")))?;
    let answer = match rx.recv_timeout(wire::ANSWER_WITHIN) {
        Ok(r) => r?,
        Err(_) => {
            return Err(Failure::runtime(format!(
                "no answer from {} within {:.1} s: wdfeed is stopped or stuck; the daemon drops a request older than {:.1} s, so this `{verb}` does nothing",
                path.display(),
                wire::ANSWER_WITHIN.as_secs_f64(),
                wire::STALE_AFTER.as_secs_f64()
            )))
        }
    };
    match answer {
        Answer::Ok(text) => {
            outln!("{text}");
            Ok(())
        }
        Answer::Refused(text) => Err(Failure::refused(format!("wdfeed {verb}: {text}"))),
        Answer::Bad(text) => Err(Failure::usage(format!("wdfeed {verb}: {text}"))),
    }
}

/// The socket, once the directory and the file are known to be root's alone.
fn socket_path(runtime_dir: &Path) -> Result<PathBuf, Failure> {
    let dir = runtime_dir;
    let meta = std::fs::symlink_metadata(dir).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Failure::runtime(format!(
            "no runtime directory {}: wdfeed is not running here, or runs with another --runtime-dir (WDFEED_RUNTIME_DIR)",
            dir.display()
        )),
        io::ErrorKind::PermissionDenied => not_root(dir),
        _ => Failure::runtime(format!("{}: {e}", dir.display())),
    })?;
    if let Some(why) = unsafe_dir(dir, &meta, 0) {
        return Err(Failure::refused(format!(
            "nothing was sent: {why}; wdfeed's runtime directory must be root's alone"
        )));
    }
    let path = dir.join(wire::SOCKET_NAME);
    let meta = std::fs::symlink_metadata(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Failure::runtime(format!(
            "no control socket {}: wdfeed is not running, has not armed yet (it listens once armed), or could not make the socket (its log says why)",
            path.display()
        )),
        io::ErrorKind::PermissionDenied => not_root(dir),
        _ => Failure::runtime(format!("{}: {e}", path.display())),
    })?;
    let kind = meta.file_type();
    if kind.is_symlink() || !kind.is_socket() || meta.uid() != 0 {
        let what = if kind.is_symlink() {
            "a symbolic link".to_string()
        } else if !kind.is_socket() {
            "not a socket".to_string()
        } else {
            format!("a socket of uid {}, not root's", meta.uid())
        };
        return Err(Failure::refused(format!(
            "{} is {what}: not wdfeed's control socket (was it replaced?); nothing was sent",
            path.display()
        )));
    }
    Ok(path)
}

fn not_root(dir: &Path) -> Failure {
    Failure::refused(format!(
        "permission denied at {}: only root may ask wdfeed to fence, pause or resume (a fence resets this node, a pause lets failures go unfenced)",
        dir.display()
    ))
}

/// Connects, checks that root listens, sends the request and reads the answer.
fn exchange(path: &Path, request: &Request) -> Result<Answer, Failure> {
    let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
        io::ErrorKind::ConnectionRefused => Failure::runtime(format!(
            "nobody listens on {}: wdfeed is not running (the socket is left from an earlier one)",
            path.display()
        )),
        io::ErrorKind::PermissionDenied => {
            not_root(path.parent().unwrap_or_else(|| Path::new("/")))
        }
        _ => Failure::runtime(format!("cannot connect to {}: {e}", path.display())),
    })?;
    let (pid, uid, _) = crate::ffi::peer_credentials(stream.as_fd())
        .map_err(|e| Failure::runtime(format!("{}: {e}", path.display())))?;
    if uid != 0 {
        return Err(Failure::refused(format!(
            "{} is served by pid {pid} of uid {uid}, not by root: not wdfeed's; nothing was sent",
            path.display()
        )));
    }
    let mut w = &stream;
    // A daemon that refuses the sender (SO_PEERCRED) answers and hangs up without reading:
    // the write may then meet a closed socket, and the answer is still there to read.
    let sent = w.write_all(request.to_line().as_bytes());
    if let Err(e) = &sent {
        if !matches!(
            e.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        ) {
            return Err(Failure::runtime(format!(
                "cannot send to {}: {e}",
                path.display()
            )));
        }
    }
    let mut line = String::new();
    BufReader::new(io::Read::take(&stream, 4096))
        .read_line(&mut line)
        .map_err(|e| Failure::runtime(format!("no answer from {}: {e}", path.display())))?;
    Answer::parse(&line).ok_or_else(|| {
        Failure::runtime(format!(
            "{} answered something that is not a wdfeed answer: {:?}",
            path.display(),
            crate::health::cut_text(&line, 80)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_lengths_are_positive_durations_with_a_unit() {
        assert_eq!(pause_length("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(pause_length("90s").unwrap(), Duration::from_secs(90));
        for (bad, says) in [
            ("0s", "zero"),
            ("-5m", "negative"),
            ("five minutes", "not a duration"),
            ("10", "no unit"),
            ("", "empty"),
        ] {
            let e = pause_length(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
