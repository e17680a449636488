//! What happens to an `sms` the bearerbox sends: an MO is routed, stored
//! with its replies in one durable commit, and only then acknowledged; a
//! delivery report updates the message it reports on. Each returns the ack
//! status the bearerbox must hear.

use boxproto::{AckStatus, Sms};
use tracing::{error, info, warn};

use crate::dlr_callback::{self, DlrCallbacks};
use crate::intake::{Intake, Received};
use crate::link::convert::{self, MoProblem};
use crate::metrics::{CallbackKind, CallbackOutcome, DlrKind};
use crate::model::{
    now_micros, DeliveryError, Direction, DlrEvent, Message, MessageId, MoKey, Status,
};
use crate::store::{Op, Outcome, Store, StoreError, Unit, Update};

/// Handles the messages the bearerbox sends. Cheap to clone.
#[derive(Clone)]
pub struct Inbound {
    /// Where MOs are routed, stored and answered.
    pub intake: Intake,
    /// Where the reports of sendsms messages that carry a caller's
    /// `dlr-url` go once recorded; `None` calls no one.
    pub dlr_callbacks: Option<DlrCallbacks>,
}

/// The ack for a commit that failed, as [`StoreError::is_transient`]
/// decides: a storage problem is temporary (`failed_tmp`: the bearerbox
/// keeps the message and offers it again); anything else (a unit the
/// store refuses, a corrupt entry) would fail the same way forever, so the
/// bearerbox is told to drop it (`failed`). `what` says what was lost,
/// for the log: the only record left of it; `message_id` is the message
/// it is (an MO) or reports on (a delivery report).
fn ack_for_store_error(e: &StoreError, what: &str, message_id: MessageId, sms: &Sms) -> AckStatus {
    if e.is_transient() {
        error!(error = %e, message_id, kannel_uuid = %sms.id, "could not store the {what}; the bearerbox keeps it (failed_tmp)");
        AckStatus::FailedTmp
    } else {
        error!(
            error = %e,
            message_id,
            kannel_uuid = %sms.id,
            sender = %lossy(sms.sender.as_deref()),
            receiver = %lossy(sms.receiver.as_deref()),
            msgdata = %lossy(sms.msgdata.as_deref()),
            "the store cannot take the {what}, now or later; acknowledging it as failed so the bearerbox stops offering it"
        );
        AckStatus::Failed
    }
}

/// A field's bytes for a log line.
fn lossy(field: Option<&[u8]>) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(field.unwrap_or_default())
}

impl Inbound {
    fn store(&self) -> &Store {
        self.intake.store()
    }

    /// Routes and stores an MO. Success once it and its replies are
    /// durable, or when it was stored before (a redelivery).
    pub async fn mo(&self, sms: &Sms) -> AckStatus {
        let key = convert::mo_key(sms);
        let (message, problem) = convert::incoming_message(sms, self.store().allocate_id());
        if let Some(problem) = problem {
            return self.refuse(message, key, problem, sms).await;
        }
        let id = message.id;
        match self.intake.receive_mo(message, key).await {
            Ok(Received::Stored(routed)) => {
                let replies = routed.queued().count();
                info!(message_id = id, kannel_uuid = %sms.id, replies, "MO stored");
                AckStatus::Success
            }
            Ok(Received::Duplicate(first)) => {
                info!(message_id = first, kannel_uuid = %sms.id, "MO already stored; acknowledging the redelivery");
                AckStatus::Success
            }
            Ok(Received::Deferred(id)) => {
                info!(message_id = id, kannel_uuid = %sms.id, "MO stored as received; its slow apps finish in the background");
                AckStatus::Success
            }
            Err(e) => ack_for_store_error(&e, "MO", id, sms),
        }
    }

    /// Records an MO that cannot be routed and tells the bearerbox it
    /// failed, as Kannel's smsbox does.
    async fn refuse(
        &self,
        message: Message,
        key: MoKey,
        problem: MoProblem,
        sms: &Sms,
    ) -> AckStatus {
        let id = message.id;
        warn!(message_id = id, kannel_uuid = %sms.id, %problem, "MO refused");
        let unit = Unit::new()
            .with(Op::put(message))
            .with(Op::AddDeliveryError(DeliveryError {
                message_id: id,
                time: now_micros(),
                log: problem.to_string(),
            }))
            .unless_mo_known(key);
        match self.store().commit(unit).await {
            Ok(Outcome::Applied) => AckStatus::Failed,
            // Refused and recorded before: this is a redelivery.
            Ok(Outcome::Duplicate(_)) => AckStatus::Success,
            Err(e) => ack_for_store_error(&e, "refused MO", id, sms),
        }
    }

    /// Applies a delivery report to the message its `dlr_url` names. A
    /// report for no message of ours is logged and acknowledged.
    pub async fn report(&self, sms: &Sms) -> AckStatus {
        let event = sms.dlr_mask.0;
        let text = sms
            .msgdata
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let Some(id) = convert::report_message_id(sms) else {
            warn!(report_uuid = %sms.id, dlr_mask = event, %text, "delivery report without a message id of ours; acknowledged and dropped");
            self.intake.metrics().messages.dlr(DlrKind::Unmatched);
            return AckStatus::Success;
        };
        let message = match self.store().message(id).await {
            Ok(Some(m)) if m.direction == Direction::Outgoing => m,
            Ok(_) => {
                warn!(
                    message_id = id,
                    report_uuid = %sms.id,
                    dlr_mask = event,
                    "delivery report for an unknown message; acknowledged and dropped"
                );
                self.intake.metrics().messages.dlr(DlrKind::Unmatched);
                return AckStatus::Success;
            }
            Err(e) => return ack_for_store_error(&e, "delivery report", id, sms),
        };
        let message_uuid = message.kannel_uuid();
        let now = now_micros();
        let mut update = match event {
            1 => Update::status(id, Status::Delivered, now),
            2 | 16 if message.status != Status::Delivered => {
                Update::status(id, Status::Failed, now)
            }
            // 4 (buffered) and 8 (accepted by the SMSC) are recorded below.
            _ => Update::new(id, now),
        };
        if let Some(foreign) = sms.foreign_id.as_ref().filter(|f| !f.is_empty()) {
            update = update.foreign_id(String::from_utf8_lossy(foreign).into_owned());
        }
        let mut unit = Unit::new()
            .with(Op::AddDlr(DlrEvent {
                message_id: id,
                time: now,
                mask: event,
                text: text.clone(),
            }))
            .with(Op::from(update));
        if event == 2 || event == 16 {
            unit.push(Op::AddDeliveryError(DeliveryError {
                message_id: id,
                time: now,
                log: format!("delivery report {event}: {text}"),
            }));
        }
        // The caller's dlr-url call is owed from the moment the report is
        // recorded: both commit together.
        let callbacks = self.dlr_callbacks.as_ref().and_then(|callbacks| {
            let template = message
                .kannel
                .as_ref()
                .and_then(|k| k.mt_options.as_ref())
                .and_then(|o| o.dlr_url.as_deref())?;
            let url = crate::escape::expand_dlr_url(template, sms, &message);
            unit.push(Op::OweCallback(dlr_callback::owed(id, url, now)));
            Some(callbacks)
        });
        match self.store().commit(unit).await {
            Ok(_) => {
                let metrics = self.intake.metrics();
                metrics.messages.dlr(DlrKind::of_event(i64::from(event)));
                if callbacks.is_some() {
                    metrics
                        .callbacks
                        .report(CallbackKind::DlrUrl, CallbackOutcome::Owed);
                }
                info!(
                    message_id = id,
                    kannel_uuid = message_uuid.map(tracing::field::display),
                    report_uuid = %sms.id,
                    dlr_mask = event,
                    "delivery report recorded"
                );
                if let Some(callbacks) = callbacks {
                    callbacks.wake();
                }
                AckStatus::Success
            }
            Err(e) => ack_for_store_error(&e, "delivery report", id, sms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::outbox::{Outbox, Policy};
    use crate::dispatch::Dispatch;
    use crate::reload::{Reloadable, Snapshot};
    use crate::router::{ReplySettings, Router};
    use crate::store::{Rejection, StoreOptions};
    use boxproto::{Bytes, Coding, DlrMask, SmsType, Uuid};
    use std::sync::Arc;

    /// An echo router over a fresh store, and the bearerbox link's outbox
    /// its replies go to.
    fn inbound(dir: &tempfile::TempDir) -> (Inbound, Outbox) {
        let store = Store::open(&dir.path().join("s.redb"), StoreOptions::default()).unwrap();
        let config = crate::config::Config::default();
        let http = crate::client::HttpClient::new().unwrap();
        let apps = crate::apps::build(config.router_apps(), &store, &http);
        let router = Router::new(apps, Arc::new(store.clone()), ReplySettings::default());
        let outbox = Outbox::new(16, Policy::every_backend());
        let settings = Reloadable::new(Snapshot::new(router, config.transports()));
        let dispatch = Dispatch::new(settings.clone(), Some(outbox.clone()), None);
        let inbound = Inbound {
            intake: Intake::new(
                store,
                settings,
                dispatch,
                crate::metrics::Metrics::detached(),
            ),
            dlr_callbacks: None,
        };
        (inbound, outbox)
    }

    fn mo(n: u128) -> Sms {
        Sms {
            sender: Some(Bytes::from_static(b"+4912")),
            receiver: Some(Bytes::from_static(b"5555")),
            msgdata: Some(Bytes::from_static(b"hello")),
            smsc_id: Some(Bytes::from_static(b"fake")),
            coding: Coding::SevenBit,
            id: Uuid::from_u128(n),
            sms_type: SmsType::Mo,
            ..Sms::default()
        }
    }

    #[tokio::test]
    async fn an_mo_is_acked_after_it_and_its_reply_are_stored_and_a_redelivery_is_not_routed_again()
    {
        let dir = tempfile::tempdir().unwrap();
        let (inbound, outbox) = inbound(&dir);
        assert_eq!(inbound.mo(&mo(1)).await, AckStatus::Success);
        assert_eq!(outbox.len(), 1, "the reply is offered for sending");
        assert_eq!(inbound.mo(&mo(1)).await, AckStatus::Success);
        assert_eq!(outbox.len(), 1, "a redelivery is not routed again");
        let counts = inbound.store().counts().await.unwrap();
        assert_eq!(
            counts,
            [
                (Direction::Incoming, Status::Handled, 1),
                (Direction::Outgoing, Status::Queued, 1)
            ]
        );
    }

    #[tokio::test]
    async fn storage_trouble_acks_failed_tmp_so_the_bearerbox_keeps_the_mo() {
        let dir = tempfile::tempdir().unwrap();
        let (inbound, outbox) = inbound(&dir);
        inbound.store().close().await;
        assert_eq!(inbound.mo(&mo(2)).await, AckStatus::FailedTmp);
        assert!(outbox.is_empty());
    }

    #[tokio::test]
    async fn an_mo_without_sender_is_acked_failed_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (inbound, _outbox) = inbound(&dir);
        let mut sms = mo(3);
        sms.sender = Some(Bytes::new());
        assert_eq!(inbound.mo(&sms).await, AckStatus::Failed);
        let id = inbound
            .store()
            .message_id_by_mo(&convert::mo_key(&sms))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            inbound.store().message(id).await.unwrap().unwrap().status,
            Status::Failed
        );
        let errors = inbound.store().delivery_errors(id).await.unwrap();
        assert_eq!(errors[0].log, "the MO has no sender");
    }

    #[tokio::test]
    async fn a_report_for_no_message_of_ours_is_acked_and_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (inbound, _outbox) = inbound(&dir);
        let report = Sms {
            sms_type: SmsType::ReportMo,
            dlr_mask: DlrMask(1),
            dlr_url: Some(Bytes::from_static(b"https://someone.else/")),
            ..Sms::default()
        };
        assert_eq!(inbound.report(&report).await, AckStatus::Success);
        let unknown_id = Sms {
            dlr_url: Some(Bytes::from_static(b"999")),
            ..report
        };
        assert_eq!(inbound.report(&unknown_id).await, AckStatus::Success);
        assert!(inbound.store().counts().await.unwrap().is_empty());
    }

    /// A corrupt entry or a refused unit fails the same way every time:
    /// acking it `failed_tmp` would have the bearerbox offer the same MO
    /// forever.
    #[test]
    fn only_transient_store_errors_ask_the_bearerbox_to_keep_the_message() {
        let sms = mo(4);
        let corrupt = StoreError::Corrupt {
            table: "messages",
            key: "1".into(),
            reason: "truncated".into(),
        };
        let rejected = StoreError::Rejected(Rejection::TooManyOps { ops: 9, max: 1 });
        assert_eq!(
            ack_for_store_error(&corrupt, "MO", 1, &sms),
            AckStatus::Failed
        );
        assert_eq!(
            ack_for_store_error(&rejected, "MO", 1, &sms),
            AckStatus::Failed
        );
        assert_eq!(
            ack_for_store_error(&StoreError::Closed, "MO", 1, &sms),
            AckStatus::FailedTmp
        );
        assert_eq!(
            ack_for_store_error(&StoreError::Recovering, "MO", 1, &sms),
            AckStatus::FailedTmp
        );
    }
}
