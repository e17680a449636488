//! The PostgreSQL schema: every table and index, as numbered migrations
//! applied in order when the store opens, each in the transaction that
//! records it in `schema_migrations`.
//!
//! Everything lives in the schema [`SCHEMA`] of the configured database;
//! the store's connections put it first on their `search_path`, so the
//! statements name tables without it.
//!
//! # Why the tables look like this
//!
//! - A message is stored whole as its postcard encoding (`body`, the
//!   same bytes as the redb store's `messages` values, see `codec.rs`),
//!   with the fields that reads search by copied into columns. PostgreSQL
//!   `text` cannot hold a NUL character and a peer can send one; the body
//!   round-trips every message exactly, and the columns that are text
//!   (backend, identity) hold a copy in which NUL is replaced (see
//!   [`key_text`]).
//! - The Kannel UUID of an MO is deduplicated by a UNIQUE index on
//!   `(mo_time, mo_uuid)`: an MO is inserted with `ON CONFLICT DO
//!   NOTHING` on it, never checked first and inserted after, so two
//!   instances storing the same MO at once store it once.
//! - Only open statuses (R, P, L, Q, I, E) are indexed by status, as in the
//!   redb store: nothing looks for messages in final statuses by status,
//!   and the partial indexes stay as small as the work in flight.
//! - Counts are kept per *slot*: each writer adds its deltas to a row of
//!   its own, so that several instances never wait on each other's row
//!   locks; a read sums the slots.
//! - Message ids come from a sequence in blocks (`id_blocks`, see
//!   `ids.rs`), so that instances sharing the database never give the same
//!   id.
//! - `claimed_by` / `claim_until` on messages and `dlr_callbacks` are for
//!   several instances sharing the work (a queued MT or an owed call
//!   claimed by one of them, with a lease); this version runs a single
//!   instance and leaves them NULL.

use deadpool_postgres::tokio_postgres::Client;

use crate::store::error::StoreError;

/// The PostgreSQL schema (namespace) holding every table.
pub const SCHEMA: &str = "rapidbox";

/// The newest migration this rapidbox knows. A database migrated further
/// (by a newer rapidbox) is refused.
pub const VERSION: i32 = 1;

/// Taken (as a transaction-level advisory lock) while migrating, so that
/// instances opening one database at once migrate it once.
const MIGRATION_LOCK: i64 = 0x7261_7069_6462_6f78; // "rapidbox"

/// One migration: its version, what it does, and its SQL.
struct Migration {
    version: i32,
    description: &'static str,
    sql: &'static str,
}

/// Every migration, oldest first. Append; never edit one that shipped.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "messages, MO keys, events, connections, opt-outs, dlr-url calls, counts, ids",
    sql: r#"
CREATE TABLE messages (
    id          bigint PRIMARY KEY,
    direction   text COLLATE "C" NOT NULL,
    status      text COLLATE "C" NOT NULL,
    backend     text COLLATE "C" NOT NULL,
    identity    text COLLATE "C" NOT NULL,
    date        bigint NOT NULL,
    -- An MO's key (Kannel time or -1, Kannel UUID); NULL for MTs and
    -- for MOs without a Kannel UUID.
    mo_time     bigint,
    mo_uuid     bytea,
    -- The whole message, postcard-encoded (src/store/codec.rs).
    body        bytea NOT NULL,
    -- Several instances: who is sending a queued MT, until when.
    claimed_by  text,
    claim_until bigint,
    CHECK ((mo_time IS NULL) = (mo_uuid IS NULL))
);
-- A Kannel UUID is stored once: the arbiter of INSERT ... ON CONFLICT.
CREATE UNIQUE INDEX messages_mo_key ON messages (mo_time, mo_uuid)
    WHERE mo_uuid IS NOT NULL;
-- messages_by_status for one backend, and backends_with_status.
CREATE INDEX messages_open_by_backend ON messages (status, backend, id)
    WHERE status IN ('R', 'P', 'L', 'Q', 'I', 'E');
-- messages_by_status for every backend, in id order.
CREATE INDEX messages_open ON messages (status, id)
    WHERE status IN ('R', 'P', 'L', 'Q', 'I', 'E');

CREATE TABLE delivery_errors (
    message_id bigint NOT NULL REFERENCES messages ON DELETE CASCADE,
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    time       bigint NOT NULL,
    log        bytea NOT NULL,
    PRIMARY KEY (message_id, seq)
);

CREATE TABLE dlr_events (
    message_id bigint NOT NULL REFERENCES messages ON DELETE CASCADE,
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    time       bigint NOT NULL,
    mask       integer NOT NULL,
    text       bytea NOT NULL,
    PRIMARY KEY (message_id, seq)
);

-- Every connection a message was stored for, as first seen.
CREATE TABLE connections (
    backend    text COLLATE "C" NOT NULL,
    identity   text COLLATE "C" NOT NULL,
    address    bytea NOT NULL,
    first_seen bigint NOT NULL,
    PRIMARY KEY (backend, identity)
);
-- connections_with_identity (the console's reply recipient).
CREATE INDEX connections_by_identity ON connections (identity, backend);

CREATE TABLE optouts (
    identity text COLLATE "C" PRIMARY KEY,
    since    bigint NOT NULL
);

-- Calls owed to sendsms callers' dlr-urls, soonest first.
CREATE TABLE dlr_callbacks (
    due         bigint NOT NULL,
    id          bytea NOT NULL,
    message_id  bigint NOT NULL REFERENCES messages ON DELETE CASCADE,
    url         bytea NOT NULL,
    attempts    bigint NOT NULL,
    claimed_by  text,
    claim_until bigint,
    PRIMARY KEY (due, id)
);
-- Purging asks whether a message is owed a call.
CREATE INDEX dlr_callbacks_by_message ON dlr_callbacks (message_id);

-- Messages per direction and status, per writer slot (summed by reads).
CREATE TABLE counts (
    slot      smallint NOT NULL,
    direction text COLLATE "C" NOT NULL,
    status    text COLLATE "C" NOT NULL,
    n         bigint NOT NULL,
    PRIMARY KEY (slot, direction, status)
);

-- Message ids are handed out in blocks: block b is the ids
-- [b * size, (b + 1) * size).
CREATE SEQUENCE id_blocks AS bigint START 1;

-- The next block whose ids are all above `floor`.
CREATE FUNCTION reserve_id_block(floor bigint, size bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    b bigint := nextval('id_blocks');
BEGIN
    IF b * size <= floor THEN
        PERFORM setval('id_blocks', floor / size + 1);
        b := nextval('id_blocks');
    END IF;
    RETURN b * size;
END
$$;

-- Raised by an MO insert that lost its Kannel UUID to another transaction
-- between the group's reads and its writes: the group is rolled back and
-- tried again, and then sees the MO as a duplicate.
CREATE FUNCTION expect_inserted(inserted bigint, expected bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    IF inserted <> expected THEN
        RAISE EXCEPTION 'an MO''s Kannel UUID was stored meanwhile (% of % inserted)',
            inserted, expected
            USING ERRCODE = 'RB409';
    END IF;
    RETURN inserted;
END
$$;
"#,
}];

/// The SQLSTATE of `expect_inserted`'s error.
pub(crate) const MO_RACE: &str = "RB409";

/// Text as a key column holds it: NUL (which PostgreSQL text cannot hold)
/// becomes U+FFFD. Lookups map their argument the same way; the exact
/// value is in the message's body.
pub(crate) fn key_text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', "\u{fffd}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Brings the database's schema to [`VERSION`]: creates [`SCHEMA`] and
/// applies the missing migrations, under an advisory lock. Refuses a
/// database migrated by a newer rapidbox.
pub(crate) async fn migrate(client: &mut Client, database: &str) -> Result<i32, StoreError> {
    let err = |during| move |e| super::db_error(during, e);
    let txn = client
        .transaction()
        .await
        .map_err(err("starting the migration"))?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(err("locking for the migration"))?;
    txn.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {SCHEMA};
         CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_migrations (
             version     integer PRIMARY KEY,
             description text NOT NULL,
             applied_at  timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(err("creating the schema"))?;
    let row = txn
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {SCHEMA}.schema_migrations"),
            &[],
        )
        .await
        .map_err(err("reading the schema version"))?;
    let found: i32 = row.get(0);
    if found > VERSION {
        return Err(StoreError::SchemaMismatch {
            path: format!("PostgreSQL database {database:?}").into(),
            found: found as u64,
            expected: VERSION as u64,
        });
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > found) {
        txn.batch_execute(&format!("SET LOCAL search_path TO {SCHEMA}"))
            .await
            .map_err(err("migrating"))?;
        txn.batch_execute(migration.sql)
            .await
            .map_err(err("migrating"))?;
        txn.execute(
            &format!(
                "INSERT INTO {SCHEMA}.schema_migrations (version, description) VALUES ($1, $2)"
            ),
            &[&migration.version, &migration.description],
        )
        .await
        .map_err(err("recording a migration"))?;
        tracing::info!(
            version = migration.version,
            migration.description,
            "PostgreSQL schema migrated"
        );
    }
    txn.commit()
        .await
        .map_err(err("committing the migration"))?;
    Ok(VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_up_to_the_version() {
        let versions: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
        let expected: Vec<i32> = (1..=VERSION).collect();
        assert_eq!(versions, expected);
    }

    #[test]
    fn key_text_replaces_only_nul() {
        assert_eq!(key_text("smsc1"), "smsc1");
        assert_eq!(key_text("a\0b"), "a\u{fffd}b");
    }
}
