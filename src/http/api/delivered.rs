//! `/router/delivered?message_id=`: a relay reports that it delivered an
//! outgoing message; the message becomes delivered (D), with the time.

use hyper::StatusCode;
use serde::Serialize;
use tracing::info;

use crate::http::answer::{self, ApiError, FieldErrors, HttpResponse, MessageJson};
use crate::http::context::Context;
use crate::http::request::Params;
use crate::model::{now_micros, Direction, MessageId, Status};
use crate::store::{Op, Rejection, StoreError, Unit, Update};

#[derive(Serialize)]
struct Answer<'a> {
    message: MessageJson<'a>,
    status: &'static str,
}

fn message_id(params: &Params) -> Result<MessageId, ApiError> {
    let problem = match params.get("message_id").map(str::trim) {
        None | Some("") => "required",
        Some(id) => match id.parse() {
            Ok(id) => return Ok(id),
            Err(_) => "must be a message id (a whole number)",
        },
    };
    let mut bad = FieldErrors::new();
    bad.insert("message_id", problem.to_owned());
    Err(ApiError::Invalid(bad))
}

pub async fn handle(ctx: &Context, params: &Params) -> Result<HttpResponse, ApiError> {
    let id = message_id(params)?;
    let store = ctx.store();
    let mut message = store
        .message(id)
        .await?
        .ok_or(ApiError::NoSuchMessage(id))?;
    if message.direction != Direction::Outgoing {
        return Err(ApiError::NotOutgoing(id));
    }
    // A repeated report keeps the first delivery time.
    if message.status != Status::Delivered {
        let now = now_micros();
        let unit = Unit::new().with(Op::from(Update::status(id, Status::Delivered, now)));
        match store.commit(unit).await {
            Ok(_) => {}
            Err(StoreError::Rejected(Rejection::MissingMessage { .. })) => {
                return Err(ApiError::NoSuchMessage(id));
            }
            Err(e) => return Err(e.into()),
        }
        info!(message_id = id, "marked delivered over HTTP");
        message.status = Status::Delivered;
        message.delivered = Some(now);
        message.updated = now;
    }
    let body = Answer {
        message: MessageJson::from(&message),
        status: "Message marked as delivered.",
    };
    Ok(answer::json(StatusCode::OK, &body))
}
