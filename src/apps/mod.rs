//! The built-in apps, configured in TOML (`[router] apps` and
//! `[apps.NAME]`): `echo`, `keyword`, `webhook`, `optout`, and
//! `sms_services` (Kannel's sms-services, `[[sms_services]]`). Each is an
//! ordinary [`App`]; a team that builds its own binary adds its own apps
//! after them with [`crate::DaemonBuilder::app`].

mod echo;
mod keyword;
mod optout;
mod services;
mod webhook;

pub use echo::Echo;
pub use keyword::Keyword;
pub use optout::Optout;
pub use services::SmsServices;
pub use webhook::Webhook;

use crate::client::HttpClient;
use crate::config::{AppConfig, Config};
use crate::router::{App, Incoming};
use crate::store::Store;
use crate::template::{Mode, Template, TemplateContext};

/// The configured apps of `config`, in order: `[router] apps` with their
/// sections, and an `sms_services` app with `[[sms_services]]`,
/// `[smsbox]` and `kannel.global_sender`.
pub fn build_for(config: &Config, store: &Store, http: &HttpClient) -> Vec<Box<dyn App>> {
    config
        .router_apps()
        .map(|(name, app)| one(name, app, config, store, http))
        .collect()
}

/// The apps `apps` names, with their sections (for tests that build a
/// router by hand). An `sms_services` app among them has no services:
/// [`build_for`] gives it its configuration.
#[cfg(test)]
pub fn build<'a>(
    apps: impl IntoIterator<Item = (&'a str, &'a AppConfig)>,
    store: &Store,
    http: &HttpClient,
) -> Vec<Box<dyn App>> {
    let none = Config::default();
    apps.into_iter()
        .map(|(name, app)| one(name, app, &none, store, http))
        .collect()
}

fn one(
    name: &str,
    app: &AppConfig,
    config: &Config,
    store: &Store,
    http: &HttpClient,
) -> Box<dyn App> {
    match app {
        AppConfig::Echo(c) => Box::new(Echo::new(name, c.clone())),
        AppConfig::Keyword(c) => Box::new(Keyword::new(name, c.clone())),
        AppConfig::Webhook(c) => Box::new(Webhook::new(name, c.clone(), http.clone())),
        AppConfig::Optout(c) => Box::new(Optout::new(name, c.clone(), store.clone())),
        AppConfig::SmsServices(_) => {
            // Up to max-pending-requests requests at once, often to one
            // host: a pool of its own that keeps as many connections.
            let idle = config.smsbox.max_pending_requests.max(1);
            let http = match HttpClient::with_idle_per_host(idle) {
                Ok(own) => own,
                Err(e) => {
                    tracing::warn!(error = %e, "sms services share rapidbox's HTTP client");
                    http.clone()
                }
            };
            Box::new(SmsServices::new(
                name,
                &config.sms_services,
                &config.smsbox,
                config.kannel.global_sender.clone(),
                http,
            ))
        }
    }
}

/// A reply template rendered for the incoming message.
fn reply(template: &Template, msg: &Incoming) -> String {
    template.render(&TemplateContext::from_incoming(&msg.message), Mode::Text)
}

/// The message's first word, the keyword.
fn first_word(msg: &Incoming) -> &str {
    msg.text().split_whitespace().next().unwrap_or("")
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::model::{Connection, Direction, KannelInfo, Message};
    use crate::router::Incoming;

    /// An MO from +256772123456 to 8500 through `fake`.
    pub fn incoming(text: &str) -> Incoming {
        let connection = Connection::new("fake", "+256772123456");
        let mut mo = Message::new(1, connection, Direction::Incoming, text);
        mo.date = 1_764_000_000_000_000;
        mo.kannel = Some(KannelInfo {
            shortcode: Some("8500".into()),
            smsc_id: Some("fake".into()),
            ..KannelInfo::default()
        });
        Incoming::new(mo)
    }
}
