//! The store's schema, versioned and embedded in the binary. Migrations are
//! additive (new tables, new nullable columns), so two versions can run side
//! by side during a rolling update; a binary refuses a schema newer than
//! the newest it knows.

/// Each version's statements, for PostgreSQL.
pub const POSTGRES: &[&str] = &[
    // 1: everything sgbridge keeps.
    "CREATE TABLE sgbridge_locks (
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
    // 2: the embedded backend shared by replicas. Every group change takes
    // the next number of one sequence (commits serialised, so numbers are
    // seen in order); deletions leave a numbered tombstone; a task names
    // the replica running it, so one that died can be ended by another.
    "CREATE SEQUENCE sgbridge_group_changes;
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
    // 3: the token issuer's state shared by replicas: failed logins (UAA's
    // lockout counted across replicas) and the signing keys (a key made by
    // one replica signs and verifies on all). Additive: older binaries ignore it.
    "CREATE TABLE sgbridge_login_failures (
        username text NOT NULL,
        at bigint NOT NULL
     );
     CREATE INDEX sgbridge_login_failures_user ON sgbridge_login_failures (username, at);
     CREATE TABLE sgbridge_signing_keys (
        id integer PRIMARY KEY,
        pem text NOT NULL,
        created_at bigint NOT NULL
     );",
];

/// Each version's statements, for SQLite.
pub const SQLITE: &[&str] = &[
    // 1: what one durable process keeps (no locks: one process).
    "CREATE TABLE sgbridge_idempotency (
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
    // 2: the token issuer's failed logins and signing key (a restart keeps
    // both: the lockout holds and issued tokens stay valid).
    "CREATE TABLE sgbridge_login_failures (
        username TEXT NOT NULL,
        at INTEGER NOT NULL
     );
     CREATE INDEX sgbridge_login_failures_user ON sgbridge_login_failures (username, at);
     CREATE TABLE sgbridge_signing_keys (
        id INTEGER PRIMARY KEY,
        pem TEXT NOT NULL,
        created_at INTEGER NOT NULL
     );",
];

/// The versions still to apply to a store at `current`, or why not.
pub fn pending(all: &'static [&'static str], current: i64) -> Result<&'static [&'static str], String> {
    let known = all.len() as i64;
    if current > known {
        return Err(format!(
            "the store's schema is version {current}, newer than this sgbridge knows (version {known}): \
             upgrade sgbridge, or point it at another store"
        ));
    }
    Ok(&all[usize::try_from(current).unwrap_or(0)..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_schemas_are_refused() {
        assert_eq!(pending(POSTGRES, 0).unwrap().len(), POSTGRES.len());
        assert!(pending(POSTGRES, POSTGRES.len() as i64).unwrap().is_empty());
        let e = pending(POSTGRES, 99).unwrap_err();
        assert!(e.contains("newer than this sgbridge knows"), "{e}");
    }
}
