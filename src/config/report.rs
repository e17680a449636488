//! What is wrong with a configuration, and where: key paths, problems,
//! reports and the error `load` returns.

use std::fmt;

/// Where a problem is: a TOML key path such as `kannel.port`,
/// `apps.keyword.rules.help` or `router.apps[2]`. Keys that are not bare
/// TOML keys are quoted: `apps.menu.rules."two words"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyPath(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Segment {
    Key(String),
    Index(usize),
}

impl KeyPath {
    /// The whole document.
    pub fn root() -> KeyPath {
        KeyPath(Vec::new())
    }

    /// This path with `key` added.
    pub fn key(&self, key: &str) -> KeyPath {
        let mut path = self.clone();
        path.0.push(Segment::Key(key.to_owned()));
        path
    }

    /// This path with an array index added.
    pub fn index(&self, index: usize) -> KeyPath {
        let mut path = self.clone();
        path.0.push(Segment::Index(index));
        path
    }

    /// This path followed by `tail`.
    pub(crate) fn join(&self, tail: &KeyPath) -> KeyPath {
        let mut path = self.clone();
        path.0.extend(tail.0.iter().cloned());
        path
    }

    /// The path serde_path_to_error tracked for a deserialization error.
    pub(crate) fn from_tracked(tracked: &serde_path_to_error::Path) -> KeyPath {
        let mut path = KeyPath::root();
        for segment in tracked.iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => path.0.push(Segment::Index(*index)),
                serde_path_to_error::Segment::Map { key }
                | serde_path_to_error::Segment::Enum { variant: key } => {
                    path.0.push(Segment::Key(key.clone()))
                }
                serde_path_to_error::Segment::Unknown => path.0.push(Segment::Key("?".to_owned())),
            }
        }
        path
    }

    /// The path serde_ignored reports for a key nothing used.
    pub(crate) fn from_ignored(ignored: &serde_ignored::Path<'_>) -> KeyPath {
        let mut path = match ignored {
            serde_ignored::Path::Root => return KeyPath::root(),
            serde_ignored::Path::Seq { parent, .. }
            | serde_ignored::Path::Map { parent, .. }
            | serde_ignored::Path::Some { parent }
            | serde_ignored::Path::NewtypeStruct { parent }
            | serde_ignored::Path::NewtypeVariant { parent } => KeyPath::from_ignored(parent),
        };
        match ignored {
            serde_ignored::Path::Seq { index, .. } => path.0.push(Segment::Index(*index)),
            serde_ignored::Path::Map { key, .. } => path.0.push(Segment::Key(key.clone())),
            _ => {}
        }
        path
    }

    /// Takes the value this path names out of `root`, so the next attempt
    /// to deserialize sees its default instead. Arrays cannot lose one
    /// element without renumbering the rest, so the innermost *key* on the
    /// path goes, with its whole value. Returns false when the path names
    /// nothing removable.
    pub(crate) fn remove_from(&self, root: &mut toml::Value) -> bool {
        let Some(last_key) = self.0.iter().rposition(|s| matches!(s, Segment::Key(_))) else {
            return false;
        };
        let mut value = root;
        for segment in &self.0[..last_key] {
            let next = match (segment, value) {
                (Segment::Key(key), toml::Value::Table(table)) => table.get_mut(key),
                (Segment::Index(index), toml::Value::Array(array)) => array.get_mut(*index),
                _ => None,
            };
            match next {
                Some(next) => value = next,
                None => return false,
            }
        }
        match (&self.0[last_key], value) {
            (Segment::Key(key), toml::Value::Table(table)) => table.remove(key).is_some(),
            _ => false,
        }
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(index) => write!(f, "[{index}]")?,
                Segment::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let bare = !key.is_empty()
                        && key
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare {
                        f.write_str(key)?;
                    } else {
                        write!(f, "{key:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// One thing wrong with (or worth knowing about) a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: a key path such as `kannel.port`; empty for the document as
    /// a whole (a TOML syntax error, an unreadable file).
    pub key: String,
    /// What, and what to do about it.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(key: &KeyPath, message: impl Into<String>) -> Problem {
        Problem {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// Everything `check` found: errors stop rapidbox from starting, warnings
/// do not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

impl Report {
    /// No errors (there may be warnings).
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// Sorts both lists by key path, so the problems of one section are
    /// read together; the order within a key is kept.
    pub(crate) fn sort(&mut self) {
        self.errors.sort_by(|a, b| a.key.cmp(&b.key));
        self.warnings.sort_by(|a, b| a.key.cmp(&b.key));
    }
}

/// Why a configuration did not load: every error found, not just the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ConfigErrors {
    /// The file, or `<string>` for text given directly.
    pub origin: String,
    /// At least one.
    pub errors: Vec<Problem>,
}

impl ConfigErrors {
    fn describe(&self) -> String {
        let mut text = match self.errors.len() {
            1 => format!("{}: 1 error", self.origin),
            n => format!("{}: {n} errors", self.origin),
        };
        for problem in &self.errors {
            text.push_str("\n  ");
            text.push_str(&problem.to_string().replace('\n', "\n    "));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_read_as_toml_keys() {
        let path = KeyPath::root()
            .key("apps")
            .key("menu")
            .key("rules")
            .key("help");
        assert_eq!(path.to_string(), "apps.menu.rules.help");
        assert_eq!(
            KeyPath::root()
                .key("router")
                .key("apps")
                .index(2)
                .to_string(),
            "router.apps[2]"
        );
        assert_eq!(
            KeyPath::root()
                .key("rules")
                .key("two words")
                .key("")
                .to_string(),
            "rules.\"two words\".\"\""
        );
        assert_eq!(KeyPath::root().to_string(), "");
    }

    #[test]
    fn removing_takes_out_the_innermost_key() {
        let mut doc: toml::Value = toml::from_str("[a]\nb = [1, {c = 2}]\nd = 3").unwrap();
        let path = KeyPath::root().key("a").key("b").index(1).key("c");
        assert!(path.remove_from(&mut doc));
        assert_eq!(doc["a"]["b"][1].as_table().map(|t| t.len()), Some(0));
        // An index as the last step takes out the whole array.
        assert!(KeyPath::root()
            .key("a")
            .key("b")
            .index(0)
            .remove_from(&mut doc));
        assert!(doc["a"].get("b").is_none());
        assert!(!KeyPath::root().key("a").key("zz").remove_from(&mut doc));
        assert!(!KeyPath::root().remove_from(&mut doc));
    }

    #[test]
    fn errors_list_every_problem() {
        let errors = ConfigErrors {
            origin: "rapidbox.toml".into(),
            errors: vec![
                Problem::new(&KeyPath::root().key("kannel").key("port"), "bad"),
                Problem::new(&KeyPath::root(), "line one\nline two"),
            ],
        };
        assert_eq!(
            errors.to_string(),
            "rapidbox.toml: 2 errors\n  kannel.port: bad\n  line one\n    line two"
        );
    }
}
