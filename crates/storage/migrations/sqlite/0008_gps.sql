-- Box GPS (optional, with the client's consent): the tracker fitted to a box, the home zone of a
-- load, each box's presence state, raw positions (short-lived), and alarms (kept).

CREATE TABLE trackers (
    imei        TEXT    PRIMARY KEY,
    box_id      INTEGER NOT NULL UNIQUE REFERENCES boxes(id),
    site_id     INTEGER NOT NULL REFERENCES sites(id),
    created_at  INTEGER NOT NULL
);

-- One zone per load, set at hand-out under a consent; removed when the box comes back.
CREATE TABLE home_zones (
    load_id     INTEGER PRIMARY KEY REFERENCES box_loads(id),
    box_id      INTEGER NOT NULL REFERENCES boxes(id),
    client_id   INTEGER NOT NULL REFERENCES clients(id),
    consent_id  INTEGER NOT NULL REFERENCES consents(id),
    zone        TEXT    NOT NULL,   -- JSON, anxin_domain::gps::Zone
    set_by      INTEGER NOT NULL REFERENCES users(id),
    set_at      INTEGER NOT NULL
);
CREATE INDEX home_zones_box ON home_zones(box_id);

-- The presence state machine of a tracked box (at_home / away / unknown) and its last report.
CREATE TABLE box_presence (
    box_id            INTEGER PRIMARY KEY REFERENCES boxes(id),
    load_id           INTEGER NOT NULL,
    presence          TEXT    NOT NULL,
    since_ms          INTEGER NOT NULL,
    last_fix_ms       INTEGER,
    outside_fixes     INTEGER NOT NULL,
    first_outside_ms  INTEGER,
    battery           INTEGER,
    online            INTEGER NOT NULL,
    last_seen_ms      INTEGER NOT NULL
);

-- Raw fixes: only of boxes out under a home zone; deleted after the retention period and when
-- the box is returned.
CREATE TABLE positions (
    id           INTEGER PRIMARY KEY,
    box_id       INTEGER NOT NULL,
    at_ms        INTEGER NOT NULL,
    lat          REAL    NOT NULL,
    lon          REAL    NOT NULL,
    received_ms  INTEGER NOT NULL
);
CREATE INDEX positions_box ON positions(box_id, at_ms);
CREATE INDEX positions_received ON positions(received_ms);

-- Alarms: left home, tamper, removal, low battery, offline, sos. Kept when positions go.
CREATE TABLE box_alarms (
    id               INTEGER PRIMARY KEY,
    box_id           INTEGER NOT NULL REFERENCES boxes(id),
    site_id          INTEGER NOT NULL REFERENCES sites(id),
    load_id          INTEGER,
    kind             TEXT    NOT NULL,
    at_ms            INTEGER NOT NULL,
    lat              REAL,
    lon              REAL,
    acknowledged_by  INTEGER REFERENCES users(id),
    acknowledged_at  INTEGER
);
CREATE INDEX box_alarms_open ON box_alarms(site_id, acknowledged_at, at_ms);
