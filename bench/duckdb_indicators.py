#!/usr/bin/env python3
"""The same monthly figures as `indicator_bench --report`, computed by DuckDB from its CSV export.

Usage: bench/duckdb_indicators.py CSV_DIR FROM TO   (dates YYYY-MM-DD, both included)

Loads clients.csv, doses.csv (a year of doses before the period and the period) and
urine_month.csv (timed as "load"), then computes, with the definitions of
anxin_domain::indicators, the drop-out rule of anxin_domain::clinic::episodes (30 days without a
dose) and the row filters of Store::indicator_inputs, the clients in MMT on the last day, mean
attendance (client-days / clients), take-home participation, the urine-negative rate and the
drop-outs of the period (timed as "query": a warm-up, then 5 runs, median),
and prints a `FIGURES` line in the same format as the Rust side so the two can be compared as text.
"""
import statistics, sys, time
from datetime import date

import duckdb

# anxin_domain::clinic::episodes::DEFAULT_DROPOUT_DAYS
DROPOUT_DAYS = 8

FIGURES_SQL = """
WITH
-- Store::indicator_inputs: clients enrolled by the end, not discharged 12+ months before.
idx AS (
  SELECT * FROM clients
  WHERE enrolled_on <= $to AND (discharged_on IS NULL OR discharged_on >= $back)
),
-- The drop-out rule (anxin_domain::clinic::episodes): every day with any dose inside the
-- enrolment, read from $k (the first of the month a year before the period) to the period's end.
dd AS (
  SELECT DISTINCT d.client_id, d.day
  FROM doses d JOIN idx c ON c.id = d.client_id
  WHERE d.day >= $k AND d.day <= $to AND d.day >= c.enrolled_on
    AND (c.discharged_on IS NULL OR d.day < c.discharged_on)
),
-- The points the missed days count from: the day before counting starts, and each dose day.
pts AS (
  SELECT id AS client_id, greatest(enrolled_on, $k) - 1 AS day FROM idx
  UNION ALL
  SELECT client_id, day FROM dd
),
-- The last point on or before the period's first and last days.
last_at AS (
  SELECT client_id,
         max(day) FILTER (WHERE day <= $from) AS p_from,
         max(day) AS p_to
  FROM pts GROUP BY client_id
),
-- In MMT on the last day: enrolled, not discharged, and fewer than $n days since the last dose.
mmt AS (
  SELECT c.id FROM idx c JOIN last_at l ON l.client_id = c.id
  WHERE (c.discharged_on IS NULL OR c.discharged_on > $to) AND $to - l.p_to < $n
),
-- In treatment on some day of the period: enrolled in it, or in MMT on its first day, or dosed in it.
in_period AS (
  SELECT c.* FROM idx c JOIN last_at l ON l.client_id = c.id
  WHERE (c.discharged_on IS NULL OR c.discharged_on > $from)
    AND (c.enrolled_on >= $from OR $from - l.p_from < $n
         OR EXISTS (SELECT 1 FROM dd WHERE dd.client_id = c.id AND dd.day >= $from))
),
att AS (
  SELECT count(*) AS n FROM (
    SELECT DISTINCT d.client_id, d.day
    FROM doses d JOIN in_period c ON c.id = d.client_id
    WHERE d.day BETWEEN $from AND $to
      AND d.rule NOT IN ('take_home_pending', 'take_home_unopened', 'take_home_lost')
      AND c.enrolled_on <= d.day AND (c.discharged_on IS NULL OR c.discharged_on > d.day)
  )
),
th AS (
  SELECT count(*) AS n FROM mmt m
  WHERE EXISTS (SELECT 1 FROM doses d WHERE d.client_id = m.id
                AND d.day BETWEEN $from AND $to AND d.rule LIKE 'take_home%')
),
ur AS (
  SELECT count(*) AS tests, count(*) FILTER (WHERE u.negative <> 0) AS neg
  FROM urine u JOIN idx c ON c.id = u.client_id
  WHERE u.collected_on BETWEEN $from AND $to
),
-- Drop-outs of the period: a point followed by $n days without a dose, the $n-th in the period.
gaps AS (
  SELECT client_id, day, lead(day) OVER (PARTITION BY client_id ORDER BY day) AS nxt FROM pts
),
drops AS (
  SELECT count(*) AS n FROM gaps g JOIN idx c ON c.id = g.client_id
  WHERE g.day + $n BETWEEN $from AND $to AND (g.nxt IS NULL OR g.nxt > g.day + $n)
    AND (c.discharged_on IS NULL OR g.day + $n < c.discharged_on)
)
SELECT (SELECT count(*) FROM mmt), (SELECT n FROM att), (SELECT count(*) FROM in_period),
       (SELECT n FROM th), ur.neg, ur.tests, (SELECT n FROM drops)
FROM ur
"""


def main():
    csv_dir, frm, to = sys.argv[1], date.fromisoformat(sys.argv[2]), date.fromisoformat(sys.argv[3])
    back = frm.replace(year=frm.year - 1)
    k = back.replace(day=1)
    con = duckdb.connect()  # in memory
    t = time.perf_counter()
    con.execute(f"""CREATE TABLE clients AS SELECT * FROM read_csv('{csv_dir}/clients.csv', header=true,
        columns={{'id': 'BIGINT', 'enrolled_on': 'DATE', 'discharged_on': 'DATE', 'sex': 'VARCHAR',
                  'birth_year': 'INTEGER'}})""")
    con.execute(f"""CREATE TABLE doses AS SELECT * FROM read_csv('{csv_dir}/doses.csv', header=true,
        columns={{'client_id': 'BIGINT', 'day': 'DATE', 'rule': 'VARCHAR'}})""")
    con.execute(f"""CREATE TABLE urine AS SELECT * FROM read_csv('{csv_dir}/urine_month.csv', header=true,
        columns={{'client_id': 'BIGINT', 'collected_on': 'DATE', 'negative': 'BIGINT'}})""")
    load_ms = (time.perf_counter() - t) * 1e3
    n = con.execute("SELECT (SELECT count(*) FROM clients), (SELECT count(*) FROM doses), "
                    "(SELECT count(*) FROM urine)").fetchone()
    print(f"DUCKDB {duckdb.__version__} load {load_ms:.0f} ms ({n[0]} clients, {n[1]} dose rows, {n[2]} urine rows)")
    params = {"from": frm, "to": to, "back": back, "k": k, "n": DROPOUT_DAYS}
    times, row = [], None
    # Run 0 warms up, runs 1-5 are timed: as on the Rust side.
    for run in range(0, 6):
        t = time.perf_counter()
        row = con.execute(FIGURES_SQL, params).fetchone()
        ms = (time.perf_counter() - t) * 1e3
        if run > 0:
            times.append(ms)
        print(f"  run {run}: query {ms:.1f} ms" + (" (warm-up)" if run == 0 else ""))
    print(f"DUCKDB query median {statistics.median(times):.1f} ms (5 runs after a warm-up)")
    mmt, att_days, att_clients, th, neg, tests, drops = row
    print(f"FIGURES mmt_clients={mmt} attendance_days={att_days} attendance_clients={att_clients} "
          f"take_home={th}/{mmt} urine_negative={neg}/{tests} dropouts={drops}")


if __name__ == "__main__":
    main()
