-- The centre calendar: days a centre is closed (a holiday such as the Spring Festival). A closure
-- day is never a missed day for the missed-dose rule; the doses of those days go home in
-- take-home boxes or are arranged elsewhere. One row per site and day.
CREATE TABLE closures (
    id          INTEGER PRIMARY KEY,
    site_id     INTEGER NOT NULL REFERENCES sites(id),
    day         TEXT    NOT NULL,   -- YYYY-MM-DD, centre time
    note        TEXT    NOT NULL,   -- short, e.g. 春节
    added_by    INTEGER REFERENCES users(id),
    added_at    INTEGER NOT NULL,
    UNIQUE (site_id, day)
);
