//! Reads: each is one statement on a pooled connection, and sees every
//! unit answered before it started (an answer comes after COMMIT; the
//! statement runs in READ COMMITTED). Scans use the indexes `schema.rs`
//! made for them and return at most [`MAX_SCAN`] entries, like the redb
//! store's.

use deadpool_postgres::tokio_postgres::types::ToSql;
use deadpool_postgres::tokio_postgres::Row;
use deadpool_postgres::Object;

use super::schema::key_text;
use super::{db_error, pool_error, PgStore};
use crate::model::{
    Connection, DeliveryError, DlrEvent, Message, MessageId, Micros, MoKey, PendingCallback, Status,
};
use crate::store::codec;
use crate::store::error::StoreError;
use crate::store::read::{StoredConnection, MAX_SCAN};

/// An id as the database holds it; `None` for one beyond bigint, which
/// cannot be stored.
fn db_id(id: MessageId) -> Option<i64> {
    i64::try_from(id).ok()
}

/// A bytea column that holds UTF-8 text.
fn text(
    table: &'static str,
    key: impl FnOnce() -> String,
    bytes: &[u8],
) -> Result<String, StoreError> {
    String::from_utf8(bytes.to_vec()).map_err(|e| StoreError::Corrupt {
        table,
        key: key(),
        reason: e.to_string(),
    })
}

fn message_of(row: &Row) -> Result<Message, StoreError> {
    let id = row.get::<_, i64>(0) as MessageId;
    codec::decode_message(id, row.get(1))
}

impl PgStore {
    /// Runs one read statement on a pooled connection, bounded in time.
    async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client: Object = self.inner.pool.get().await.map_err(pool_error)?;
        let bound = self.inner.statement_timeout + std::time::Duration::from_secs(2);
        let run = async {
            let statement = client.prepare_cached(sql).await?;
            client.query(&statement, params).await
        };
        match tokio::time::timeout(bound, run).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => {
                if e.as_db_error().is_none() {
                    // Closed or broken: not back into the pool.
                    super::discard(client);
                }
                Err(db_error("reading", e))
            }
            Err(_) => {
                super::discard(client);
                Err(StoreError::Database {
                    during: "reading",
                    reason: format!("no answer within {bound:?}"),
                })
            }
        }
    }

    /// The message with this id, if stored.
    pub async fn message(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        let Some(id) = db_id(id) else {
            return Ok(None);
        };
        let rows = self
            .rows("SELECT id, body FROM messages WHERE id = $1", &[&id])
            .await?;
        rows.first().map(message_of).transpose()
    }

    /// The id of the MO with this key, if stored.
    pub async fn message_id_by_mo(&self, key: &MoKey) -> Result<Option<MessageId>, StoreError> {
        let rows = self
            .rows(
                "SELECT id FROM messages WHERE mo_time = $1 AND mo_uuid = $2 \
                 AND mo_uuid IS NOT NULL",
                &[&key.time, &key.uuid.as_slice()],
            )
            .await?;
        Ok(rows.first().map(|r| r.get::<_, i64>(0) as MessageId))
    }

    /// Messages in `status`, in id order, with ids above `after_id`; from
    /// one backend, or from all when `backend` is `None`. At most `limit`
    /// (and [`MAX_SCAN`]). Only open statuses are indexed; asking for
    /// another is [`StoreError::NotIndexed`].
    pub async fn messages_by_status(
        &self,
        status: Status,
        backend: Option<&str>,
        after_id: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        if !status.is_open() {
            return Err(StoreError::NotIndexed {
                status: status.code(),
            });
        }
        let after = match after_id {
            None => -1,
            Some(id) => match db_id(id) {
                Some(id) => id,
                None => return Ok(Vec::new()),
            },
        };
        let code = status.code().to_string();
        let limit = limit.min(MAX_SCAN) as i64;
        // The status is spelled out in each query so that the planner
        // matches the partial indexes' predicate.
        let rows = match backend {
            Some(backend) => {
                let backend = key_text(backend);
                self.rows(
                    "SELECT id, body FROM messages \
                     WHERE status = $1 AND backend = $2 AND id > $3 \
                     AND status IN ('R', 'P', 'L', 'Q', 'I', 'E') \
                     ORDER BY id LIMIT $4",
                    &[&code, &backend.as_ref(), &after, &limit],
                )
                .await?
            }
            None => {
                self.rows(
                    "SELECT id, body FROM messages \
                     WHERE status = $1 AND id > $2 \
                     AND status IN ('R', 'P', 'L', 'Q', 'I', 'E') \
                     ORDER BY id LIMIT $3",
                    &[&code, &after, &limit],
                )
                .await?
            }
        };
        rows.iter().map(message_of).collect()
    }

    /// The backends that have messages in `status`, in name order (byte
    /// order), found by skipping from one backend to the next in the index
    /// (one probe per backend). Only open statuses are indexed.
    pub async fn backends_with_status(&self, status: Status) -> Result<Vec<String>, StoreError> {
        if !status.is_open() {
            return Err(StoreError::NotIndexed {
                status: status.code(),
            });
        }
        let code = status.code().to_string();
        let rows = self
            .rows(
                "WITH RECURSIVE b(name) AS ( \
                   (SELECT backend FROM messages WHERE status = $1 \
                    AND status IN ('R', 'P', 'L', 'Q', 'I', 'E') ORDER BY backend LIMIT 1) \
                   UNION ALL \
                   SELECT (SELECT backend FROM messages WHERE status = $1 AND backend > b.name \
                           AND status IN ('R', 'P', 'L', 'Q', 'I', 'E') \
                           ORDER BY backend LIMIT 1) \
                   FROM b WHERE b.name IS NOT NULL) \
                 SELECT name FROM b WHERE name IS NOT NULL",
                &[&code],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
    }

    /// The newest messages first, with ids below `before_id` if given. At
    /// most `limit` (and [`MAX_SCAN`]).
    pub async fn recent_messages(
        &self,
        before_id: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let before = before_id.map_or(i64::MAX, |id| db_id(id).unwrap_or(i64::MAX));
        let limit = limit.min(MAX_SCAN) as i64;
        let rows = if before_id.is_some_and(|id| db_id(id).is_some()) {
            self.rows(
                "SELECT id, body FROM messages WHERE id < $1 ORDER BY id DESC LIMIT $2",
                &[&before, &limit],
            )
            .await?
        } else {
            self.rows(
                "SELECT id, body FROM messages ORDER BY id DESC LIMIT $1",
                &[&limit],
            )
            .await?
        };
        rows.iter().map(message_of).collect()
    }

    /// Whether this normalized identity has opted out.
    pub async fn is_opted_out(&self, identity: &str) -> Result<bool, StoreError> {
        Ok(self.opted_out_since(identity).await?.is_some())
    }

    /// When this normalized identity last opted out, if it has not opted
    /// back in.
    pub async fn opted_out_since(&self, identity: &str) -> Result<Option<Micros>, StoreError> {
        let identity = key_text(identity);
        let rows = self
            .rows(
                "SELECT since FROM optouts WHERE identity = $1",
                &[&identity.as_ref()],
            )
            .await?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    /// A message's failed send attempts, oldest first (at most
    /// [`MAX_SCAN`]).
    pub async fn delivery_errors(&self, id: MessageId) -> Result<Vec<DeliveryError>, StoreError> {
        let Some(db) = db_id(id) else {
            return Ok(Vec::new());
        };
        let rows = self
            .rows(
                "SELECT seq, time, log FROM delivery_errors WHERE message_id = $1 \
                 ORDER BY seq LIMIT $2",
                &[&db, &(MAX_SCAN as i64)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let seq: i64 = r.get(0);
                Ok(DeliveryError {
                    message_id: id,
                    time: r.get(1),
                    log: text("delivery_errors", || format!("({id}, {seq})"), r.get(2))?,
                })
            })
            .collect()
    }

    /// A message's delivery reports, in arrival order (at most
    /// [`MAX_SCAN`]).
    pub async fn dlr_events(&self, id: MessageId) -> Result<Vec<DlrEvent>, StoreError> {
        let Some(db) = db_id(id) else {
            return Ok(Vec::new());
        };
        let rows = self
            .rows(
                "SELECT seq, time, mask, text FROM dlr_events WHERE message_id = $1 \
                 ORDER BY seq LIMIT $2",
                &[&db, &(MAX_SCAN as i64)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let seq: i64 = r.get(0);
                Ok(DlrEvent {
                    message_id: id,
                    time: r.get(1),
                    mask: r.get(2),
                    text: text("dlr_events", || format!("({id}, {seq})"), r.get(3))?,
                })
            })
            .collect()
    }

    /// The first `limit` calls owed to `dlr-url`s, soonest due first,
    /// whether due yet or not.
    pub async fn owed_callbacks(&self, limit: usize) -> Result<Vec<PendingCallback>, StoreError> {
        let rows = self
            .rows(
                "SELECT due, id, message_id, url, attempts FROM dlr_callbacks \
                 ORDER BY due, id LIMIT $1",
                &[&(limit.min(MAX_SCAN) as i64)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let due: i64 = r.get(0);
                let raw: &[u8] = r.get(1);
                let key = || format!("({due}, {raw:02x?})");
                let id: [u8; 16] = raw.try_into().map_err(|_| StoreError::Corrupt {
                    table: "dlr_callbacks",
                    key: key(),
                    reason: "the id is not 16 bytes".to_owned(),
                })?;
                Ok(PendingCallback {
                    due,
                    id,
                    message_id: r.get::<_, i64>(2) as MessageId,
                    url: text("dlr_callbacks", key, r.get(3))?,
                    attempts: u32::try_from(r.get::<_, i64>(4)).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    /// How many messages there are per direction and status (only the
    /// non-zero ones), summed over the writers' slots.
    pub async fn counts(&self) -> Result<Vec<(crate::model::Direction, Status, u64)>, StoreError> {
        let rows = self
            .rows(
                "SELECT direction, status, sum(n)::int8 FROM counts \
                 GROUP BY direction, status ORDER BY direction, status",
                &[],
            )
            .await?;
        let mut found = Vec::new();
        for r in &rows {
            let (d, s): (String, String) = (r.get(0), r.get(1));
            let n: i64 = r.get(2);
            let decoded = d
                .bytes()
                .next()
                .and_then(codec::direction_from_code)
                .zip(s.bytes().next().and_then(codec::status_from_code));
            let Some((direction, status)) = decoded else {
                return Err(StoreError::Corrupt {
                    table: "counts",
                    key: format!("({d:?}, {s:?})"),
                    reason: "unknown direction or status code".to_owned(),
                });
            };
            if n > 0 {
                found.push((direction, status, n as u64));
            }
        }
        // The redb store's order: by direction code, then status code.
        found.sort_by_key(|(d, s, _)| (d.code(), s.code()));
        Ok(found)
    }

    /// The connection as first recorded, if any message was stored for it.
    pub async fn connection(
        &self,
        backend: &str,
        identity: &str,
    ) -> Result<Option<StoredConnection>, StoreError> {
        let rows = self
            .rows(
                "SELECT address, first_seen FROM connections WHERE backend = $1 AND identity = $2",
                &[&key_text(backend).as_ref(), &key_text(identity).as_ref()],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let key = || format!("({backend:?}, {identity:?})");
        Ok(Some(StoredConnection {
            connection: Connection {
                backend: backend.to_owned(),
                identity: identity.to_owned(),
                address: text("connections", key, row.get(0))?,
            },
            first_seen: row.get(1),
        }))
    }

    /// Every connection with this normalized identity, one per backend, in
    /// backend order.
    pub async fn connections_with_identity(
        &self,
        identity: &str,
    ) -> Result<Vec<StoredConnection>, StoreError> {
        let rows = self
            .rows(
                "SELECT backend, address, first_seen FROM connections WHERE identity = $1 \
                 ORDER BY backend LIMIT $2",
                &[&key_text(identity).as_ref(), &(MAX_SCAN as i64)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let backend: String = r.get(0);
                let address = text(
                    "connections",
                    || format!("({backend:?}, {identity:?})"),
                    r.get(1),
                )?;
                Ok(StoredConnection {
                    connection: Connection {
                        backend,
                        identity: identity.to_owned(),
                        address,
                    },
                    first_seen: r.get(2),
                })
            })
            .collect()
    }
}
