//! `optout`: STOP and START. A stop keyword puts the sender's identity on
//! the opt-out list (durably, before the reply is queued); a start keyword
//! takes it off. In the outgoing phase, every message to an opted-out
//! identity is cancelled (C) — except the confirmation of the STOP itself,
//! which the sender is owed. If the list cannot be read, the message is
//! cancelled: one reply lost is better than a text to someone who said STOP.

use tracing::{error, info};

use crate::config::OptoutConfig;
use crate::model::now_micros;
use crate::model::Message;
use crate::router::{App, AppError, AppFuture, Incoming};
use crate::store::{Op, Store, Unit};

/// The annotation a stop leaves on its message, so the outgoing phase can
/// let the confirmation through.
const ANNOTATION: &str = "optout";

pub struct Optout {
    name: String,
    config: OptoutConfig,
    store: Store,
}

impl Optout {
    pub fn new(name: &str, config: OptoutConfig, store: Store) -> Optout {
        Optout {
            name: name.to_owned(),
            config,
            store,
        }
    }
}

impl App for Optout {
    fn name(&self) -> &str {
        &self.name
    }

    fn handle<'a>(&'a self, msg: &'a mut Incoming) -> AppFuture<'a, bool> {
        Box::pin(async move {
            let word = super::first_word(msg);
            let (stop, start) = (self.config.is_stop(word), self.config.is_start(word));
            if !stop && !start {
                return Ok(false);
            }
            let identity = msg.message.connection.identity.clone();
            let op = if stop {
                Op::OptOut {
                    identity: identity.clone(),
                    at: now_micros(),
                }
            } else {
                Op::OptIn {
                    identity: identity.clone(),
                }
            };
            let _applied = self
                .store
                .commit(Unit::new().with(op))
                .await
                .map_err(|e| AppError::new(format!("could not record the opt-out: {e}")))?;
            info!(message_id = msg.message.id, %identity, stop, "opt-out list changed");
            let reply = if stop {
                msg.annotations.insert(ANNOTATION.into(), "stop".into());
                &self.config.stop_reply
            } else {
                &self.config.start_reply
            };
            if let Some(template) = reply {
                let text = super::reply(template, msg);
                msg.respond(text);
            }
            Ok(true)
        })
    }

    fn outgoing<'a>(
        &'a self,
        msg: &'a Message,
        answering: Option<&'a Incoming>,
    ) -> AppFuture<'a, bool> {
        Box::pin(async move {
            let confirms_stop = answering
                .and_then(|m| m.annotations.get(ANNOTATION))
                .is_some_and(|v| v == "stop");
            if confirms_stop {
                return Ok(true);
            }
            match self.store.is_opted_out(&msg.connection.identity).await {
                Ok(opted_out) => Ok(!opted_out),
                // Fail closed: better one reply lost than a message to
                // someone who said STOP.
                Err(e) => {
                    error!(message_id = msg.id, error = %e, "cannot read the opt-out list; cancelling the message");
                    Ok(false)
                }
            }
        })
    }
}
