-- Take-home programme: adopted eligibility policies, eligibility decisions, police (PSB)
-- approval requests, and the disclosure ledger shown on each client's record.

CREATE TABLE takehome_policies (
    id          INTEGER PRIMARY KEY,
    site_id     INTEGER NOT NULL REFERENCES sites(id),
    version     TEXT    NOT NULL,
    body        TEXT    NOT NULL,   -- JSON of anxin_domain::takehome::Policy
    adopted_by  INTEGER REFERENCES users(id),   -- none when adopted from the command line
    adopted_at  INTEGER NOT NULL,
    UNIQUE (site_id, version)
);

CREATE TABLE eligibility_decisions (
    id              INTEGER PRIMARY KEY,
    client_id       INTEGER NOT NULL REFERENCES clients(id),
    day             TEXT    NOT NULL,
    days            INTEGER NOT NULL,
    policy_version  TEXT    NOT NULL,
    criteria        TEXT    NOT NULL,   -- JSON list of criteria with value, threshold, passed
    decided_by      INTEGER NOT NULL REFERENCES users(id),
    created_at      INTEGER NOT NULL
);
CREATE INDEX eligibility_client ON eligibility_decisions(client_id, id);

CREATE TABLE psb_requests (
    id              INTEGER PRIMARY KEY,
    client_id       INTEGER NOT NULL REFERENCES clients(id),
    site_id         INTEGER NOT NULL REFERENCES sites(id),
    requested_days  INTEGER NOT NULL,
    decision_id     INTEGER NOT NULL REFERENCES eligibility_decisions(id),
    consent_id      INTEGER NOT NULL REFERENCES consents(id),
    requested_on    TEXT    NOT NULL,
    expires_on      TEXT    NOT NULL,
    status          TEXT    NOT NULL,   -- pending, approved, denied
    answered_on     TEXT,
    answer_reason   TEXT,
    answered_by     INTEGER REFERENCES users(id),
    requested_by    INTEGER NOT NULL REFERENCES users(id),
    created_at      INTEGER NOT NULL
);
CREATE INDEX psb_requests_site ON psb_requests(site_id, status);
CREATE INDEX psb_requests_client ON psb_requests(client_id, id);

CREATE TABLE disclosures (
    id          INTEGER PRIMARY KEY,
    client_id   INTEGER NOT NULL REFERENCES clients(id),
    site_id     INTEGER NOT NULL REFERENCES sites(id),
    on_day      TEXT    NOT NULL,
    recipient   TEXT    NOT NULL,
    disclosed   TEXT    NOT NULL,
    purpose     TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX disclosures_client ON disclosures(client_id, id);
