//! The store's schema, versioned and embedded in the binary.
//!
//! The policy that lets a rolling update run two releases side by side:
//! **expand, then contract one release later.** A migration only adds
//! (tables, nullable or defaulted columns, indexes); what a release stops
//! using is dropped by a later release's migration, once no binary that
//! reads it can still be running. Each version records, in the store, the
//! oldest schema version whose binaries still run correctly against it
//! (`readable_by`): an expand that older code may ignore keeps the previous
//! value; a change older code would get wrong (it would write rows the new
//! code cannot see) raises it to its own version. A binary facing a newer
//! schema runs when that schema says it may, and refuses it (one line)
//! otherwise — so the old replicas of a rollout keep serving after the
//! first new one has migrated, exactly when that is safe.

/// One schema version: its statements, and the oldest schema version whose
/// binaries still run correctly against it.
#[derive(Debug)]
pub struct Migration {
    pub statements: &'static str,
    pub readable_by: i64,
}

/// Each version's statements, for PostgreSQL.
pub const POSTGRES: &[Migration] = &[
    // 1: everything sgbridge keeps.
    Migration {
        statements: "CREATE TABLE sgbridge_locks (
        key text PRIMARY KEY,
        holder text NOT NULL,
        expires_at timestamptz NOT NULL
     );
     CREATE TABLE sgbridge_uncertain (
        project_id bigint NOT NULL,
        region_id bigint NOT NULL,
        name text NOT NULL,
        marker text NOT NULL,
        since timestamptz NOT NULL,
        PRIMARY KEY (project_id, region_id, name, marker)
     );
     CREATE TABLE sgbridge_idempotency (
        principal text NOT NULL,
        key text NOT NULL,
        fingerprint bigint NOT NULL,
        done boolean NOT NULL,
        status integer,
        headers text,
        body bytea,
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (principal, key)
     );
     CREATE INDEX sgbridge_idempotency_expiry ON sgbridge_idempotency (expires_at);
     CREATE TABLE sgbridge_tasks (
        registry text NOT NULL,
        id text NOT NULL,
        state text NOT NULL,
        body text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (registry, id)
     );
     CREATE TABLE sgbridge_groups (
        project_id bigint NOT NULL,
        region_id bigint NOT NULL,
        id text NOT NULL,
        seq bigint NOT NULL,
        revision bigint NOT NULL,
        body text NOT NULL,
        PRIMARY KEY (project_id, region_id, id)
     );",
        readable_by: 1,
    },
    // 2: the embedded backend shared by replicas. Every group change takes
    // the next number of one sequence (commits serialised, so numbers are
    // seen in order); deletions leave a numbered tombstone; a task names
    // the replica running it, so one that died can be ended by another.
    Migration {
        statements: "CREATE SEQUENCE sgbridge_group_changes;
     ALTER TABLE sgbridge_groups ADD COLUMN changed bigint NOT NULL DEFAULT 0;
     CREATE INDEX sgbridge_groups_changed ON sgbridge_groups (changed);
     CREATE TABLE sgbridge_groups_gone (
        project_id bigint NOT NULL,
        region_id bigint NOT NULL,
        id text NOT NULL,
        changed bigint NOT NULL,
        gone_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (project_id, region_id, id)
     );
     CREATE INDEX sgbridge_groups_gone_changed ON sgbridge_groups_gone (changed);
     ALTER TABLE sgbridge_tasks ADD COLUMN owner text;",
        // Not for version 1's binaries: their group writes take no change
        // number, so replicas of this version would never see them.
        readable_by: 2,
    },
    // 3: the token issuer's state shared by replicas: failed logins (UAA's
    // lockout counted across replicas) and the signing keys (a key made by
    // one replica signs and verifies on all). Additive: older binaries ignore it.
    Migration {
        statements: "CREATE TABLE sgbridge_login_failures (
        username text NOT NULL,
        at bigint NOT NULL
     );
     CREATE INDEX sgbridge_login_failures_user ON sgbridge_login_failures (username, at);
     CREATE TABLE sgbridge_signing_keys (
        id integer PRIMARY KEY,
        pem text NOT NULL,
        created_at bigint NOT NULL
     );",
        // An expand: version 2's binaries ignore these tables (a mixed
        // fleet counts the lockout on the new replicas only).
        readable_by: 2,
    },
    // 4: audit events (`GET /v3/audit_events`), written by every replica.
    // Additive: older binaries ignore the table (their changes go unaudited
    // here while a rollout runs).
    Migration {
        statements: "CREATE TABLE sgbridge_audit_events (
        seq bigserial PRIMARY KEY,
        guid text NOT NULL UNIQUE,
        type text NOT NULL,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL,
        actor_guid text NOT NULL,
        actor_type text NOT NULL,
        actor_name text NOT NULL,
        target_guid text NOT NULL,
        target_type text NOT NULL,
        target_name text NOT NULL,
        space_guid text NOT NULL,
        organization_guid text NOT NULL,
        data text NOT NULL,
        request_id text NOT NULL
     );
     CREATE INDEX sgbridge_audit_events_request ON sgbridge_audit_events (request_id);
     CREATE INDEX sgbridge_audit_events_created ON sgbridge_audit_events (created_at, guid);
     CREATE INDEX sgbridge_audit_events_updated ON sgbridge_audit_events (updated_at, guid);
     CREATE INDEX sgbridge_audit_events_target ON sgbridge_audit_events (target_guid, seq);
     CREATE INDEX sgbridge_audit_events_type ON sgbridge_audit_events (type, seq);",
        readable_by: 2,
    },
    // 5: tombstones kept `store.tombstone_keep_s`, not a day: the sweep
    // writes the newest change number it deleted, and a replica whose
    // cursor is behind it reads every group again. Additive: older binaries
    // ignore the table (and keep their day-long tombstones' assumption;
    // see "Schema changes" in the README).
    Migration {
        statements: "CREATE TABLE sgbridge_marks (
        name text PRIMARY KEY,
        value bigint NOT NULL
     );",
        readable_by: 2,
    },
];

/// Each version's statements, for SQLite.
pub const SQLITE: &[Migration] = &[
    // 1: what one durable process keeps (no locks: one process).
    Migration {
        statements: "CREATE TABLE sgbridge_idempotency (
        principal TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint INTEGER NOT NULL,
        done INTEGER NOT NULL,
        status INTEGER,
        headers TEXT,
        body BLOB,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (principal, key)
     );
     CREATE TABLE sgbridge_tasks (
        registry TEXT NOT NULL,
        id TEXT NOT NULL,
        state TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (registry, id)
     );
     CREATE TABLE sgbridge_groups (
        project_id INTEGER NOT NULL,
        region_id INTEGER NOT NULL,
        id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        revision INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (project_id, region_id, id)
     );",
        readable_by: 1,
    },
    // 2: the token issuer's failed logins and signing key (a restart keeps
    // both: the lockout holds and issued tokens stay valid).
    Migration {
        statements: "CREATE TABLE sgbridge_login_failures (
        username TEXT NOT NULL,
        at INTEGER NOT NULL
     );
     CREATE INDEX sgbridge_login_failures_user ON sgbridge_login_failures (username, at);
     CREATE TABLE sgbridge_signing_keys (
        id INTEGER PRIMARY KEY,
        pem TEXT NOT NULL,
        created_at INTEGER NOT NULL
     );",
        readable_by: 1,
    },
    // 3: audit events (`GET /v3/audit_events`), kept across restarts.
    Migration {
        statements: "CREATE TABLE sgbridge_audit_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        guid TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        actor_guid TEXT NOT NULL,
        actor_type TEXT NOT NULL,
        actor_name TEXT NOT NULL,
        target_guid TEXT NOT NULL,
        target_type TEXT NOT NULL,
        target_name TEXT NOT NULL,
        space_guid TEXT NOT NULL,
        organization_guid TEXT NOT NULL,
        data TEXT NOT NULL,
        request_id TEXT NOT NULL
     );
     CREATE INDEX sgbridge_audit_events_request ON sgbridge_audit_events (request_id);
     CREATE INDEX sgbridge_audit_events_created ON sgbridge_audit_events (created_at, guid);
     CREATE INDEX sgbridge_audit_events_updated ON sgbridge_audit_events (updated_at, guid);
     CREATE INDEX sgbridge_audit_events_target ON sgbridge_audit_events (target_guid, seq);
     CREATE INDEX sgbridge_audit_events_type ON sgbridge_audit_events (type, seq);",
        readable_by: 1,
    },
];

/// The versions still to apply to a store at `current` (whose newest
/// version says which binaries may read it: `readable_by`, `None` from a
/// release before the policy), or why this binary may not run on it.
pub fn pending(
    all: &'static [Migration],
    current: i64,
    readable_by: Option<i64>,
) -> Result<&'static [Migration], String> {
    let known = all.len() as i64;
    if current > known {
        return match readable_by {
            Some(oldest) if oldest <= known => Ok(&[]),
            _ => Err(format!(
                "the store's schema is version {current}, newer than this sgbridge knows (version {known}) \
                 and not readable by it: upgrade sgbridge, or point it at another store"
            )),
        };
    }
    Ok(&all[usize::try_from(current).unwrap_or(0)..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_schemas_run_only_where_they_say_they_may() {
        let known = POSTGRES.len() as i64;
        assert_eq!(pending(POSTGRES, 0, None).unwrap().len(), POSTGRES.len());
        assert!(pending(POSTGRES, known, Some(1)).unwrap().is_empty());
        // A later expand this binary may ignore: it runs, applying nothing.
        assert!(pending(POSTGRES, known + 1, Some(known)).unwrap().is_empty());
        // A change it would get wrong, or a store from before the policy.
        let e = pending(POSTGRES, known + 1, Some(known + 1)).unwrap_err();
        assert!(
            e.contains("newer than this sgbridge knows") && e.contains("not readable by it"),
            "{e}"
        );
        assert!(pending(POSTGRES, 99, None).is_err());
    }

    #[test]
    fn no_version_claims_readers_newer_than_itself_and_the_floor_never_drops() {
        for all in [POSTGRES, SQLITE] {
            let mut floor = 1;
            for (i, m) in all.iter().enumerate() {
                let version = i as i64 + 1;
                assert!(m.readable_by >= floor && m.readable_by <= version, "version {version}");
                floor = m.readable_by;
            }
        }
    }
}
