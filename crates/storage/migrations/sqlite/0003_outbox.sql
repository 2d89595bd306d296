-- The SMS outbox: one row per message, found again by its idempotency key (e.g. box load +
-- compartment), and every delivery report received. Times are milliseconds since the epoch.
-- States: queued, sending, uncertain, sent, delivered, failed, expired (anxin_domain::sms).

CREATE TABLE sms_outbox (
    id               INTEGER PRIMARY KEY,
    idempotency_key  TEXT    NOT NULL UNIQUE,
    client_id        INTEGER,
    site_id          INTEGER NOT NULL REFERENCES sites(id),
    recipient        TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    state            TEXT    NOT NULL DEFAULT 'queued',
    attempts         INTEGER NOT NULL DEFAULT 0,
    not_before       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    claim_owner      TEXT,
    lease_until      INTEGER,
    gateway_id       TEXT,
    last_error       TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    sent_at          INTEGER,
    final_at         INTEGER
);
CREATE INDEX sms_outbox_due ON sms_outbox(state, next_attempt_at);
CREATE INDEX sms_outbox_site ON sms_outbox(site_id, id);
CREATE INDEX sms_outbox_client ON sms_outbox(client_id, id);
CREATE INDEX sms_outbox_gateway ON sms_outbox(gateway_id);

CREATE TABLE sms_reports (
    id           INTEGER PRIMARY KEY,
    outbox_id    INTEGER NOT NULL REFERENCES sms_outbox(id),
    attempt      INTEGER NOT NULL,
    report       TEXT    NOT NULL,
    gateway_id   TEXT,
    applied      INTEGER NOT NULL,
    received_at  INTEGER NOT NULL
);
CREATE INDEX sms_reports_outbox ON sms_reports(outbox_id, id);

-- The key that signs delivery-report URLs when the configuration names none (one per deployment,
-- so every server of a PostgreSQL deployment accepts the reports of the others' messages).
CREATE TABLE sms_secret (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    dlr_key  TEXT    NOT NULL
);
