-- Kept in step with migrations/sqlite/0009_dose_months.sql.
-- A month of a client's doses as two bitmaps, kept by a trigger on every write to `doses`, so
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
       coalesce(bit_or(CASE WHEN rule NOT IN ('take_home_pending', 'take_home_unopened', 'take_home_lost')
                            THEN 1::BIGINT << (substr(day, 9, 2)::INT - 1) END), 0) AS attended,
       coalesce(bit_or(CASE WHEN substr(rule, 1, 9) = 'take_home'
                            THEN 1::BIGINT << (substr(day, 9, 2)::INT - 1) END), 0) AS take_home
FROM doses GROUP BY client_id, substr(day, 1, 7);

CREATE TABLE dose_months (
    month      TEXT    NOT NULL,   -- YYYY-MM
    client_id  BIGINT  NOT NULL REFERENCES clients(id),
    attended   BIGINT  NOT NULL,
    take_home  BIGINT  NOT NULL,
    -- The report reads a month straight from this index (an index-only scan).
    PRIMARY KEY (month, client_id) INCLUDE (attended, take_home)
);

INSERT INTO dose_months (month, client_id, attended, take_home)
SELECT month, client_id, attended, take_home FROM dose_month_bits;

CREATE FUNCTION dose_months_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO dose_months (month, client_id, attended, take_home)
        VALUES (substr(NEW.day, 1, 7), NEW.client_id,
                CASE WHEN NEW.rule NOT IN ('take_home_pending', 'take_home_unopened', 'take_home_lost')
                     THEN 1::BIGINT << (substr(NEW.day, 9, 2)::INT - 1) ELSE 0 END,
                CASE WHEN substr(NEW.rule, 1, 9) = 'take_home'
                     THEN 1::BIGINT << (substr(NEW.day, 9, 2)::INT - 1) ELSE 0 END)
        ON CONFLICT (month, client_id) DO UPDATE
            SET attended = dose_months.attended | EXCLUDED.attended,
                take_home = dose_months.take_home | EXCLUDED.take_home;
        RETURN NULL;
    END IF;
    DELETE FROM dose_months WHERE month = substr(OLD.day, 1, 7) AND client_id = OLD.client_id;
    INSERT INTO dose_months (month, client_id, attended, take_home)
    SELECT month, client_id, attended, take_home FROM dose_month_bits
    WHERE client_id = OLD.client_id AND month = substr(OLD.day, 1, 7);
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM dose_months WHERE month = substr(NEW.day, 1, 7) AND client_id = NEW.client_id;
        INSERT INTO dose_months (month, client_id, attended, take_home)
        SELECT month, client_id, attended, take_home FROM dose_month_bits
        WHERE client_id = NEW.client_id AND month = substr(NEW.day, 1, 7);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER dose_months_follow AFTER INSERT OR DELETE OR UPDATE OF client_id, day, rule
    ON doses FOR EACH ROW EXECUTE FUNCTION dose_months_follow();

-- Only the per-day report read this index; the month table replaces it.
DROP INDEX doses_day_client;

-- The report reads the encounters from the period's first day on, at every site.
CREATE INDEX encounters_day ON encounters(on_day);
