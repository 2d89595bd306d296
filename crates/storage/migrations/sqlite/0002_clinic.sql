-- Clinic core: the full client record (encrypted identity), agreements, consents, dose orders,
-- doses, prescriber reviews, guest dosing, urine tests, methadone stock.

ALTER TABLE clients ADD COLUMN stage TEXT NOT NULL DEFAULT 'voluntary';
ALTER TABLE clients ADD COLUMN stage_since TEXT;
ALTER TABLE clients ADD COLUMN discharged_on TEXT;
ALTER TABLE clients ADD COLUMN discharge_reason TEXT;
-- XChaCha20-Poly1305 ciphertext of the identifying fields (JSON), bound to the client's id.
ALTER TABLE clients ADD COLUMN identity BLOB;
-- Keyed hash of the normalised full name, for search by name without decrypting every record.
ALTER TABLE clients ADD COLUMN name_index TEXT;
CREATE INDEX clients_name_index ON clients(name_index);

CREATE TABLE client_events (
    id          INTEGER PRIMARY KEY,
    client_id   INTEGER NOT NULL REFERENCES clients(id),
    kind        TEXT    NOT NULL,   -- stage, discharge, transfer, readmit
    detail      TEXT    NOT NULL,
    on_day      TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX client_events_client ON client_events(client_id, id);

CREATE TABLE agreements (
    id              INTEGER PRIMARY KEY,
    client_id       INTEGER NOT NULL REFERENCES clients(id),
    version         INTEGER NOT NULL,
    method          TEXT    NOT NULL,
    duration_months INTEGER NOT NULL,
    rules           TEXT    NOT NULL,
    signed_by       TEXT    NOT NULL,   -- client or guardian
    guardian_name   TEXT,
    prescriber_id   INTEGER NOT NULL REFERENCES users(id),
    signed_on       TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (client_id, version)
);

CREATE TABLE consents (
    id              INTEGER PRIMARY KEY,
    client_id       INTEGER NOT NULL REFERENCES clients(id),
    purpose         TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    scope           TEXT    NOT NULL,
    given_on        TEXT    NOT NULL,
    expires_on      TEXT    NOT NULL,
    revoked_on      TEXT,
    revoked_reason  TEXT,
    recorded_by     INTEGER NOT NULL REFERENCES users(id),
    created_at      INTEGER NOT NULL
);
CREATE INDEX consents_client ON consents(client_id);

CREATE TABLE dose_orders (
    id             INTEGER PRIMARY KEY,
    client_id      INTEGER NOT NULL REFERENCES clients(id),
    kind           TEXT    NOT NULL,
    start_date     TEXT    NOT NULL,
    mg             INTEGER NOT NULL,
    steps          TEXT    NOT NULL,   -- JSON [{"from": "YYYY-MM-DD", "mg": n}]
    split          INTEGER NOT NULL,
    reason         TEXT    NOT NULL,
    prescriber_id  INTEGER NOT NULL REFERENCES users(id),
    created_at     INTEGER NOT NULL
);
CREATE INDEX dose_orders_client ON dose_orders(client_id, start_date);

CREATE TABLE doses (
    id          INTEGER PRIMARY KEY,
    client_id   INTEGER NOT NULL REFERENCES clients(id),
    day         TEXT    NOT NULL,
    portion     INTEGER NOT NULL,
    mg          INTEGER NOT NULL,
    site_id     INTEGER NOT NULL REFERENCES sites(id),
    guest       INTEGER NOT NULL,
    rule        TEXT    NOT NULL,
    given_by    INTEGER NOT NULL REFERENCES users(id),
    given_at    INTEGER NOT NULL,
    UNIQUE (client_id, day, portion)
);
CREATE INDEX doses_site_day ON doses(site_id, day);

CREATE TABLE reviews (
    id             INTEGER PRIMARY KEY,
    client_id      INTEGER NOT NULL REFERENCES clients(id),
    day            TEXT    NOT NULL,
    prescriber_id  INTEGER NOT NULL REFERENCES users(id),
    note           TEXT    NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX reviews_client ON reviews(client_id, day);

CREATE TABLE guest_dosing (
    id            INTEGER PRIMARY KEY,
    client_id     INTEGER NOT NULL REFERENCES clients(id),
    host_site_id  INTEGER NOT NULL REFERENCES sites(id),
    from_day      TEXT    NOT NULL,
    to_day        TEXT    NOT NULL,
    created_by    INTEGER NOT NULL REFERENCES users(id),
    created_at    INTEGER NOT NULL
);
CREATE INDEX guest_dosing_host ON guest_dosing(host_site_id, from_day);

CREATE TABLE urine_tests (
    id           INTEGER PRIMARY KEY,
    client_id    INTEGER NOT NULL REFERENCES clients(id),
    collected_on TEXT    NOT NULL,
    observed     INTEGER NOT NULL,
    outcome      TEXT    NOT NULL,   -- JSON of anxin_domain::clinic::urine::Outcome
    negative     INTEGER NOT NULL,
    reason       TEXT    NOT NULL,
    recorded_by  INTEGER NOT NULL REFERENCES users(id),
    created_at   INTEGER NOT NULL
);
CREATE INDEX urine_tests_client ON urine_tests(client_id, collected_on);

CREATE TABLE stock_receipts (
    id                       INTEGER PRIMARY KEY,
    site_id                  INTEGER NOT NULL REFERENCES sites(id),
    received_on              TEXT    NOT NULL,
    bottles                  INTEGER NOT NULL,
    ml_per_bottle            REAL    NOT NULL,
    concentration_mg_per_ml  REAL    NOT NULL,
    lot                      TEXT    NOT NULL,
    received_by              INTEGER NOT NULL REFERENCES users(id),
    created_at               INTEGER NOT NULL
);

CREATE TABLE stock_closeouts (
    id           INTEGER PRIMARY KEY,
    site_id      INTEGER NOT NULL REFERENCES sites(id),
    day          TEXT    NOT NULL,
    expected_ml  REAL    NOT NULL,
    measured_ml  REAL    NOT NULL,
    variance_ml  REAL    NOT NULL,
    reason       TEXT    NOT NULL,
    closed_by    INTEGER NOT NULL REFERENCES users(id),
    created_at   INTEGER NOT NULL,
    UNIQUE (site_id, day)
);
