-- Take-home boxes: the registry, each load (its secret sealed with the data key), and the
-- compartments with the dose row each one stands for.

CREATE TABLE boxes (
    id          INTEGER PRIMARY KEY,
    site_id     INTEGER NOT NULL REFERENCES sites(id),
    serial      TEXT    NOT NULL UNIQUE,
    state       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE box_loads (
    id               INTEGER PRIMARY KEY,
    box_id           INTEGER NOT NULL REFERENCES boxes(id),
    client_id        INTEGER NOT NULL REFERENCES clients(id),
    site_id          INTEGER NOT NULL REFERENCES sites(id),
    start_day        TEXT    NOT NULL,
    days             INTEGER NOT NULL,
    secret           BLOB,
    code_hour        INTEGER NOT NULL,
    state            TEXT    NOT NULL,   -- loaded, with_client, returned, lost
    withheld_from    TEXT,
    withhold_reason  TEXT,
    reconciliation   TEXT,
    loaded_by        INTEGER NOT NULL REFERENCES users(id),
    loaded_at        INTEGER NOT NULL,
    returned_at      INTEGER
);
CREATE INDEX box_loads_client ON box_loads(client_id, id);
CREATE INDEX box_loads_box ON box_loads(box_id, id);

CREATE TABLE load_compartments (
    load_id  INTEGER NOT NULL REFERENCES box_loads(id),
    idx      INTEGER NOT NULL,
    day      TEXT    NOT NULL,
    mg       INTEGER NOT NULL,
    dose_id  INTEGER NOT NULL REFERENCES doses(id),
    PRIMARY KEY (load_id, idx)
);
