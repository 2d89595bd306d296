-- Kept in step with migrations/postgres/0023_episodes.sql.
-- Episodes of care (anxin_domain::clinic::episodes): one row per stretch of treatment of a
-- client at a centre, opened by enrolment, readmission, arrival by transfer or return from
-- compulsory isolated treatment, and ended (ended_on: the first day out, as discharged_on) by
-- transfer, discharge, compulsory isolated treatment or death. An ended row is never
-- overwritten nor any row deleted (triggers). Drop-outs are derived by the indicators from the
-- doses with the configured rule, not stored ('dropout' is accepted for a recorded one).
CREATE TABLE episodes (
    id          INTEGER PRIMARY KEY,
    client_id   INTEGER NOT NULL REFERENCES clients(id),
    site_id     INTEGER NOT NULL REFERENCES sites(id),
    started_on  TEXT    NOT NULL,
    ended_on    TEXT,
    end_kind    TEXT CHECK (end_kind IN ('transfer', 'discharge', 'dropout', 'cit', 'death')),
    CHECK ((ended_on IS NULL) = (end_kind IS NULL))
);
CREATE INDEX episodes_client ON episodes(client_id, started_on);
CREATE INDEX episodes_site ON episodes(site_id, started_on);

-- Dose amounts: the milligrams of a client's month of doses beside its bitmaps (the national
-- programme's mean daily dose), kept by the same triggers.
ALTER TABLE dose_months ADD COLUMN mg INTEGER NOT NULL DEFAULT 0;
DROP TRIGGER dose_months_insert;
DROP TRIGGER dose_months_update;
DROP TRIGGER dose_months_delete;
DROP VIEW dose_month_bits;
CREATE VIEW dose_month_bits AS
SELECT substr(day, 1, 7) AS month, client_id,
       ifnull(sum(DISTINCT CASE WHEN rule NOT IN ('take_home_pending', 'take_home_unopened', 'take_home_lost')
                                THEN 1 << (CAST(substr(day, 9, 2) AS INTEGER) - 1) END), 0) AS attended,
       ifnull(sum(DISTINCT CASE WHEN substr(rule, 1, 9) = 'take_home'
                                THEN 1 << (CAST(substr(day, 9, 2) AS INTEGER) - 1) END), 0) AS take_home,
       ifnull(sum(mg), 0) AS mg
FROM doses GROUP BY client_id, substr(day, 1, 7);

UPDATE dose_months SET mg = ifnull((SELECT b.mg FROM dose_month_bits b
    WHERE b.client_id = dose_months.client_id AND b.month = dose_months.month), 0);

CREATE TRIGGER dose_months_insert AFTER INSERT ON doses BEGIN
    INSERT INTO dose_months (month, client_id, attended, take_home, mg)
    VALUES (substr(NEW.day, 1, 7), NEW.client_id,
            CASE WHEN NEW.rule NOT IN ('take_home_pending', 'take_home_unopened', 'take_home_lost')
                 THEN 1 << (CAST(substr(NEW.day, 9, 2) AS INTEGER) - 1) ELSE 0 END,
            CASE WHEN substr(NEW.rule, 1, 9) = 'take_home'
                 THEN 1 << (CAST(substr(NEW.day, 9, 2) AS INTEGER) - 1) ELSE 0 END,
            NEW.mg)
    ON CONFLICT (month, client_id) DO UPDATE
        SET attended = attended | excluded.attended, take_home = take_home | excluded.take_home,
            mg = mg + excluded.mg;
END;

CREATE TRIGGER dose_months_update AFTER UPDATE OF client_id, day, rule, mg ON doses BEGIN
    DELETE FROM dose_months WHERE month = substr(OLD.day, 1, 7) AND client_id = OLD.client_id;
    INSERT INTO dose_months (month, client_id, attended, take_home, mg)
    SELECT month, client_id, attended, take_home, mg FROM dose_month_bits
    WHERE client_id = OLD.client_id AND month = substr(OLD.day, 1, 7);
    DELETE FROM dose_months WHERE month = substr(NEW.day, 1, 7) AND client_id = NEW.client_id;
    INSERT INTO dose_months (month, client_id, attended, take_home, mg)
    SELECT month, client_id, attended, take_home, mg FROM dose_month_bits
    WHERE client_id = NEW.client_id AND month = substr(NEW.day, 1, 7);
END;

CREATE TRIGGER dose_months_delete AFTER DELETE ON doses BEGIN
    DELETE FROM dose_months WHERE month = substr(OLD.day, 1, 7) AND client_id = OLD.client_id;
    INSERT INTO dose_months (month, client_id, attended, take_home, mg)
    SELECT month, client_id, attended, take_home, mg FROM dose_month_bits
    WHERE client_id = OLD.client_id AND month = substr(OLD.day, 1, 7);
END;

-- Backfill: one episode per enrolment and per readmission (client_events), ended by the
-- discharge that followed it (by a death when one is recorded that day); all at the client's
-- present site (earlier transfers are not replayed); an open episode of a client now in
-- compulsory isolated treatment ends on that stage's first day.
INSERT INTO episodes (client_id, site_id, started_on, ended_on, end_kind)
WITH starts AS (
    SELECT id AS client_id, enrolled_on AS day, 0 AS ord FROM clients
    UNION ALL
    SELECT client_id, on_day, id FROM client_events WHERE kind = 'readmit'
), s AS (
    SELECT client_id, day, ROW_NUMBER() OVER (PARTITION BY client_id ORDER BY ord) AS k FROM starts
), e AS (
    SELECT client_id, on_day AS day, ROW_NUMBER() OVER (PARTITION BY client_id ORDER BY id) AS k
    FROM client_events WHERE kind = 'discharge'
)
SELECT s.client_id, c.site_id, s.day, e.day,
       CASE WHEN e.day IS NULL THEN NULL
            WHEN EXISTS (SELECT 1 FROM deaths x WHERE x.client_id = s.client_id AND x.died_on = e.day)
            THEN 'death' ELSE 'discharge' END
FROM s JOIN clients c ON c.id = s.client_id
LEFT JOIN e ON e.client_id = s.client_id AND e.k = s.k
ORDER BY s.client_id, s.k;

UPDATE episodes SET ended_on = (SELECT coalesce(c.stage_since, c.enrolled_on) FROM clients c WHERE c.id = episodes.client_id),
                    end_kind = 'cit'
WHERE ended_on IS NULL
  AND client_id IN (SELECT id FROM clients WHERE stage = 'compulsory_isolated');

UPDATE episodes SET ended_on = (SELECT x.died_on FROM deaths x WHERE x.client_id = episodes.client_id),
                    end_kind = 'death'
WHERE ended_on IS NULL AND client_id IN (SELECT client_id FROM deaths);

CREATE TRIGGER episodes_kept BEFORE UPDATE ON episodes WHEN OLD.ended_on IS NOT NULL BEGIN
    SELECT RAISE(ABORT, 'an ended episode of care is never overwritten');
END;
CREATE TRIGGER episodes_not_deleted BEFORE DELETE ON episodes BEGIN
    SELECT RAISE(ABORT, 'episodes of care are never deleted');
END;
