//! Compiling a text with escapes into literal runs and fields, strictly
//! (configuration) or by smsbox's rules (a `dlr-url` given at run time).

use super::table::{self, Escape};

/// A text with escapes, compiled: rendering is one pass with no parsing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pattern {
    pub(crate) parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    Literal(String),
    /// The escape, from the table: what to show and how smsbox writes it.
    Field(&'static Escape),
    /// `%#group#key#`: one value of the meta-data.
    Meta {
        group: String,
        key: String,
    },
}

/// Why a text does not compile strictly. Positions count characters from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EscapeError {
    #[error(
        "unknown escape `%{escape}` at character {position}; the escapes are {}, %#group#key# and %% for a percent sign",
        table::letter_list()
    )]
    UnknownEscape { escape: char, position: usize },
    #[error("a lone `%` ends the text (character {position}); write %% for a percent sign")]
    TrailingPercent { position: usize },
    #[error(
        "`%#` at character {position} is not closed: write %#group#key# for a meta-data value"
    )]
    UnclosedMeta { position: usize },
}

impl Pattern {
    /// Compiles `source` for the configuration: an unknown escape, a lone
    /// `%` at the end or an unclosed `%#` is an error, so that
    /// `check-config` catches a typo before a customer does.
    pub fn compile(source: &str) -> Result<Pattern, EscapeError> {
        Pattern::build(source, true)
    }

    /// Compiles `source` as smsbox reads a pattern at run time
    /// (`urltrans_fill_escape_codes`): never fails. An unknown escape and
    /// a `%` at the end stay as written; `%#group` without a second `#`
    /// loses its `%#`, and `%#group#key` without a third loses everything
    /// up to three characters past the second `#` (where smsbox 1.4.5
    /// would loop forever if the text ends sooner, this stops at the end).
    pub fn lenient(source: &str) -> Pattern {
        // Only strict building fails.
        Pattern::build(source, false).unwrap_or_default()
    }

    fn build(source: &str, strict: bool) -> Result<Pattern, EscapeError> {
        let chars: Vec<char> = source.chars().collect();
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        while let Some(&c) = chars.get(i) {
            let position = i + 1;
            if c != '%' {
                literal.push(c);
                i += 1;
                continue;
            }
            let Some(&escape) = chars.get(i + 1) else {
                if strict {
                    return Err(EscapeError::TrailingPercent { position });
                }
                literal.push('%');
                break;
            };
            let part = match escape {
                '%' => {
                    literal.push('%');
                    i += 2;
                    continue;
                }
                '#' => match meta(&chars, i) {
                    Meta::Closed { group, key, next } => {
                        i = next;
                        Part::Meta { group, key }
                    }
                    _ if strict => return Err(EscapeError::UnclosedMeta { position }),
                    Meta::Skip { next } => {
                        i = next;
                        continue;
                    }
                },
                letter => match table::lookup(letter) {
                    Some(e) => {
                        i += 2;
                        Part::Field(e)
                    }
                    None if strict => return Err(EscapeError::UnknownEscape { escape, position }),
                    None => {
                        literal.push('%');
                        literal.push(letter);
                        i += 2;
                        continue;
                    }
                },
            };
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(part);
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Pattern { parts })
    }
}

enum Meta {
    Closed {
        group: String,
        key: String,
        next: usize,
    },
    /// Not closed: where smsbox goes on reading.
    Skip { next: usize },
}

/// Reads `%#group#key#` starting at the `%` at `at`, as smsbox does.
fn meta(chars: &[char], at: usize) -> Meta {
    let find = |from: usize| {
        chars
            .get(from..)
            .and_then(|rest| rest.iter().position(|&c| c == '#'))
            .map(|offset| from + offset)
    };
    let Some(second) = find(at + 2) else {
        return Meta::Skip { next: at + 2 };
    };
    let Some(third) = find(second + 1) else {
        return Meta::Skip {
            next: (second + 4).min(chars.len()),
        };
    };
    let text = |from: usize, to: usize| chars[from..to].iter().collect();
    Meta::Closed {
        group: text(at + 2, second),
        key: text(second + 1, third),
        next: third + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lenient_literal(source: &str) -> String {
        let parts = Pattern::lenient(source).parts;
        parts
            .iter()
            .map(|p| match p {
                Part::Literal(s) => s.clone(),
                Part::Field(e) => format!("<{:?}>", e.field),
                Part::Meta { group, key } => format!("<{group}:{key}>"),
            })
            .collect()
    }

    #[test]
    fn strict_compiling_refuses_what_smsbox_would_pass_through() {
        assert_eq!(
            Pattern::compile("Hi %x!"),
            Err(EscapeError::UnknownEscape {
                escape: 'x',
                position: 4
            })
        );
        assert_eq!(
            Pattern::compile("ça %a %é"),
            Err(EscapeError::UnknownEscape {
                escape: 'é',
                position: 7
            })
        );
        assert_eq!(
            Pattern::compile("50%"),
            Err(EscapeError::TrailingPercent { position: 3 })
        );
        assert_eq!(
            Pattern::compile("a%#smpp#k"),
            Err(EscapeError::UnclosedMeta { position: 2 })
        );
        assert_eq!(
            Pattern::compile("%#smpp"),
            Err(EscapeError::UnclosedMeta { position: 1 })
        );
        let message = Pattern::compile("%z").unwrap_err().to_string();
        assert!(message.contains("%k %s %S %r %a %b"), "{message}");
    }

    #[test]
    fn lenient_compiling_follows_smsbox() {
        assert_eq!(lenient_literal("a%x%%b%"), "a%x%b%");
        assert_eq!(lenient_literal("%k%#smpp#id#."), "<Keyword><smpp:id>.");
        // No second `#`: only the `%#` goes.
        assert_eq!(lenient_literal("x%#smpp"), "xsmpp");
        // No third: up to three characters past the second `#` go.
        assert_eq!(lenient_literal("x%#g#abcdef"), "xdef");
        assert_eq!(lenient_literal("x%#g#a"), "x");
    }

    #[test]
    fn strict_and_lenient_agree_on_good_text() {
        for source in ["", "plain", "%k-%s %S|%%|%#g#k#|%u%O"] {
            assert_eq!(Pattern::compile(source).unwrap(), Pattern::lenient(source));
        }
    }
}
