//! `POST /admin/backup`: the running rapidbox writes a consistent copy of
//! its store (`Store::backup`) to the path `to` names, on its own machine,
//! as its own user. This is how `rapidbox backup` reaches a store that the
//! daemon holds open (redb locks the file against other processes).
//!
//! The request makes the daemon write a file wherever it may, so the
//! endpoint is refused unless `[http] password` is set, and then requires
//! it. One backup runs at a time; another is answered 409.
//!
//! Answers JSON: `{"path", "messages", "entries", "bytes"}`, or an error
//! (501 for a store that is not redb's: back a database up with its own
//! tools).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hyper::StatusCode;
use serde::Serialize;
use tracing::info;

use super::super::answer::{self, ApiError, FieldErrors, HttpResponse};
use super::super::context::Context;
use super::super::request::Params;

/// Whether a backup is running, shared by every request.
#[derive(Debug, Default, Clone)]
pub struct BackupSlot(Arc<AtomicBool>);

impl BackupSlot {
    /// The slot, if free, until the returned guard is dropped.
    fn take(&self) -> Option<Taken> {
        let busy = self.0.swap(true, Ordering::AcqRel);
        (!busy).then(|| Taken(self.0.clone()))
    }
}

struct Taken(Arc<AtomicBool>);

impl Drop for Taken {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[derive(Serialize)]
struct Done {
    path: String,
    messages: u64,
    entries: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct Refused {
    error: String,
}

fn refused(status: StatusCode, error: impl Into<String>) -> HttpResponse {
    answer::json(
        status,
        &Refused {
            error: error.into(),
        },
    )
}

pub async fn handle(
    ctx: &Context,
    slot: &BackupSlot,
    params: &Params,
) -> Result<HttpResponse, ApiError> {
    if ctx.password.is_none() {
        return Ok(refused(
            StatusCode::FORBIDDEN,
            "backups over HTTP need [http] password to be set",
        ));
    }
    let to = params.get("to").map(PathBuf::from);
    let Some(to) = to.filter(|p| p.is_absolute()) else {
        let mut fields = FieldErrors::new();
        fields.insert("to", "give the backup's absolute path".to_owned());
        return Err(ApiError::Invalid(fields));
    };
    let Some(taken) = slot.take() else {
        return Ok(refused(StatusCode::CONFLICT, "a backup is running already"));
    };
    let store = ctx.store().clone();
    let dest = to.clone();
    // The slot is freed when the copy ends, even if this request was
    // dropped before (its client went away).
    let copied = tokio::task::spawn_blocking(move || {
        let _taken = taken;
        store.backup(&dest)
    })
    .await;
    let report = match copied {
        Ok(Ok(report)) => report,
        Ok(Err(crate::store::StoreError::Open { source, .. })) => {
            let status = if source.kind() == std::io::ErrorKind::AlreadyExists {
                StatusCode::CONFLICT
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            return Ok(refused(status, format!("{}: {source}", to.display())));
        }
        // Another backend's database is backed up with its own tools.
        Ok(Err(e @ crate::store::StoreError::Unsupported { .. })) => {
            return Ok(refused(StatusCode::NOT_IMPLEMENTED, e.to_string()));
        }
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => return Err(ApiError::Internal("the backup task failed")),
    };
    info!(path = %to.display(), messages = report.messages, bytes = report.bytes, "backup written");
    Ok(answer::json(
        StatusCode::OK,
        &Done {
            path: to.display().to_string(),
            messages: report.messages,
            entries: report.entries,
            bytes: report.bytes,
        },
    ))
}
