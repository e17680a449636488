//! An HTML answer as SMS text, as Kannel 1.4.5's `html_to_sms` (gw/html.c)
//! makes it: tags and comments out, entities in, blanks shrunk and stripped.

use super::select::is_c_space;

/// The HTML 3.2 Latin-1 entities, in code point order from 160 (`&nbsp;`,
/// which Kannel turns into a plain space) to 255.
const LATIN1: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf",
    "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro",
    "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute",
    "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute",
    "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute",
    "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig", "ccedil",
    "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde",
    "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave", "uacute", "ucirc",
    "uuml", "yacute", "thorn", "yuml",
];

/// The text of an HTML page.
///
/// Kannel's quirks, kept: a comment is skipped up to its `-->`, which
/// stays in the text; a quoted attribute value may hold `>`; `&#N;` above
/// 255 vanishes; an unknown entity keeps its `&`; a run of exactly two
/// blanks is left as it is (`octstr_shrink_blanks` only shrinks three or
/// more).
pub fn html_to_sms(html: &str) -> String {
    let c: Vec<char> = html.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '<' if c[i..].starts_with(&['<', '!', '-', '-']) => {
                i += 4;
                i = find(&c, &['-', '-', '>'], i).unwrap_or(c.len());
            }
            '<' => i = skip_tag(&c, i + 1),
            '&' => i = entity(&c, i, &mut out),
            ch => {
                out.push(ch);
                i += 1;
            }
        }
    }
    strip(&shrink(&out))
}

fn find(c: &[char], needle: &[char], from: usize) -> Option<usize> {
    (from..c.len()).find(|&i| c[i..].starts_with(needle))
}

/// Past a tag's `>`, quoted values skipped whole.
fn skip_tag(c: &[char], mut i: usize) -> usize {
    while i < c.len() && c[i] != '>' {
        if c[i] == '"' || c[i] == '\'' {
            let quote = c[i];
            i = (i + 1..c.len())
                .find(|&j| c[j] == quote)
                .map_or(c.len(), |j| j + 1);
        } else {
            i += 1;
        }
    }
    if i < c.len() {
        i + 1
    } else {
        i
    }
}

/// `convert_html_entity`: the entity at `i` into `out`; returns where the
/// text goes on.
fn entity(c: &[char], i: usize, out: &mut String) -> usize {
    if c.get(i + 1) == Some(&'#') {
        let hex = matches!(c.get(i + 2), Some('x' | 'X'));
        let start = if hex { i + 3 } else { i + 2 };
        let radix = if hex { 16 } else { 10 };
        let end = (start..c.len())
            .find(|&j| !c[j].is_digit(radix))
            .unwrap_or(c.len());
        let digits: String = c[start..end].iter().collect();
        return match i64::from_str_radix(&digits, radix) {
            Ok(code) => {
                if let Some(ch) = u8::try_from(code).ok().map(char::from) {
                    out.push(ch);
                }
                // Kannel resumes one past the number's end, then skips a `;`.
                let next = end + 1;
                if c.get(next) == Some(&';') {
                    next + 1
                } else {
                    next
                }
            }
            Err(_) => {
                out.push('&');
                i + 1
            }
        };
    }
    let rest: String = c[i + 1..c.len().min(i + 10)].iter().collect();
    let named = [("amp", '&'), ("lt", '<'), ("gt", '>')]
        .into_iter()
        .chain(
            LATIN1
                .iter()
                .zip(160u8..=255)
                .map(|(n, code)| (*n, if code == 160 { ' ' } else { char::from(code) })),
        )
        .find(|(name, _)| rest.starts_with(name) && rest[name.len()..].starts_with(';'));
    match named {
        Some((name, ch)) => {
            out.push(ch);
            i + name.len() + 2
        }
        None => {
            out.push('&');
            i + 1
        }
    }
}

/// `octstr_shrink_blanks`: each blank becomes a space, and the blanks after
/// it go when there are two or more of them.
fn shrink(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < c.len() {
        if is_c_space(c[i]) {
            out.push(' ');
            let run = c[i + 1..].iter().take_while(|&&ch| is_c_space(ch)).count();
            if run > 1 {
                i += 1 + run;
            } else {
                // One blank after it stays as it is, unconverted.
                out.extend(c.get(i + 1).filter(|_| run == 1));
                i += 1 + run;
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// `octstr_strip_blanks`.
fn strip(text: &str) -> String {
    text.trim_matches(is_c_space).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_go_and_entities_come_in() {
        assert_eq!(
            html_to_sms(
                "<html><body a='x>y'>Caf&eacute; &amp; &#65;&#x42; &lt;ok&gt;</body></html>"
            ),
            "Café & AB <ok>"
        );
    }

    #[test]
    fn kannel_quirks_are_kept() {
        assert_eq!(html_to_sms("a<!-- hidden -->b"), "a-->b", "the --> stays");
        assert_eq!(html_to_sms("&bogus; &#300;x"), "&bogus; x");
        assert_eq!(html_to_sms("a  b"), "a  b", "two blanks stay");
        assert_eq!(html_to_sms("a \t\n b"), "a b", "more shrink to one");
        assert_eq!(html_to_sms(" \n a\tb \n"), "a b");
        assert_eq!(html_to_sms("x&nbsp;y"), "x y");
    }
}
