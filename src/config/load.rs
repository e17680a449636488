//! From TOML text to a [`Config`], finding every problem on the way.
//!
//! serde stops at the first error, and a person fixing a file wants them
//! all. So each error is noted with its key path, the value that caused it
//! is taken out of the document (falling back to its default), and the
//! document is deserialized again, until it goes through: one bad value
//! hides nothing. Keys nothing reads are collected by `serde_ignored` on
//! every pass. The apps are deserialized one by one, because an app's
//! section has the shape of its kind, and its kind is in the section.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;

use super::apps::{AppConfig, AppKind};
use super::report::{KeyPath, Problem, Report};
use super::{validate, Config};

/// The configuration `text` describes, as far as it could be read, and
/// everything wrong with it. `None` only when the text is not TOML.
pub(super) fn read(text: &str) -> (Option<Config>, Report) {
    let mut report = Report::default();
    let mut document: toml::Table = match toml::from_str(text) {
        Ok(document) => document,
        Err(e) => {
            let message = format!("not valid TOML: {}", e.to_string().trim_end());
            report.errors.push(Problem::new(&KeyPath::root(), message));
            return (None, report);
        }
    };
    let apps = document.remove("apps");
    let root = toml::Value::Table(document);
    // `None` would take an error at the root itself, and a table is always
    // the root's right type; the defaults would keep the checks going.
    let mut config: Config =
        tracked(root, &KeyPath::root(), &mut report.errors).unwrap_or_default();

    // The defaults hold the default apps; the file's sections replace them.
    config.apps = BTreeMap::new();
    let mut broken = BTreeSet::new();
    if let Some(apps) = apps {
        read_apps(apps, &mut config.apps, &mut broken, &mut report.errors);
    }
    // A listed app without a section runs with its kind's defaults.
    for name in &config.router.apps {
        if !config.apps.contains_key(name) && !broken.contains(name) {
            if let Some(kind) = AppKind::from_name(name) {
                config.apps.insert(name.clone(), kind.default_config());
            }
        }
    }

    let semantic = validate::check(&config, &broken);
    report.errors.extend(semantic.errors);
    report.warnings = semantic.warnings;
    report.sort();
    (Some(config), report)
}

/// Deserializes `value` (found at `at`) as a `T`, noting every error and
/// unknown key in `errors`. `None` when no value of `T` could be made.
fn tracked<T: DeserializeOwned>(
    mut value: toml::Value,
    at: &KeyPath,
    errors: &mut Vec<Problem>,
) -> Option<T> {
    let mut unknown = BTreeSet::new();
    // Each failed pass removes one key, and a document has finitely many,
    // so the loop ends.
    let result = loop {
        let mut note = |path: serde_ignored::Path<'_>| {
            unknown.insert(KeyPath::from_ignored(&path));
        };
        let deserializer = serde_ignored::Deserializer::new(value.clone(), &mut note);
        match serde_path_to_error::deserialize::<_, T>(deserializer) {
            Ok(parsed) => break Some(parsed),
            Err(e) => {
                let path = KeyPath::from_tracked(e.path());
                errors.push(Problem::new(&at.join(&path), e.inner().message()));
                if !path.remove_from(&mut value) {
                    break None;
                }
            }
        }
    };
    for path in unknown {
        errors.push(Problem::new(
            &at.join(&path),
            "unknown key: rapidbox has no such setting",
        ));
    }
    result
}

/// Reads the `apps` table into `apps`; names whose section could not be
/// read at all go into `broken`, so nothing else complains about them.
fn read_apps(
    value: toml::Value,
    apps: &mut BTreeMap<String, AppConfig>,
    broken: &mut BTreeSet<String>,
    errors: &mut Vec<Problem>,
) {
    let at = KeyPath::root().key("apps");
    let toml::Value::Table(sections) = value else {
        errors.push(Problem::new(
            &at,
            "must be a table of app sections, written [apps.NAME]",
        ));
        return;
    };
    for (name, section) in sections {
        match read_app(&name, section, &at.key(&name), errors) {
            Some(app) => {
                apps.insert(name, app);
            }
            None => {
                broken.insert(name);
            }
        }
    }
}

fn read_app(
    name: &str,
    section: toml::Value,
    at: &KeyPath,
    errors: &mut Vec<Problem>,
) -> Option<AppConfig> {
    let toml::Value::Table(mut section) = section else {
        errors.push(Problem::new(at, "must be a table: an [apps.NAME] section"));
        return None;
    };
    let kind = match section.remove("kind") {
        None => match AppKind::from_name(name) {
            Some(kind) => kind,
            None => {
                errors.push(Problem::new(
                    at,
                    format!(
                        "no built-in app is called {name:?}: set `kind` to one of {}",
                        AppKind::list()
                    ),
                ));
                return None;
            }
        },
        Some(toml::Value::String(kind)) => match AppKind::from_name(&kind) {
            Some(kind) => kind,
            None => {
                errors.push(Problem::new(
                    &at.key("kind"),
                    format!(
                        "unknown app kind {kind:?}: the kinds are {}",
                        AppKind::list()
                    ),
                ));
                return None;
            }
        },
        Some(other) => {
            errors.push(Problem::new(
                &at.key("kind"),
                format!(
                    "must be a string naming the app's kind ({}), not {}",
                    AppKind::list(),
                    other.type_str()
                ),
            ));
            return None;
        }
    };
    let section = toml::Value::Table(section);
    Some(match kind {
        AppKind::Echo => AppConfig::Echo(tracked(section, at, errors)?),
        AppKind::Keyword => AppConfig::Keyword(tracked(section, at, errors)?),
        AppKind::Webhook => AppConfig::Webhook(tracked(section, at, errors)?),
        AppKind::Optout => AppConfig::Optout(tracked(section, at, errors)?),
        AppKind::SmsServices => AppConfig::SmsServices(tracked(section, at, errors)?),
    })
}
