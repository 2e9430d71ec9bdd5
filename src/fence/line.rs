//! Text the fence writes without allocating: a fixed buffer that `write!` fills and that
//! cuts what does not fit (on a character boundary) instead of failing.

use std::fmt;

/// A line of at most `N` bytes, built on the stack.
pub struct Line<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Default for Line<N> {
    fn default() -> Self {
        Line {
            bytes: [0; N],
            len: 0,
        }
    }
}

impl<const N: usize> Line<N> {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    pub fn as_str(&self) -> &str {
        // Only whole characters are ever appended.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// Makes the last byte a newline (replacing the last one if the line is full).
    pub fn end_with_newline(&mut self) {
        if self.len == N && N > 0 {
            self.bytes[N - 1] = b'\n';
        } else if N > 0 {
            self.bytes[self.len] = b'\n';
            self.len += 1;
        }
    }
}

impl<const N: usize> fmt::Write for Line<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        let piece = crate::health::cut_text(s, room);
        self.bytes[self.len..self.len + piece.len()].copy_from_slice(piece.as_bytes());
        self.len += piece.len();
        Ok(())
    }
}

impl<const N: usize> fmt::Display for Line<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write;

    #[test]
    fn what_does_not_fit_is_cut_on_a_character_boundary() {
        let mut l = Line::<8>::default();
        let more = "éé€";
        write!(l, "ab{more}").unwrap();
        assert_eq!(l.as_str(), "abéé");
        write!(l, "x").unwrap();
        assert_eq!(l.as_str(), "abééx");
        l.end_with_newline();
        assert_eq!(l.as_bytes(), "abééx\n".as_bytes());
        let mut full = Line::<3>::default();
        write!(full, "abcdef").unwrap();
        full.end_with_newline();
        assert_eq!(full.as_bytes(), b"ab\n");
    }
}
