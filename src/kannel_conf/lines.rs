//! One file's bytes to the lines Kannel sees in it, as `expand_file` and
//! `cfg_read` do it in gwlib/cfg.c.
//!
//! - The file is split on `\n`. A line ending in `\` goes on with the next
//!   one (the `\` dropped), unless it ends in `\\`, which ends the line with
//!   one `\`.
//! - A line, once stripped of white space at both ends, is blank (the end
//!   of a group), a comment (starts with `#`; a `#` later in a line is part
//!   of it), an include (contains `include` anywhere, even in a value:
//!   Kannel 1.4.5 takes `get-url = "http://x/include"` for an include), or a
//!   `key = value` setting; anything else lacks its `=`.
//! - A value in double quotes loses them, and inside them `\\` and `\"`
//!   become `\` and `"`; every other backslash stays (`parse_value`).
//!
//! Kannel reads bytes; rapidbox's configuration is UTF-8 text. Keys and
//! values that are not UTF-8 are decoded lossily and flagged, so the
//! conversion can refuse to carry them rather than change them silently.

/// One line as Kannel sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The number of its first physical line in the file, from 1.
    pub number: u32,
    pub kind: LineKind,
}

/// What a line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineKind {
    /// Empty once stripped: ends the group being read.
    Blank,
    /// Starts with `#`.
    Comment,
    /// No `=` anywhere: Kannel stops with "An equals sign ('=') is missing".
    MissingEquals,
    /// A line containing `include`: the file or directory named after `=`.
    /// `key` is what stands before the `=`, `include` unless Kannel's
    /// quirk made an include of another setting.
    Include { key: Text, target: Text },
    /// `key = value`.
    Setting { key: Text, value: Text },
}

/// A key or value, as UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub text: String,
    /// Whether the bytes were not UTF-8 and `text` holds U+FFFD in their
    /// place.
    pub lossy: bool,
}

impl Text {
    fn from_bytes(bytes: &[u8]) -> Text {
        match std::str::from_utf8(bytes) {
            Ok(text) => Text {
                text: text.to_owned(),
                lossy: false,
            },
            Err(_) => Text {
                text: String::from_utf8_lossy(bytes).into_owned(),
                lossy: true,
            },
        }
    }
}

/// Every line of a file's contents, continuations joined.
pub fn split(bytes: &[u8]) -> Vec<Line> {
    let mut lines = Vec::new();
    // The logical line being built: its first line's number and its bytes.
    let mut pending: Option<(u32, Vec<u8>)> = None;
    let mut number: u32 = 0;
    for physical in bytes.split(|&b| b == b'\n') {
        number = number.saturating_add(1);
        let (first, mut joined) = pending.take().unwrap_or((number, Vec::new()));
        match physical.strip_suffix(b"\\") {
            Some(rest) => {
                joined.extend_from_slice(rest);
                if rest.ends_with(b"\\") {
                    lines.push(classify(first, &joined));
                } else {
                    pending = Some((first, joined));
                }
            }
            None => {
                joined.extend_from_slice(physical);
                lines.push(classify(first, &joined));
            }
        }
    }
    // A continuation at the very end of the file ends with the file.
    if let Some((first, joined)) = pending {
        lines.push(classify(first, &joined));
    }
    lines
}

fn classify(number: u32, raw: &[u8]) -> Line {
    let line = strip(raw);
    let kind = if line.is_empty() {
        LineKind::Blank
    } else if line[0] == b'#' {
        LineKind::Comment
    } else {
        match line.iter().position(|&b| b == b'=') {
            None => LineKind::MissingEquals,
            Some(equals) => {
                let key = Text::from_bytes(strip(&line[..equals]));
                let value = Text::from_bytes(&parse_value(&line[equals + 1..]));
                if contains(line, b"include") {
                    LineKind::Include { key, target: value }
                } else {
                    LineKind::Setting { key, value }
                }
            }
        }
    };
    Line { number, kind }
}

/// `bytes` without white space (C's isspace) at either end, as
/// `octstr_strip_blanks`.
fn strip(bytes: &[u8]) -> &[u8] {
    let blank = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// A value as Kannel's `parse_value` leaves it: stripped, and when it both
/// starts and ends with `"`, unquoted and unescaped.
pub fn parse_value(raw: &[u8]) -> Vec<u8> {
    let value = strip(raw);
    let inner = match value {
        // A lone `"` starts and ends with a quote: Kannel makes it empty.
        [b'"'] => return Vec::new(),
        [b'"', inner @ .., b'"'] => inner,
        _ => return value.to_vec(),
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut bytes = inner.iter();
    while let Some(&b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(&escaped @ (b'\\' | b'"')) => out.push(escaped),
            Some(&other) => out.extend_from_slice(&[b'\\', other]),
            // A trailing backslash stays.
            None => out.push(b'\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &[u8]) -> Vec<(u32, LineKind)> {
        split(text)
            .into_iter()
            .map(|line| (line.number, line.kind))
            .collect()
    }

    fn text(text: &str) -> Text {
        Text::from_bytes(text.as_bytes())
    }

    fn setting(key: &str, value: &str) -> LineKind {
        LineKind::Setting {
            key: text(key),
            value: text(value),
        }
    }

    #[test]
    fn blank_comment_setting_and_missing_equals_lines() {
        assert_eq!(
            kinds(b"  # note = 1\n\t\ngroup = smsbox\r\n  a-key=  spaced value # not a comment \nbare\n"),
            vec![
                (1, LineKind::Comment),
                (2, LineKind::Blank),
                (3, setting("group", "smsbox")),
                (4, setting("a-key", "spaced value # not a comment")),
                (5, LineKind::MissingEquals),
                (6, LineKind::Blank),
            ]
        );
    }

    #[test]
    fn quotes_and_their_escapes_follow_parse_value() {
        // Checked against smsbox 1.4.5: global-sender = "a\"b\\c\d #x\n"
        // logs `a"b\c\d #x\n`.
        assert_eq!(parse_value(br#" "a\"b\\c\d #x\n" "#), br#"a"b\c\d #x\n"#);
        assert_eq!(parse_value(br#""""#), b"");
        assert_eq!(parse_value(br#"""#), b"");
        // `\"` at the end: the quote closes the value, the backslash stays.
        assert_eq!(parse_value(br#""trailing\""#), br#"trailing\"#);
        assert_eq!(parse_value(br#""in \"quotes\"""#), br#"in "quotes""#);
        assert_eq!(parse_value(br#"end\"#), br#"end\"#);
        // Quoted only when both ends are quotes.
        assert_eq!(parse_value(br#""open"#), br#""open"#);
        assert_eq!(parse_value(br#"a "b""#), br#"a "b""#);
    }

    #[test]
    fn a_trailing_backslash_continues_the_line_and_a_double_one_ends_it() {
        // Checked against smsbox 1.4.5: these lines make global-sender
        // `"a\"b\\c\d #x  more\`, unquoted since it does not end in `"`.
        let lines = kinds(b"global-sender = \"a\\\"b\\\\c\\d #x  \\\nmore\\\\\nnext = 1");
        assert_eq!(
            lines,
            vec![
                (1, setting("global-sender", "\"a\\\"b\\\\c\\d #x  more\\")),
                (3, setting("next", "1")),
            ]
        );
        // At the end of the file a continuation just ends.
        assert_eq!(kinds(b"a = b\\"), vec![(1, setting("a", "b"))]);
    }

    #[test]
    fn any_line_containing_include_is_an_include() {
        // Checked against smsbox 1.4.5: it tried to include `http://x/include`.
        assert_eq!(
            kinds(b"include = \"sub/other.conf\"\nget-url = \"http://x/include\""),
            vec![
                (
                    1,
                    LineKind::Include {
                        key: text("include"),
                        target: text("sub/other.conf")
                    }
                ),
                (
                    2,
                    LineKind::Include {
                        key: text("get-url"),
                        target: text("http://x/include")
                    }
                ),
            ]
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_flagged_not_fatal() {
        let lines = split(b"text = caf\xe9\nk\xff = v\n\xfe\xfe");
        let LineKind::Setting { value, .. } = &lines[0].kind else {
            panic!("not a setting: {:?}", lines[0]);
        };
        assert!(value.lossy);
        assert_eq!(value.text, "caf\u{fffd}");
        let LineKind::Setting { key, value } = &lines[1].kind else {
            panic!("not a setting: {:?}", lines[1]);
        };
        assert!(key.lossy && !value.lossy);
        assert_eq!(lines[2].kind, LineKind::MissingEquals);
    }
}
