//! Kannel's configuration files, read as Kannel 1.4.5 reads them, and
//! converted to rapidbox's configuration: `rapidbox import-kannel-conf`.
//!
//! A kannel.conf (or smsbox.conf) is groups of `key = value` lines, a blank
//! line ending each group, with `#` comments, double-quoted values and
//! `include` lines. Reading one takes three steps, one module each:
//!
//! - `lines`: a file's bytes to lines, as Kannel's `expand_file` and
//!   `parse_value` see them (continuations, comments, quotes, escapes);
//! - `read`: files to groups, as `cfg_read` (includes of files and
//!   directories, the first error stops it), bounded in size, files and
//!   depth; [`read`] is the entry point;
//! - `keys`: the groups Kannel 1.4.5 knows and their keys, taken from the
//!   real binary, which `read` checks every group against.
//!
//! Then `convert` makes rapidbox's TOML of a [`KannelConf`]: the smsbox's
//! bearerbox connection, its sendsms port, its sendsms users, and a
//! [`Note`] for everything it does not carry over, with why (`reasons`
//! holds the whys). [`convert`] is the entry point.

mod convert;
pub mod keys;
mod lines;
mod read;
mod reasons;

use std::fmt;
use std::path::PathBuf;

pub use convert::{convert, Conversion, ConvertError, Note};
pub use read::{read, ReadOptions};

/// Where a line is: a file, as opened, and a line number from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A whole configuration: its groups in the order Kannel read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KannelConf {
    pub groups: Vec<Group>,
}

impl KannelConf {
    /// The groups called `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Group> + 'a {
        self.groups.iter().filter(move |group| group.name == name)
    }

    /// The group called `name` that Kannel uses: the last, when a single
    /// group appears more than once.
    pub fn single(&self, name: &str) -> Option<&Group> {
        self.groups.iter().rev().find(|group| group.name == name)
    }
}

/// One group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Its `group` value, one of [`keys::GROUPS`].
    pub name: &'static str,
    /// Its first line.
    pub at: Location,
    /// Its settings but `group`, each key once (the last value Kannel
    /// read), in the order of their first setting.
    pub vars: Vec<Var>,
}

impl Group {
    /// The setting of `key`, if the group has one.
    pub fn get(&self, key: &str) -> Option<&Var> {
        self.vars.iter().find(|var| var.key == key)
    }
}

/// One `key = value` setting, its value as Kannel's `parse_value` left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    pub key: String,
    pub value: String,
    /// The key or value was not UTF-8 and holds U+FFFD in place of the
    /// bytes that were not.
    pub lossy: bool,
    pub at: Location,
}

impl Var {
    /// The value as Kannel's `cfg_get_integer` reads it (C's `strtol` with
    /// base 0: `0x` is hex, a leading `0` octal, text after the number
    /// ignored); `None` when Kannel finds no number and keeps its default.
    pub fn integer(&self) -> Option<i64> {
        let text = self.value.trim_start();
        let (negative, text) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (radix, digits) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) if hex.starts_with(|c: char| c.is_ascii_hexdigit()) => (16, hex),
            _ if text.starts_with('0') => (8, text),
            _ => (10, text),
        };
        let end = digits
            .find(|c: char| !c.is_digit(radix))
            .unwrap_or(digits.len());
        // Out of range: strtol's ERANGE, and Kannel keeps its default.
        let number = i64::from_str_radix(&digits[..end], radix).ok()?;
        Some(if negative { -number } else { number })
    }

    /// The value as Kannel's `cfg_get_bool` reads it: anything but false,
    /// no, off and 0 (in any case) is true.
    pub fn flag(&self) -> bool {
        !["false", "no", "off", "0"]
            .iter()
            .any(|word| self.value.eq_ignore_ascii_case(word))
    }
}

/// Why a configuration could not be read. Each stops the reading, as each
/// stops Kannel at start-up (but the bounds, which Kannel lacks).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}{}: cannot read: {source}", included(.at), .path.display())]
    Io {
        path: PathBuf,
        /// The include line that named it; `None` for the main file.
        at: Option<Location>,
        source: std::io::Error,
    },
    #[error("{}: larger than {limit} bytes; no Kannel configuration is that large", .path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{}more than {limit} files to read", included(.at))]
    TooManyFiles { at: Option<Location>, limit: usize },
    #[error("{}includes nested deeper than {limit}", included(.at))]
    TooDeep { at: Option<Location>, limit: usize },
    #[error("{at}: {} is included a second time; Kannel refuses that too (\"Recursive include\")", .path.display())]
    IncludedTwice { at: Location, path: PathBuf },
    #[error("{}{} includes itself", included(.at), .path.display())]
    IncludeLoop { at: Option<Location>, path: PathBuf },
    #[error(
        "{at}: Kannel 1.4.5 takes any line containing \"include\" for an include, this \
         `{key} = ...` line too, and so refuses the file: {source}"
    )]
    IncludeQuirk {
        at: Location,
        key: String,
        source: Box<ReadError>,
    },
    #[error("{at}: an equals sign ('=') is missing")]
    MissingEquals { at: Location },
    #[error("{at}: the group has no `group = ...` line (a blank line ends a group)")]
    NoGroupKey { at: Location },
    #[error("{at}: {name:?} is no group Kannel 1.4.5 knows (names are case-sensitive)")]
    UnknownGroup { at: Location, name: String },
    #[error("{at}: group {group} may not contain {key:?}: Kannel 1.4.5 refuses it")]
    UnknownKey {
        at: Location,
        group: &'static str,
        key: String,
    },
}

/// "FILE:LINE: " of the include line that led to an error, if any.
fn included(at: &Option<Location>) -> String {
    at.as_ref()
        .map(|at| format!("{at}: included here: "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
