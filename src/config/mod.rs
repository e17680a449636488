//! rapidbox's configuration: one TOML file in which every key has a
//! default, so `rapidbox run` works with no file at all.
//!
//! ```toml
//! [store]     # where the state lives
//! [kannel]    # the bearerbox connection
//! [http]      # the HTTP server
//! [metrics]   # where /metrics is served
//! [log]       # the log's format
//! [router]    # apps = [...], in order
//! [apps.NAME] # one section per app; its kind is NAME unless `kind` says
//! [[sendsms_users]] # who may use /cgi-bin/sendsms
//! [console]   # the web console's sessions
//! [[console_users]] # who may log in to the console
//! [alerts]    # where /router/alert forwards to
//! [[sms_services]] # Kannel's sms-service groups (app `sms_services`)
//! [smsbox]    # the smsbox keys that shape those services
//! ```
//!
//! `rapidbox.example.toml` at the repository root documents every key.
//!
//! - this module: [`Config`] and the entry points ([`Config::load`],
//!   [`check`], [`smsbox_id_warning`]);
//! - `sections`: `[store]`, `[kannel]`, `[http]`, `[metrics]`, `[log]`, `[router]` and their
//!   defaults;
//! - `apps`: the built-in apps' sections;
//! - `sendsms`: `[[sendsms_users]]`;
//! - `console`: `[console]`, `[[console_users]]`, `[alerts]`;
//! - `services`: `[[sms_services]]`, `[smsbox]`;
//! - `load`: text to `Config`, collecting every problem, not just the first;
//! - `validate`: checks beyond types, and the warnings;
//! - `report`: [`KeyPath`], [`Problem`], [`Report`], [`ConfigErrors`].
//!
//! A new section is a new field of [`Config`] (with `Default`, `Serialize`
//! and `Deserialize`): loading, unknown-key detection, error paths and
//! `to_toml_string` follow from the field. Its semantic checks go in
//! `validate`.

mod apps;
mod console;
mod load;
mod report;
mod sections;
mod sendsms;
mod services;
mod services_check;
mod transport;
mod validate;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use apps::{
    AppConfig, AppKind, EchoConfig, KeywordConfig, OnFailure, OptoutConfig, WebhookConfig,
};
pub use console::{check_password_hash, AlertsConfig, ConsoleConfig, ConsoleUser, SmtpSecurity};
pub use report::{ConfigErrors, KeyPath, Problem, Report};
pub use sections::{
    HttpConfig, KannelConfig, LogConfig, LogFormat, MetricsConfig, PostgresConfig, RouterConfig,
    RuntimeConfig, StoreBackend, StoreConfig,
};
pub use sendsms::{Behaviour, Pattern, SendsmsUser};
pub use services::{EscapeStyle, NonGsmReplies, SmsService, SmsServicesAppConfig, SmsboxConfig};
pub(crate) use services_check::compile_regex;
pub use transport::{
    BackendConfig, PushConfig, PushMethod, TransportKind, Transports, PUSH_FIELDS,
};

/// The longest username a `[[sendsms_users]]` or `[[console_users]]`
/// entry may have. A login or request naming a longer one cannot match a
/// user, so rapidbox neither keeps nor logs more of it than this.
pub const MAX_USERNAME_CHARS: usize = 64;

/// The whole configuration.
///
/// Read it with [`Config::load`] or [`Config::from_toml_str`]: the derived
/// `Deserialize` alone leaves out the apps and every check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, expecting = "a table of configuration sections")]
pub struct Config {
    pub store: StoreConfig,
    pub kannel: KannelConfig,
    pub http: HttpConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    /// The threads rapidbox runs on.
    pub runtime: RuntimeConfig,
    pub router: RouterConfig,
    /// Push transport settings.
    pub push: PushConfig,
    /// Transport per backend; `default` covers the rest.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub backends: BTreeMap<String, BackendConfig>,
    /// Who may use `/cgi-bin/sendsms`; none, and it refuses everyone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sendsms_users: Vec<SendsmsUser>,
    /// The web console's settings.
    pub console: ConsoleConfig,
    /// Who may log in to the web console; none, and it is disabled.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub console_users: Vec<ConsoleUser>,
    /// Where `/router/alert` and `/router/relaylog` forward to.
    pub alerts: AlertsConfig,
    /// Kannel's sms-services, run by the `sms_services` app.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sms_services: Vec<SmsService>,
    /// The smsbox keys that shape the services.
    pub smsbox: SmsboxConfig,
    /// The apps by name. After loading, every app `router.apps` lists is
    /// here (from its `[apps.NAME]` section, or with its kind's defaults);
    /// sections the router does not list are here too, unused.
    ///
    /// Read by `load` section by section, because each app's shape depends
    /// on its kind.
    #[serde(skip_deserializing)]
    pub apps: BTreeMap<String, AppConfig>,
}

impl Default for Config {
    fn default() -> Config {
        let router = RouterConfig::default();
        let apps = router
            .apps
            .iter()
            .filter_map(|name| Some((name.clone(), AppKind::from_name(name)?.default_config())))
            .collect();
        Config {
            store: StoreConfig::default(),
            kannel: KannelConfig::default(),
            http: HttpConfig::default(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
            runtime: RuntimeConfig::default(),
            router,
            push: PushConfig::default(),
            backends: BTreeMap::new(),
            sendsms_users: Vec::new(),
            console: ConsoleConfig::default(),
            console_users: Vec::new(),
            alerts: AlertsConfig::default(),
            sms_services: Vec::new(),
            smsbox: SmsboxConfig::default(),
            apps,
        }
    }
}

impl Config {
    /// Reads the file at `path`. Errors list every problem found (see
    /// [`check`]); warnings are in [`Config::warnings`].
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigErrors> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Config::from_text(&text, origin),
            Err(e) => Err(ConfigErrors {
                origin,
                errors: vec![Problem::new(
                    &KeyPath::root(),
                    format!("cannot read the configuration file: {e}"),
                )],
            }),
        }
    }

    /// Reads a configuration from TOML text.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigErrors> {
        Config::from_text(text, "<string>".to_owned())
    }

    fn from_text(text: &str, origin: String) -> Result<Config, ConfigErrors> {
        match load::read(text) {
            (Some(config), report) if report.is_ok() => Ok(config),
            (_, report) => Err(ConfigErrors {
                origin,
                errors: report.errors,
            }),
        }
    }

    /// The semantic checks of a configuration already in hand (built in
    /// code, say): what [`check`] reports beyond types and unknown keys.
    pub fn check(&self) -> Report {
        validate::check(self, &Default::default())
    }

    /// What is worth a warning in this configuration; `rapidbox run` logs
    /// these at startup.
    pub fn warnings(&self) -> Vec<Problem> {
        self.check().warnings
    }

    /// Which transport every backend takes, for the dispatcher.
    pub fn transports(&self) -> Transports {
        Transports::new(self.backends.clone(), &self.push, self.kannel.enabled)
    }

    /// The apps `router.apps` lists, in order, with their settings.
    pub fn router_apps(&self) -> impl Iterator<Item = (&str, &AppConfig)> {
        self.router
            .apps
            .iter()
            .filter_map(|name| Some((name.as_str(), self.apps.get(name)?)))
    }

    /// The configuration as TOML, every default written out: what
    /// `rapidbox check-config --print` shows. Reading it back gives the
    /// same configuration.
    pub fn to_toml_string(&self) -> Result<String, toml::ser::Error> {
        toml::to_string_pretty(self)
    }
}

/// Everything wrong with the configuration `text`: every error (TOML
/// syntax, unknown keys anywhere, wrong types, values out of range, keys
/// that need each other) and every warning, each with its key path, sorted
/// by key path. A TOML syntax error is reported alone, as nothing else can
/// be read.
pub fn check(text: &str) -> Report {
    load::read(text).1
}

/// What rapidbox says, loudly, when `kannel.smsbox_id` is set: logged at
/// startup and reported by `check` as a warning.
pub fn smsbox_id_warning(smsbox_id: &str) -> String {
    format!(
        "!!! MOs WILL NOT ARRIVE unless bearerbox.conf routes them to smsbox-id {smsbox_id:?} !!! \
         a bearerbox sends a box that identifies with an smsbox-id only the MOs that a \
         `group = smsbox-route` routes to that id (and the reports of its own MTs); without a \
         matching smsbox-route in bearerbox.conf rapidbox receives no MOs at all. Add \
         `group = smsbox-route`, `smsbox-id = {smsbox_id}` and the `smsc-id` or `shortcode` \
         whose MOs rapidbox should get to bearerbox.conf, or remove kannel.smsbox_id to \
         receive every MO that no smsbox-route claims."
    )
}

#[cfg(test)]
mod tests;
