-- An order beyond the induction and titration limits (anxin_domain::clinic::induction) is kept
-- with the limits it goes beyond (JSON list of excesses) and takes effect only once a second
-- prescriber confirms it. An order within the limits has '[]' and never waits.
ALTER TABLE dose_orders ADD COLUMN excesses TEXT NOT NULL DEFAULT '[]';
ALTER TABLE dose_orders ADD COLUMN confirmed_by INTEGER REFERENCES users(id);
ALTER TABLE dose_orders ADD COLUMN confirmed_at INTEGER;
