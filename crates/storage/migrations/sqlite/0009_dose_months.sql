-- Kept in step with migrations/postgres/0009_dose_months.sql.
-- A month of a client's doses as two bitmaps, kept by triggers on every write to `doses`, so
-- the indicator report reads one row per client and month instead of every dose
-- (Store::indicator_inputs). Bit d-1 stands for day d of the month:
--   attended   a dose that day that is not an unconfirmed take-home (take_home_pending,
--              take_home_unopened, take_home_lost): the report's attendance;
--   take_home  a take-home dose that day (any rule starting with take_home).
-- An insert can only add a day, so it ORs its bit in; an update or a delete recomputes the
-- client's month from `doses` through the view below.

-- The bitmaps computed from the doses themselves (the definition; the table is its cache).
CREATE VIEW dose_month_bits AS
SELECT substr(day, 1, 7) AS month, client_id,
       ifnull(sum(DISTINCT CASE WHEN rule NOT IN ('take_home_pending', 'take_home_unopened', 'take_home_lost')
                                THEN 1 << (CAST(substr(day, 9, 2) AS INTEGER) - 1) END), 0) AS attended,
       ifnull(sum(DISTINCT CASE WHEN substr(rule, 1, 9) = 'take_home'
                                THEN 1 << (CAST(substr(day, 9, 2) AS INTEGER) - 1) END), 0) AS take_home
FROM doses GROUP BY client_id, substr(day, 1, 7);

CREATE TABLE dose_months (
    month      TEXT    NOT NULL,   -- YYYY-MM
    client_id  INTEGER NOT NULL REFERENCES clients(id),
    attended   INTEGER NOT NULL,
    take_home  INTEGER NOT NULL,
    PRIMARY KEY (month, client_id)
) WITHOUT ROWID;

INSERT INTO dose_months (month, client_id, attended, take_home)
SELECT month, client_id, attended, take_home FROM dose_month_bits;

CREATE TRIGGER dose_months_insert AFTER INSERT ON doses BEGIN
    INSERT INTO dose_months (month, client_id, attended, take_home)
    VALUES (substr(NEW.day, 1, 7), NEW.client_id,
            CASE WHEN NEW.rule NOT IN ('take_home_pending', 'take_home_unopened', 'take_home_lost')
                 THEN 1 << (CAST(substr(NEW.day, 9, 2) AS INTEGER) - 1) ELSE 0 END,
            CASE WHEN substr(NEW.rule, 1, 9) = 'take_home'
                 THEN 1 << (CAST(substr(NEW.day, 9, 2) AS INTEGER) - 1) ELSE 0 END)
    ON CONFLICT (month, client_id) DO UPDATE
        SET attended = attended | excluded.attended, take_home = take_home | excluded.take_home;
END;

CREATE TRIGGER dose_months_update AFTER UPDATE OF client_id, day, rule ON doses BEGIN
    DELETE FROM dose_months WHERE month = substr(OLD.day, 1, 7) AND client_id = OLD.client_id;
    INSERT INTO dose_months (month, client_id, attended, take_home)
    SELECT month, client_id, attended, take_home FROM dose_month_bits
    WHERE client_id = OLD.client_id AND month = substr(OLD.day, 1, 7);
    DELETE FROM dose_months WHERE month = substr(NEW.day, 1, 7) AND client_id = NEW.client_id;
    INSERT INTO dose_months (month, client_id, attended, take_home)
    SELECT month, client_id, attended, take_home FROM dose_month_bits
    WHERE client_id = NEW.client_id AND month = substr(NEW.day, 1, 7);
END;

CREATE TRIGGER dose_months_delete AFTER DELETE ON doses BEGIN
    DELETE FROM dose_months WHERE month = substr(OLD.day, 1, 7) AND client_id = OLD.client_id;
    INSERT INTO dose_months (month, client_id, attended, take_home)
    SELECT month, client_id, attended, take_home FROM dose_month_bits
    WHERE client_id = OLD.client_id AND month = substr(OLD.day, 1, 7);
END;

-- Only the per-day report read this index; the month table replaces it.
DROP INDEX doses_day_client;

-- The report reads the encounters from the period's first day on, at every site.
CREATE INDEX encounters_day ON encounters(on_day);
