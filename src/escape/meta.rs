//! Reading one value out of Kannel's meta-data, for `%#group#key#`.
//!
//! Kannel packs meta-data as `?group?key=value&key=value&?group?...`, each
//! part URL-encoded (gw/meta_data.c). [`value`] follows
//! `meta_data_get_value`: the parts are read by `meta_data_unpack`'s rules
//! (a text it cannot read has no values at all), the first group whose name
//! matches ignoring ASCII case is searched, and within it the last value
//! given for the key, compared exactly, is the answer.

use super::encode::url_decode;

/// The value of `key` in `group` of the packed `meta_data`, decoded; `None`
/// when it has none.
pub(crate) fn value(meta_data: &[u8], group: &[u8], key: &[u8]) -> Option<Vec<u8>> {
    let groups = unpack(meta_data)?;
    let (_, values) = groups
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(group))?;
    values
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

/// What a part being read is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Group,
    Key,
    Value,
}

type Groups = Vec<(Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>)>;

/// `meta_data_unpack`'s state machine: the groups and their keys and
/// values in order, or `None` where Kannel fails on an unexpected `?`, `=`
/// or `&` (or finds no group).
fn unpack(data: &[u8]) -> Option<Groups> {
    let mut groups: Groups = Vec::new();
    let mut start: Option<usize> = None;
    let mut end: Option<usize> = None;
    let mut kind: Option<Kind> = None;
    let mut next: Option<Kind> = None;
    let mut key: Option<Vec<u8>> = None;
    // Kannel walks the C string up to and including its terminating NUL.
    for pos in 0..=data.len() {
        match data.get(pos).copied().unwrap_or(0) {
            b'?' => {
                if start.is_none() {
                    start = Some(pos);
                    kind = Some(Kind::Group);
                } else if kind == Some(Kind::Group) {
                    end = Some(pos);
                    next = Some(Kind::Key);
                } else if kind == Some(Kind::Value) && key.is_some() {
                    end = Some(pos);
                    next = Some(Kind::Group);
                } else if key.is_none() {
                    start = Some(pos);
                    kind = Some(Kind::Group);
                } else {
                    return None;
                }
            }
            b'=' => {
                if kind == Some(Kind::Key) && !groups.is_empty() && key.is_none() {
                    end = Some(pos);
                    next = Some(Kind::Value);
                } else {
                    return None;
                }
            }
            b'&' => {
                if kind == Some(Kind::Value) && !groups.is_empty() && key.is_some() {
                    end = Some(pos);
                    next = Some(Kind::Key);
                } else if kind == Some(Kind::Key) && key.is_none() {
                    start = Some(pos);
                } else {
                    return None;
                }
            }
            0 if kind == Some(Kind::Value) => end = Some(pos),
            _ => {}
        }
        let (Some(from), Some(to)) = (start, end) else {
            continue;
        };
        let part = url_decode(data.get(from + 1..to).unwrap_or_default());
        match kind {
            Some(Kind::Group) => groups.push((part, Vec::new())),
            Some(Kind::Key) => key = Some(part),
            Some(Kind::Value) => {
                if let (Some(k), Some((_, values))) = (key.take(), groups.last_mut()) {
                    values.push((k, part));
                }
            }
            None => {}
        }
        kind = next.take();
        start = Some(to);
        end = None;
    }
    (!groups.is_empty()).then_some(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(meta: &str, group: &str, key: &str) -> Option<String> {
        value(meta.as_bytes(), group.as_bytes(), key.as_bytes())
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    #[test]
    fn values_are_found_by_group_ignoring_case_and_key_exactly() {
        let meta = "?smpp?a=1&b=x+y%26z&?http?a=2&";
        assert_eq!(get(meta, "smpp", "a").as_deref(), Some("1"));
        assert_eq!(get(meta, "SMPP", "b").as_deref(), Some("x y&z"));
        assert_eq!(get(meta, "http", "a").as_deref(), Some("2"));
        assert_eq!(get(meta, "smpp", "A"), None);
        assert_eq!(get(meta, "other", "a"), None);
    }

    #[test]
    fn the_last_value_of_a_key_wins_and_the_end_closes_a_value() {
        assert_eq!(get("?g?k=1&k=2", "g", "k").as_deref(), Some("2"));
        assert_eq!(get("?g?k=", "g", "k").as_deref(), Some(""));
    }

    #[test]
    fn unreadable_meta_data_has_no_values() {
        // Kannel's unpack fails on these and returns nothing.
        assert_eq!(get("?g?k=1=2&", "g", "k"), None);
        assert_eq!(get("g=1", "g", "k"), None);
        assert_eq!(get("", "g", "k"), None);
        assert_eq!(get("&?g?k=1", "g", "k"), None);
    }
}
