//! Text that came from outside (signed by FreedomPay, or written into
//! `orders` by an internal service) on its way to an operator's terminal or a
//! log line: [`escape`] is the one rule by which `history`'s text mode and the
//! service's log lines print such values, and [`Untrusted`] applies it to a
//! log field with a length cap. HTML pages escape with their template engine
//! instead (`console::pages`); JSON output escapes by being JSON.

use std::borrow::Cow;
use std::fmt;

/// The longest part of one value a log line repeats, in characters.
pub const LOG_VALUE_CHARS: usize = 256;

/// Whether `c` is printed as an escape: C0 and C1 controls and DEL (a
/// terminal obeys them: cursor moves, erased lines, hidden text, OSC 52
/// writes the clipboard, CR/LF start a new log line), the bidirectional
/// marks, embeddings, overrides and isolates (they reorder what is shown, so
/// "no" can read "on"), the line and paragraph separators, and the
/// backslash itself (so that a stored `\u{1b}` cannot pass for an escape).
fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\\'
    )
}

/// `text` with every character of [`needs_escape`] written as `\u{1b}`
/// (the backslash as `\\`); borrowed when nothing needs escaping.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A value from outside as a log field (`%Untrusted(id)`): [`escape`]d, and
/// cut after [`LOG_VALUE_CHARS`] characters with `…` and its whole length in
/// bytes, so that one long id cannot fill the log line after line.
#[derive(Clone, Copy)]
pub struct Untrusted<'a>(pub &'a str);

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(LOG_VALUE_CHARS) {
            None => f.write_str(&escape(self.0)),
            Some((cut, _)) => write!(
                f,
                "{}…({} bytes)",
                escape(self.0.get(..cut).unwrap_or_default()),
                self.0.len()
            ),
        }
    }
}

impl fmt::Debug for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
