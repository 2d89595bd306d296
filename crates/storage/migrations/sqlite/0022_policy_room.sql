-- The joint policy room (anxin_domain::policy_room): take-home policy proposals of a site,
-- written by its manager, a CDC analyst or a police officer, and the three parties'
-- signatures. A proposal signed by all three decides from `effective_from` on; a signed one is
-- never edited, only superseded by a new proposal.
CREATE TABLE policy_proposals (
    id              INTEGER PRIMARY KEY,
    site_id         INTEGER NOT NULL REFERENCES sites(id),
    version         TEXT    NOT NULL,
    body            TEXT    NOT NULL,   -- JSON of anxin_domain::takehome::Policy
    rationale       TEXT    NOT NULL,
    effective_from  TEXT    NOT NULL,
    proposed_by     INTEGER NOT NULL REFERENCES users(id),
    proposed_at     INTEGER NOT NULL,
    UNIQUE (site_id, version)
);

CREATE TABLE policy_signatures (
    id           INTEGER PRIMARY KEY,
    proposal_id  INTEGER NOT NULL REFERENCES policy_proposals(id),
    party        TEXT    NOT NULL,   -- cdc, police, centre
    signed_by    INTEGER NOT NULL REFERENCES users(id),
    signed_at    INTEGER NOT NULL,
    comment      TEXT    NOT NULL,
    UNIQUE (proposal_id, party)
);
