//! Showing byte strings in reports: escaped on one line, long values truncated with their size.
//!
//! Escaping: valid UTF-8 is kept except `"` → `\"`, `\` → `\\`, newline → `\n`, tab → `\t`,
//! carriage return → `\r`, NUL → `\0` and other control characters → `\u{..}`; bytes that are
//! not UTF-8 are shown as `\xNN`. So every shown value fits on one line.

use std::fmt::Write as _;

/// How many bytes of a value a report's detail lines show.
pub(crate) const DETAIL_LIMIT: usize = 512;
/// How many bytes of a value the one-line summary shows.
pub(crate) const SUMMARY_LIMIT: usize = 60;

/// `bytes` escaped (see the module docs), without quotes.
pub(crate) fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\0' => out.push_str("\\0"),
                c if c.is_control() => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// `bytes` quoted in full: `"..."`.
pub(crate) fn quote(bytes: &[u8]) -> String {
    format!("\"{}\"", escape(bytes))
}

/// The first `limit` bytes of `bytes`, quoted; when truncated: `"abc"… (812 bytes)`.
pub(crate) fn show_head(bytes: &[u8], limit: usize) -> String {
    if bytes.len() <= limit {
        return quote(bytes);
    }
    let mut cut = limit;
    // Do not cut a UTF-8 sequence in two: back off over continuation bytes.
    while cut > 0 && limit - cut < 3 && is_continuation(bytes[cut]) {
        cut -= 1;
    }
    if cut == 0 {
        cut = limit;
    }
    format!("{}… ({} bytes)", quote(&bytes[..cut]), bytes.len())
}

/// The last `limit` bytes of `bytes`, quoted; when truncated: `…"xyz" (812 bytes)`.
pub(crate) fn show_tail(bytes: &[u8], limit: usize) -> String {
    if bytes.len() <= limit {
        return quote(bytes);
    }
    let mut start = bytes.len() - limit;
    // Start on a character boundary: skip at most 3 continuation bytes.
    let first = start;
    while start < bytes.len() && start - first < 3 && is_continuation(bytes[start]) {
        start += 1;
    }
    format!("…{} ({} bytes)", quote(&bytes[start..]), bytes.len())
}

fn is_continuation(b: u8) -> bool {
    b & 0b1100_0000 == 0b1000_0000
}

/// Byte-substring search (`needle` empty → always found).
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Offset of the first byte where `a` and `b` differ (the shorter length if one is a prefix).
pub(crate) fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_quotes_and_invalid_utf8() {
        assert_eq!(
            escape(b"a\"b\\c\nd\te\rf\0g"),
            "a\\\"b\\\\c\\nd\\te\\rf\\0g"
        );
        assert_eq!(escape(b"\x1b[0m"), "\\u{1b}[0m");
        assert_eq!(escape(b"ok\xff\xfe"), "ok\\xff\\xfe");
        assert_eq!(escape("héllo ✓".as_bytes()), "héllo ✓");
        assert_eq!(quote(b"x"), "\"x\"");
    }

    #[test]
    fn head_and_tail_truncate_with_size() {
        assert_eq!(show_head(b"abcdef", 6), "\"abcdef\"");
        assert_eq!(show_head(b"abcdef", 3), "\"abc\"… (6 bytes)");
        assert_eq!(show_tail(b"abcdef", 3), "…\"def\" (6 bytes)");
        assert_eq!(show_tail(b"abcdef", 10), "\"abcdef\"");
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        // "é" is 2 bytes: cutting after 2 bytes of "aé" would split it.
        assert_eq!(show_head("aéb".as_bytes(), 2), "\"a\"… (4 bytes)");
        assert_eq!(show_tail("aéb".as_bytes(), 2), "…\"b\" (4 bytes)");
        // Not UTF-8 at all: cut where asked.
        assert_eq!(
            show_head(b"\x80\x80\x80\x80\x80", 2),
            "\"\\x80\\x80\"… (5 bytes)"
        );
    }

    #[test]
    fn substring_and_difference() {
        assert!(contains(b"hello world", b"o w"));
        assert!(contains(b"abc", b""));
        assert!(!contains(b"ab", b"abc"));
        assert_eq!(first_difference(b"abcd", b"abXd"), 2);
        assert_eq!(first_difference(b"ab", b"abc"), 2);
    }
}
