-- Platform: sites, staff, sessions, the minimal client record and the audit trail.
-- Times are milliseconds since the Unix epoch (UTC); dates are ISO 'YYYY-MM-DD' text.

CREATE TABLE sites (
    id          INTEGER PRIMARY KEY,
    code        TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    site_id        INTEGER NOT NULL REFERENCES sites(id),
    username       TEXT    NOT NULL UNIQUE,
    role           TEXT    NOT NULL,
    password_hash  TEXT    NOT NULL,
    language       TEXT    NOT NULL DEFAULT 'zh-CN',
    active         INTEGER NOT NULL DEFAULT 1,
    failed_logins  INTEGER NOT NULL DEFAULT 0,
    locked_until   INTEGER,
    created_at     INTEGER NOT NULL
);
CREATE INDEX users_site ON users(site_id);

CREATE TABLE sessions (
    token_hash    TEXT    PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token    TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE clients (
    id           INTEGER PRIMARY KEY,
    site_id      INTEGER NOT NULL REFERENCES sites(id),
    uic          TEXT    NOT NULL UNIQUE,
    enrolled_on  TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX clients_site ON clients(site_id);

CREATE TABLE audit_log (
    seq          INTEGER PRIMARY KEY,
    at_ms        INTEGER NOT NULL,
    actor_id     INTEGER,
    actor        TEXT    NOT NULL,
    site_id      INTEGER,
    action       TEXT    NOT NULL,
    record_type  TEXT    NOT NULL,
    record_id    TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    prev_hash    TEXT    NOT NULL,
    hash         TEXT    NOT NULL
);
CREATE INDEX audit_site ON audit_log(site_id, seq);

-- The chain head: last sequence number and hash. Every audited write locks this row first.
CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT    NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
