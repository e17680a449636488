//! `sms_services`: Kannel's `group = sms-service`, run as smsbox 1.4.5
//! runs them, as one router app.
//!
//! - `select`: which service takes an MO (urltrans.c `urltrans_find`);
//! - `action`: what it does — `text`, `file`, `exec` (without a shell);
//! - `fetch`: `get-url` and `post-url` requests as smsbox makes them, with
//!   `http-request-retry` and the redirects smsbox's HTTP client follows;
//! - `xml`: the `post-xml` document; `xml_answer`: a `text/xml` answer;
//! - `answer` (and `html`): an HTTP answer as a reply, by Content-Type,
//!   with the X-Kannel-* headers;
//! - `reply`: header, footer, `max-messages`, `split-chars`,
//!   `split-suffix`, `concatenation` (gw/sms.c `sms_split`);
//! - this module: the app, which ties them together as `obey_request_thread`
//!   and `url_result_thread` do, and answers through
//!   [`Incoming::respond_mt`].
//!
//! A message no service takes is answered with `reply-requestfailed`, as
//! smsbox does, and counts as handled.

mod action;
mod answer;
mod fetch;
mod html;
mod reply;
mod select;
mod serve;
mod xml;
mod xml_answer;

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::client::HttpClient;
use crate::config::{SmsService, SmsboxConfig};
use crate::router::{App, AppFuture, Incoming};

use action::Action;
use select::{Candidate, Rules};

/// One service, compiled.
struct Service {
    config: SmsService,
    /// Kannel's name: `name`, or the keyword's regex, or `default`.
    name: String,
    action: Action,
    rules: Rules,
}

/// The app.
pub struct SmsServices {
    name: String,
    services: Vec<Service>,
    rules: Vec<Rules>,
    smsbox: SmsboxConfig,
    global_sender: Option<String>,
    http: HttpClient,
    /// `max-pending-requests`: services being asked at once.
    pending: Arc<Semaphore>,
}

impl SmsServices {
    /// The app for `services`. A service that does not compile (which
    /// check-config reports first) is left out with an error in the log.
    pub fn new(
        name: &str,
        services: &[SmsService],
        smsbox: &SmsboxConfig,
        global_sender: Option<String>,
        http: HttpClient,
    ) -> SmsServices {
        let mut compiled = Vec::new();
        for (i, config) in services.iter().enumerate() {
            match compile(config) {
                Ok(service) => compiled.push(service),
                Err(e) => tracing::error!(service = i, error = %e, "sms service left out"),
            }
        }
        let rules = compiled.iter().map(|s| s.rules.clone()).collect();
        SmsServices {
            name: name.to_owned(),
            services: compiled,
            rules,
            smsbox: smsbox.clone(),
            global_sender,
            http,
            pending: Arc::new(Semaphore::new(smsbox.max_pending_requests.max(1))),
        }
    }
}

fn compile(config: &SmsService) -> Result<Service, String> {
    let (action, source) = Action::compile(config).map_err(|e| e.to_string())?;
    let rules = Rules::compile(config, &source).map_err(|(key, e)| format!("{key}: {e}"))?;
    let name = config
        .name
        .clone()
        .or_else(|| config.keyword_regex.clone())
        .or_else(|| config.keyword_pattern())
        .unwrap_or_else(|| "default".to_owned());
    Ok(Service {
        config: config.clone(),
        name,
        action,
        rules,
    })
}

impl App for SmsServices {
    fn name(&self) -> &str {
        &self.name
    }

    fn handle<'a>(&'a self, msg: &'a mut Incoming) -> AppFuture<'a, bool> {
        Box::pin(async move {
            let mo = &msg.message;
            let kannel = mo.kannel.as_ref();
            // An 8-bit MO is matched on its bytes, as smsbox matches
            // msgdata (rapidbox's text for it is a rendering for people).
            // So is a UCS-2 MO without mo-recode: on its UTF-16BE bytes,
            // which find_translation rids of their NULs, so that ASCII
            // keywords still match.
            let ucs2 = self.ucs2_as_received(mo);
            let bytes_as_text = kannel
                .and_then(|k| k.binary.as_deref())
                .or(ucs2.as_deref())
                .map(String::from_utf8_lossy);
            let candidate = Candidate {
                text: bytes_as_text.as_deref().unwrap_or(&mo.text),
                sender: &mo.connection.address,
                receiver: kannel.and_then(|k| k.shortcode.as_deref()).unwrap_or(""),
                smsc_id: Some(
                    kannel
                        .and_then(|k| k.smsc_id.as_deref())
                        .unwrap_or(&mo.connection.backend),
                ),
                account: None,
            };
            match select::select(&self.rules, &candidate) {
                Some(i) => self.serve(&self.services[i], msg).await,
                None => {
                    tracing::warn!(message_id = mo.id, "no sms service takes the message");
                    // sms_swap: from the number the MO was sent to, not
                    // from global-sender.
                    let from = candidate.receiver.to_owned();
                    self.request_failed(msg, &from);
                }
            }
            Ok(true)
        })
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
