//! The control socket's one-line protocol, shared by the daemon and the commands: a request
//! line, an answer line, tab-separated (a reason holds no control character, so no tab).
//!
//! ```text
//! wdfeed-control 1 <TAB> <sent, CLOCK_BOOTTIME ns> <TAB> fence|pause|resume <TAB> <pause ns> <TAB> <reason>
//! ok|refused|bad <TAB> <text>
//! ```
//!
//! The request carries the moment it was sent: the daemon drops one older than
//! [`STALE_AFTER`], so a command that gave up waiting (a stopped daemon) changes nothing
//! when the daemon runs again.

use std::time::Duration;

use crate::fence::operator::check_reason;

/// The socket's name in the runtime directory.
pub const SOCKET_NAME: &str = "control";
const MAGIC: &str = "wdfeed-control 1";
/// The longest request line, in bytes.
pub const MAX_LINE: usize = 512;
/// A request older than this when the daemon reads it is dropped: the command waits at most
/// [`ANSWER_WITHIN`], and must never hear "no answer" for a request that then acts.
pub const STALE_AFTER: Duration = Duration::from_millis(500);
/// How long a command waits for its answer, connect included.
pub const ANSWER_WITHIN: Duration = Duration::from_millis(900);

/// What an operator asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ask {
    Fence { reason: String },
    Pause { length: Duration, reason: String },
    Resume,
}

impl Ask {
    pub fn verb(&self) -> &'static str {
        match self {
            Ask::Fence { .. } => "fence",
            Ask::Pause { .. } => "pause",
            Ask::Resume => "resume",
        }
    }
}

/// A request: what, and when it was sent (CLOCK_BOOTTIME).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub sent: Duration,
    pub ask: Ask,
}

impl Request {
    pub fn to_line(&self) -> String {
        let (length, reason) = match &self.ask {
            Ask::Fence { reason } => (0, reason.as_str()),
            Ask::Pause { length, reason } => (
                u64::try_from(length.as_nanos()).unwrap_or(u64::MAX),
                reason.as_str(),
            ),
            Ask::Resume => (0, ""),
        };
        format!(
            "{MAGIC}\t{}\t{}\t{length}\t{reason}\n",
            u64::try_from(self.sent.as_nanos()).unwrap_or(u64::MAX),
            self.ask.verb()
        )
    }

    /// The request in `line` (without its newline), or what is wrong with it.
    pub fn parse(line: &str) -> Result<Request, String> {
        let f: Vec<&str> = line.splitn(5, '\t').collect();
        let [magic, sent, verb, length, reason] = f[..] else {
            return Err("not a wdfeed control request (wrong number of fields)".into());
        };
        if magic != MAGIC {
            return Err(format!(
                "not a wdfeed control request of this version (`{MAGIC}` expected): is the command from another wdfeed version?"
            ));
        }
        let ns = |v: &str, what: &str| {
            v.parse::<u64>()
                .map(Duration::from_nanos)
                .map_err(|_| format!("the {what} is not a number of nanoseconds"))
        };
        let sent = ns(sent, "send time")?;
        let ask = match verb {
            "fence" => {
                check_reason(reason)?;
                Ask::Fence {
                    reason: reason.into(),
                }
            }
            "pause" => {
                check_reason(reason)?;
                Ask::Pause {
                    length: ns(length, "pause length")?,
                    reason: reason.into(),
                }
            }
            "resume" => Ask::Resume,
            other => {
                return Err(format!(
                    "unknown request `{}` (fence, pause, resume)",
                    crate::health::cut_text(other, 20)
                ))
            }
        };
        Ok(Request { sent, ask })
    }
}

/// The daemon's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Done (or nothing to do).
    Ok(String),
    /// Not allowed now, or not for this caller: nothing changed.
    Refused(String),
    /// The request is wrong: nothing changed.
    Bad(String),
}

impl Answer {
    pub fn to_line(&self) -> String {
        let (word, text) = match self {
            Answer::Ok(t) => ("ok", t),
            Answer::Refused(t) => ("refused", t),
            Answer::Bad(t) => ("bad", t),
        };
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        format!("{word}\t{text}\n")
    }

    pub fn parse(line: &str) -> Option<Answer> {
        let (word, text) = line.trim_end_matches('\n').split_once('\t')?;
        let text = text.to_string();
        match word {
            "ok" => Some(Answer::Ok(text)),
            "refused" => Some(Answer::Refused(text)),
            "bad" => Some(Answer::Bad(text)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_read_back() {
        for ask in [
            Ask::Fence {
                reason: "demote of r0 failed".into(),
            },
            Ask::Pause {
                length: Duration::from_secs(600),
                reason: "heartbeat upgrade".into(),
            },
            Ask::Resume,
        ] {
            let r = Request {
                sent: Duration::from_millis(12_345),
                ask,
            };
            let line = r.to_line();
            assert!(line.ends_with('\n') && line.len() < MAX_LINE, "{line}");
            assert_eq!(Request::parse(line.strip_suffix('\n').unwrap()).unwrap(), r);
        }
        for a in [
            Answer::Ok("fine".into()),
            Answer::Refused("no".into()),
            Answer::Bad("wrong".into()),
        ] {
            assert_eq!(Answer::parse(&a.to_line()), Some(a));
        }
        assert_eq!(
            Answer::Ok("a\nb".into()).to_line(),
            "ok\ta b\n",
            "one line whatever the text"
        );
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        for (line, says) in [
            ("garbage", "wrong number of fields"),
            ("wdfeed-control 9\t1\tfence\t0\tx", "this version"),
            ("wdfeed-control 1\tx\tfence\t0\tx", "send time"),
            (
                "wdfeed-control 1\t1\treboot\t0\tx",
                "unknown request `reboot`",
            ),
            ("wdfeed-control 1\t1\tfence\t0\t", "empty"),
            ("wdfeed-control 1\t1\tpause\t-5\tx", "pause length"),
            (
                "wdfeed-control 1\t1\tfence\t0\ta\u{1b}[2J",
                "control character",
            ),
        ] {
            let e = Request::parse(line).unwrap_err();
            assert!(e.contains(says), "{line:?}: {e}");
        }
    }
}
