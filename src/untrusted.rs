//! Text that came from outside (signed by FreedomPay, or written into
//! `orders` by an internal service) on its way to an operator's terminal or a
//! log line: [`escape`] is the one rule by which `history`'s text mode prints
//! such values. HTML pages escape with their template engine instead
//! (`console::pages`); JSON output escapes by being JSON.

use std::borrow::Cow;

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
