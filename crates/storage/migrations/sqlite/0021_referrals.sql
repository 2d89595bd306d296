-- Police e-referral (anxin_domain::referral): an officer's code on paper; the centre marks it
-- arrived (with the person's agreement) and enrolled. Only the code's keyed hash rests here.
-- The client is linked at enrolment and never leaves the centre: the police read the state
-- words and days of their station's referrals (station_site_id: the officer's site).
CREATE TABLE referrals (
    id               INTEGER PRIMARY KEY,
    code_hash        TEXT    NOT NULL UNIQUE,
    issued_by        INTEGER NOT NULL REFERENCES users(id),
    station_site_id  INTEGER NOT NULL REFERENCES sites(id),
    issued_on        TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    arrived_on       TEXT,
    arrived_site_id  INTEGER REFERENCES sites(id),
    enrolled_on      TEXT,
    client_id        INTEGER REFERENCES clients(id),
    created_at       INTEGER NOT NULL
);
CREATE INDEX referrals_station ON referrals(station_site_id, id);
CREATE INDEX referrals_arrived ON referrals(arrived_site_id, state);
