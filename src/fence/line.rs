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

    /// Ends the line with a newline; a full line gives up its last character for it.
    pub fn end_with_newline(&mut self) {
        if N == 0 {
            return;
        }
        if self.len == N {
            // Step back over the whole last character, so no character is cut in two.
            let mut end = N - 1;
            while end > 0 && (self.bytes[end] & 0xC0) == 0x80 {
                end -= 1;
            }
            self.len = end;
        }
        self.bytes[self.len] = b'\n';
        self.len += 1;
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
        // A full line ending in a two-byte character gives up the whole character.
        let mut wide = Line::<5>::default();
        write!(wide, "abcé").unwrap();
        wide.end_with_newline();
        assert_eq!(wide.as_str(), "abc\n");
    }
}
