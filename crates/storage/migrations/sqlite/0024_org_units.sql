-- Organisation units (issue 19): province → city → district, each with its DHIS2 org-unit code.
-- A centre sits in a city or a district (sites.org_unit_id; NULL: not placed, as before units
-- existed). A CDC or police account may be scoped to a unit and everything below it
-- (users.org_unit_id; NULL: the whole deployment, as before).
CREATE TABLE org_units (
    id          INTEGER PRIMARY KEY,
    code        TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    level       TEXT    NOT NULL CHECK (level IN ('province', 'city', 'district')),
    parent_id   INTEGER REFERENCES org_units(id),
    dhis2_code  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX org_units_parent ON org_units(parent_id);
ALTER TABLE sites ADD COLUMN org_unit_id INTEGER REFERENCES org_units(id);
-- The centre's DHIS2 org-unit code (NULL: its site code).
ALTER TABLE sites ADD COLUMN dhis2_code TEXT;
ALTER TABLE users ADD COLUMN org_unit_id INTEGER REFERENCES org_units(id);
