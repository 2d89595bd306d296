-- Kept in step with migrations/postgres/0019_assessments.sql.
-- The intake assessment, versioned: a new one is added and the older ones kept; the latest
-- (highest version) is the current one. Lists are JSON arrays of the domain's codes
-- (anxin_domain::clinic::assessment).
CREATE TABLE assessments (
    id                 INTEGER PRIMARY KEY,
    client_id          INTEGER NOT NULL REFERENCES clients(id),
    version            INTEGER NOT NULL,
    substances         TEXT    NOT NULL,
    main_route         TEXT    NOT NULL,
    ever_injected      INTEGER NOT NULL,
    age_first_use      INTEGER,
    previous_treatment TEXT    NOT NULL,
    hiv                TEXT    NOT NULL,
    hcv                TEXT    NOT NULL,
    medicines          TEXT    NOT NULL,
    recorded_by        INTEGER NOT NULL REFERENCES users(id),
    recorded_at        INTEGER NOT NULL,
    UNIQUE (client_id, version)
);

-- Overdose events (anxin_domain::clinic::outcomes): the day, naloxone given, how it ended.
CREATE TABLE overdoses (
    id          INTEGER PRIMARY KEY,
    client_id   INTEGER NOT NULL REFERENCES clients(id),
    site_id     INTEGER NOT NULL REFERENCES sites(id),
    occurred_on TEXT    NOT NULL,
    naloxone    INTEGER NOT NULL,
    outcome     TEXT    NOT NULL,
    recorded_by INTEGER NOT NULL REFERENCES users(id),
    recorded_at INTEGER NOT NULL
);
CREATE INDEX overdoses_site_day ON overdoses(site_id, occurred_on);
CREATE INDEX overdoses_client ON overdoses(client_id);

-- A client's death: at most one; recording it discharges the client in the same transaction.
CREATE TABLE deaths (
    client_id   INTEGER PRIMARY KEY REFERENCES clients(id),
    site_id     INTEGER NOT NULL REFERENCES sites(id),
    died_on     TEXT    NOT NULL,
    cause       TEXT    NOT NULL,
    overdose_id INTEGER REFERENCES overdoses(id),
    recorded_by INTEGER NOT NULL REFERENCES users(id),
    recorded_at INTEGER NOT NULL
);
CREATE INDEX deaths_site_day ON deaths(site_id, died_on);
