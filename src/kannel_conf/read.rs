//! Files to groups: Kannel's `cfg_read` (gwlib/cfg.c), includes and all,
//! with bounds Kannel does not have.
//!
//! - An include's lines take the place of the include line, and a blank
//!   line follows them: the group before the include goes on into the
//!   included file, and the included file's last group ends with it.
//! - A relative include path is relative to the directory Kannel runs in,
//!   not to the including file (Kannel opens the path as written; checked
//!   with smsbox 1.4.5), so the reader takes that directory as
//!   [`ReadOptions::cwd`].
//! - An include of a directory includes every entry in it that is not a
//!   directory, dot files and backups too, as Kannel does. Kannel takes
//!   them in `readdir` order; the reader sorts them by name.
//! - Kannel remembers every name it included, as written, and refuses to
//!   include the same name again ("Recursive include"), even when it is not
//!   a loop. The reader refuses the same, and also a real loop written
//!   under another name, where Kannel recursed until it ran out of memory.
//! - A group must have a `group` key naming a group Kannel 1.4.5 knows,
//!   and only keys that group may hold ([`keys`](super::keys)); the first
//!   problem stops the reading, as in Kannel.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::lines::{self, LineKind};
use super::{keys, Group, KannelConf, Location, ReadError, Var};

/// Where relative includes start, and the reader's bounds.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The directory Kannel runs in: relative include paths start there.
    pub cwd: PathBuf,
    /// The largest file read (a real kannel.conf is a few KiB).
    pub max_file_bytes: u64,
    /// Files read at most, the main one and every include together.
    pub max_files: usize,
    /// Includes nested at most.
    pub max_depth: usize,
}

impl ReadOptions {
    /// The bounds' defaults, with relative includes starting in `cwd`.
    pub fn new(cwd: impl Into<PathBuf>) -> ReadOptions {
        ReadOptions {
            cwd: cwd.into(),
            max_file_bytes: 1024 * 1024,
            max_files: 256,
            max_depth: 16,
        }
    }
}

/// Reads the configuration in `path` and everything it includes. `path`
/// itself is opened as given (relative to this process's directory, as a
/// command-line argument is); the includes from `options.cwd`.
pub fn read(path: &Path, options: &ReadOptions) -> Result<KannelConf, ReadError> {
    let mut reader = Reader {
        options,
        included: vec![path.to_path_buf()],
        chain: Vec::new(),
        files: 0,
        pending: None,
        groups: Vec::new(),
    };
    reader.file(path, None)?;
    Ok(KannelConf {
        groups: reader.groups,
    })
}

struct Reader<'a> {
    options: &'a ReadOptions,
    /// Every include path as written (and each file of an included
    /// directory), as Kannel's include stack, which never shrinks.
    included: Vec<PathBuf>,
    /// The files being read, outermost first, canonicalized: a loop.
    chain: Vec<PathBuf>,
    files: usize,
    /// The group being read.
    pending: Option<Pending>,
    groups: Vec<Group>,
}

/// A group being read: where it started, and its settings so far.
struct Pending {
    at: Location,
    vars: Vec<Var>,
    /// Where each key is in `vars`: a group may set one key thousands of
    /// times, and each setting must not scan the others.
    index: HashMap<String, usize>,
}

impl Pending {
    fn new(at: Location) -> Pending {
        Pending {
            at,
            vars: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Sets a key; set again, it keeps its last value (Kannel's
    /// `dict_put`) in its first place.
    fn set(&mut self, var: Var) {
        match self.index.get(&var.key) {
            Some(&i) => self.vars[i] = var,
            None => {
                self.index.insert(var.key.clone(), self.vars.len());
                self.vars.push(var);
            }
        }
    }
}

impl Reader<'_> {
    /// Reads one file; `from` is the include line that named it.
    fn file(&mut self, path: &Path, from: Option<&Location>) -> Result<(), ReadError> {
        self.files += 1;
        if self.files > self.options.max_files {
            return Err(ReadError::TooManyFiles {
                at: from.cloned(),
                limit: self.options.max_files,
            });
        }
        if self.chain.len() >= self.options.max_depth {
            return Err(ReadError::TooDeep {
                at: from.cloned(),
                limit: self.options.max_depth,
            });
        }
        let io = |source| ReadError::Io {
            path: path.to_path_buf(),
            at: from.cloned(),
            source,
        };
        let canonical = path.canonicalize().map_err(io)?;
        if self.chain.contains(&canonical) {
            return Err(ReadError::IncludeLoop {
                at: from.cloned(),
                path: path.to_path_buf(),
            });
        }
        let bytes = self.bytes(path, from)?;
        self.chain.push(canonical);
        for line in lines::split(&bytes) {
            let at = Location {
                file: path.to_path_buf(),
                line: line.number,
            };
            match line.kind {
                LineKind::Blank => self.end_group()?,
                LineKind::Comment => {}
                LineKind::MissingEquals => return Err(ReadError::MissingEquals { at }),
                LineKind::Include { key, target } => {
                    self.include(&target.text, &at).map_err(|source| {
                        if key.text == "include" {
                            source
                        } else {
                            ReadError::IncludeQuirk {
                                at: at.clone(),
                                key: key.text,
                                source: Box::new(source),
                            }
                        }
                    })?
                }
                LineKind::Setting { key, value } => {
                    let pending = self.pending.get_or_insert_with(|| Pending::new(at.clone()));
                    pending.set(Var {
                        key: key.text,
                        value: value.text,
                        lossy: key.lossy || value.lossy,
                        at,
                    });
                }
            }
        }
        self.chain.pop();
        // Kannel appends a blank line to every file it reads.
        self.end_group()
    }

    /// The contents of `path`, at most `max_file_bytes` of them.
    fn bytes(&self, path: &Path, from: Option<&Location>) -> Result<Vec<u8>, ReadError> {
        let io = |source| ReadError::Io {
            path: path.to_path_buf(),
            at: from.cloned(),
            source,
        };
        let limit = self.options.max_file_bytes;
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(limit.saturating_add(1)).read_to_end(&mut bytes))
            .map_err(io)?;
        if bytes.len() as u64 > limit {
            return Err(ReadError::TooLarge {
                path: path.to_path_buf(),
                limit,
            });
        }
        Ok(bytes)
    }

    /// An include line at `at` naming `target`: a file, or a directory.
    fn include(&mut self, target: &str, at: &Location) -> Result<(), ReadError> {
        let written = PathBuf::from(target);
        if self.included.contains(&written) {
            return Err(ReadError::IncludedTwice {
                at: at.clone(),
                path: written,
            });
        }
        self.included.push(written.clone());
        let path = self.options.cwd.join(&written);
        if target.is_empty() {
            // Joined, it would name the directory Kannel runs in.
            let empty = std::io::Error::new(std::io::ErrorKind::NotFound, "an empty include path");
            return Err(ReadError::Io {
                path,
                at: Some(at.clone()),
                source: empty,
            });
        }
        let io = |source| ReadError::Io {
            path: path.clone(),
            at: Some(at.clone()),
            source,
        };
        // lstat, as Kannel: a symbolic link to a directory is read as a file.
        if !std::fs::symlink_metadata(&path).map_err(io)?.is_dir() {
            return self.file(&path, Some(at));
        }
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(&path).map_err(io)? {
            let entry = entry.map_err(io)?;
            let is_dir = entry.file_type().map_err(io)?.is_dir();
            if !is_dir {
                entries.push(entry.file_name());
            }
            if entries.len() > self.options.max_files {
                return Err(ReadError::TooManyFiles {
                    at: Some(at.clone()),
                    limit: self.options.max_files,
                });
            }
        }
        entries.sort();
        for name in entries {
            self.included.push(written.join(&name));
            self.file(&path.join(&name), Some(at))?;
        }
        Ok(())
    }

    /// Ends the group being read, checking it as Kannel's `add_group`.
    fn end_group(&mut self) -> Result<(), ReadError> {
        let Some(Pending { at, mut vars, .. }) = self.pending.take() else {
            return Ok(());
        };
        let Some(index) = vars.iter().position(|var| var.key == "group") else {
            return Err(ReadError::NoGroupKey { at });
        };
        let group = vars.remove(index);
        let Some(known) = keys::group(&group.value) else {
            return Err(ReadError::UnknownGroup {
                at: group.at,
                name: group.value,
            });
        };
        if let Some(var) = vars.iter().find(|var| !known.allows(&var.key)) {
            return Err(ReadError::UnknownKey {
                at: var.at.clone(),
                group: known.name,
                key: var.key.clone(),
            });
        }
        self.groups.push(Group {
            name: known.name,
            at,
            vars,
        });
        Ok(())
    }
}
