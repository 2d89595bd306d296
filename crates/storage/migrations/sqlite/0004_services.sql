-- The one-stop shop: service encounters (enrolled clients or anonymous outreach contacts known
-- only by a UIC), therapeutic-community episodes, the DHIS2 mapping of indicators, and the sex
-- and birth year that indicators are disaggregated by (both optional: missing is "unknown").

ALTER TABLE clients ADD COLUMN sex TEXT;
ALTER TABLE clients ADD COLUMN birth_year INTEGER;

CREATE TABLE encounters (
    id           INTEGER PRIMARY KEY,
    site_id      INTEGER NOT NULL REFERENCES sites(id),
    client_id    INTEGER REFERENCES clients(id),
    uic          TEXT,               -- anonymous contacts only (client_id NULL)
    sex          TEXT,               -- anonymous contacts only
    birth_year   INTEGER,            -- anonymous contacts only
    on_day       TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    detail       TEXT    NOT NULL,   -- JSON of anxin_domain::services::Service
    recorded_by  INTEGER NOT NULL REFERENCES users(id),
    created_at   INTEGER NOT NULL,
    CHECK ((client_id IS NULL) <> (uic IS NULL))
);
CREATE INDEX encounters_site_day ON encounters(site_id, on_day);
CREATE INDEX encounters_client ON encounters(client_id);

CREATE TABLE tc_episodes (
    id                  INTEGER PRIMARY KEY,
    site_id             INTEGER NOT NULL REFERENCES sites(id),
    client_id           INTEGER NOT NULL REFERENCES clients(id),
    admitted_on         TEXT    NOT NULL,
    phase               TEXT    NOT NULL,
    left_on             TEXT,
    exit_kind           TEXT,
    urine_negative_6m   INTEGER,
    urine_negative_12m  INTEGER,
    recorded_by         INTEGER NOT NULL REFERENCES users(id),
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX tc_episodes_site ON tc_episodes(site_id);
CREATE INDEX tc_episodes_client ON tc_episodes(client_id);

CREATE TABLE dhis2_mapping (
    indicator              TEXT NOT NULL,
    sex                    TEXT NOT NULL,   -- male, female, unknown, or 'total'
    age_band               TEXT NOT NULL,   -- under_25, 25_plus, unknown, or 'total'
    data_element           TEXT NOT NULL,
    category_option_combo  TEXT NOT NULL,
    PRIMARY KEY (indicator, sex, age_band)
);
