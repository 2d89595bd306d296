//! Benchmark of the monthly indicator report at province size (the indicators issue).
//!
//! ```text
//! cargo run --release -p anxin-server --example indicator_bench -- \
//!     --url sqlite:///tmp/anxin_bench.sqlite3?mode=rwc --generate --report --export-csv /tmp/csv
//! ```
//!
//! `--generate` fills a fresh database with set-based SQL (20 sites, 50,000 clients, one year of
//! daily doses at ~85% attendance, ~200k urine tests, ~100k encounters); `--report` times
//! `Store::indicator_inputs(None, month)` + the drop-out rule (30 days, as of `--today`) +
//! `indicators::compute` for the last full month (a warm-up, then 5 runs, median) and prints a
//! `FIGURES` line; `--export-csv DIR` writes `clients.csv`, `doses.csv` (every dose from the
//! first of the month a year before the report's month: what the drop-out rule reads) and
//! `urine_month.csv` for the DuckDB side (bench/duckdb_indicators.py).
//! Options: `--today YYYY-MM-DD` (default: today, UTC), `--clients N` (default 50000).
//! Timings are printed only; nothing here is a test.

use std::error::Error;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Instant;

use anxin_domain::clinic::episodes::DEFAULT_DROPOUT_DAYS;
use anxin_domain::indicators::{compute, Figure, Period};
use anxin_storage::{Backend, Store};
use chrono::{Datelike, NaiveDate, Utc};
use sqlx::AnyConnection;
use sqlx::{Connection, Row};

type Res<T> = Result<T, Box<dyn Error>>;

struct Args {
    url: String,
    generate: bool,
    report: bool,
    export: Option<String>,
    today: NaiveDate,
    clients: i64,
}

fn args() -> Res<Args> {
    let mut a = Args {
        url: String::new(),
        generate: false,
        report: false,
        export: None,
        today: Utc::now().date_naive(),
        clients: 50_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--url" => a.url = value()?,
            "--generate" => a.generate = true,
            "--report" => a.report = true,
            "--export-csv" => a.export = Some(value()?),
            "--today" => a.today = value()?.parse()?,
            "--clients" => a.clients = value()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if a.url.is_empty() {
        return Err("--url is required".into());
    }
    Ok(a)
}

/// The last full calendar month before `today`.
fn last_month(today: NaiveDate) -> Res<Period> {
    let first_this = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).ok_or("bad date")?;
    let to = first_this.pred_opt().ok_or("bad date")?;
    let from = NaiveDate::from_ymd_opt(to.year(), to.month(), 1).ok_or("bad date")?;
    Ok(Period::new(from, to)?)
}

/// Runs one statement (no parameters) and answers the rows it changed.
async fn exec(c: &mut AnyConnection, sql: &str) -> Res<u64> {
    Ok(sqlx::raw_sql(sql).execute(c).await?.rows_affected())
}

async fn generate(store: &Store, today: NaiveDate, n_clients: i64) -> Res<()> {
    let started = Instant::now();
    let pg = store.backend() == Backend::Postgres;
    let mut conn = store.pool().acquire().await?;
    // Generator-only speed settings on this one connection (the temp tables live on it too).
    if pg {
        // Skips the per-row foreign-key triggers during the bulk load (superuser only).
        exec(&mut conn, "SET session_replication_role = replica").await?;
        exec(&mut conn,
            format!(
                "CREATE TEMP TABLE bench_days AS SELECT n, to_char(DATE '{today}' - n, 'YYYY-MM-DD') AS day \
                 FROM generate_series(1, 730) AS n"
            )
            .as_str(),
        )
        .await?;
        exec(&mut conn,
            format!(
                "CREATE TEMP TABLE bench_ids AS SELECT n::BIGINT AS n FROM generate_series(1, {n_clients}) AS n"
            )
            .as_str(),
        )
        .await?;
    } else {
        exec(&mut conn, "PRAGMA synchronous = OFF").await?;
        exec(&mut conn, "PRAGMA foreign_keys = OFF").await?;
        exec(&mut conn, "PRAGMA cache_size = -1000000").await?;
        exec(
            &mut conn,
            format!(
                "CREATE TEMP TABLE bench_days AS WITH RECURSIVE r(n) AS \
                 (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 730) \
                 SELECT n, date('{today}', '-' || n || ' days') AS day FROM r"
            )
            .as_str(),
        )
        .await?;
        exec(
            &mut conn,
            format!(
                "CREATE TEMP TABLE bench_ids AS WITH RECURSIVE r(n) AS \
                 (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < {n_clients}) SELECT n FROM r"
            )
            .as_str(),
        )
        .await?;
    }
    let mut tx = conn.begin().await?;
    let step = |name: &str, t: Instant| println!("  {name}: {:.1} s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    exec(
        &mut tx,
        "INSERT INTO sites (id, code, name, created_at) \
         SELECT n, 'BENCH' || n, 'Bench centre ' || n, 0 FROM bench_days WHERE n <= 20",
    )
    .await?;
    // One nurse per site, with the site's id: doses and tests are "given by" them.
    exec(
        &mut tx,
        "INSERT INTO users (id, site_id, username, role, password_hash, created_at) \
         SELECT n, n, 'bench' || n, 'nurse', 'x', 0 FROM bench_days WHERE n <= 20",
    )
    .await?;
    // Enrolled over the past two years (90% more than a year ago), 2% discharged in the last
    // 180 days; sex male/female/unknown 3:1:1; birth years 1960-2004, a few unknown.
    exec(
        &mut tx,
        "INSERT INTO clients (id, site_id, uic, enrolled_on, created_at, sex, birth_year, \
         discharged_on, discharge_reason) \
         SELECT g.n, 1 + g.n % 20, 'BENCH' || g.n, e.day, 0, \
           CASE WHEN g.n % 5 < 3 THEN 'male' WHEN g.n % 5 = 3 THEN 'female' END, \
           CASE WHEN g.n % 97 = 0 THEN NULL ELSE 1960 + g.n % 45 END, \
           dd.day, CASE WHEN dd.day IS NULL THEN NULL ELSE 'bench' END \
         FROM bench_ids g \
         JOIN bench_days e ON e.n = CASE WHEN g.n % 10 < 9 THEN 366 + (g.n * 7919) % 365 \
                                        ELSE 1 + (g.n * 7919) % 365 END \
         LEFT JOIN bench_days dd ON g.n % 50 = 0 AND dd.n = 1 + (g.n * 31) % 180",
    )
    .await?;
    step("sites, users, clients", t);

    let t = Instant::now();
    exec(&mut tx, "DROP INDEX doses_site_day").await?;
    // ~85% attendance while in treatment over the past 365 days; 5 of those 85 take-home.
    let r = exec(&mut tx,
            "INSERT INTO doses (client_id, day, portion, mg, site_id, guest, rule, given_by, given_at) \
             SELECT c.id, d.day, 1, 40 + c.id % 60, c.site_id, 0, \
               CASE WHEN (c.id * 2654435761 + d.n * 40503) % 100 >= 80 THEN 'take_home' \
                    ELSE 'normal' END, \
               c.site_id, 1700000000000 + d.n \
             FROM clients c JOIN bench_days d ON d.n <= 365 AND d.day >= c.enrolled_on \
               AND (c.discharged_on IS NULL OR d.day < c.discharged_on) \
             WHERE (c.id * 2654435761 + d.n * 40503) % 100 < 85 \
             ORDER BY c.id, d.n DESC",
        )
        .await?;
    println!("  doses: {r} rows");
    exec(
        &mut tx,
        "CREATE INDEX doses_site_day ON doses(site_id, day)",
    )
    .await?;
    step("doses (with index rebuild)", t);

    let t = Instant::now();
    let r = exec(
        &mut tx,
        "INSERT INTO urine_tests (client_id, collected_on, observed, outcome, negative, reason, \
             recorded_by, created_at) \
             SELECT c.id, d.day, 1, '{}', \
               CASE WHEN (c.id * 13 + d.n * 7) % 10 < 7 THEN 1 ELSE 0 END, '', c.site_id, 0 \
             FROM clients c JOIN bench_days d ON d.n <= 365 AND d.day >= c.enrolled_on \
               AND (c.discharged_on IS NULL OR d.day < c.discharged_on) \
             WHERE (c.id * 7919 + d.n * 104729) % 1000 < 12 \
             ORDER BY d.day, c.id",
    )
    .await?;
    println!("  urine_tests: {r} rows");
    // Tests and encounters go in in day order, as a centre records them.
    // Two encounters per client over the year: needle exchanges and HIV tests, a third of them
    // with anonymous contacts (UIC, sex and birth year on the encounter).
    let r = exec(
        &mut tx,
        "INSERT INTO encounters (site_id, client_id, uic, sex, birth_year, on_day, kind, detail, \
             recorded_by, created_at) \
             SELECT c.site_id, \
               CASE WHEN c.id % 3 = 0 THEN NULL ELSE c.id END, \
               CASE WHEN c.id % 3 = 0 THEN 'ANON' || c.id || 'K' || k.n END, \
               CASE WHEN c.id % 3 = 0 THEN c.sex END, \
               CASE WHEN c.id % 3 = 0 THEN c.birth_year END, \
               d.day, \
               CASE WHEN (c.id + k.n) % 2 = 0 THEN 'needle_exchange' ELSE 'hiv_test' END, \
               CASE WHEN (c.id + k.n) % 2 = 0 \
                 THEN '{\"kind\":\"needle_exchange\",\"given\":' || (10 + c.id % 20) || \
                      ',\"returned\":' || (c.id % 10) || '}' \
                 ELSE '{\"kind\":\"hiv_test\",\"tested_on\":\"' || d.day || \
                      '\",\"pre_counselled\":true,\"post_counselled\":true,\"result\":\"' || \
                      CASE WHEN c.id % 50 = 1 THEN 'positive' ELSE 'negative' END || \
                      '\",\"told_result\":true}' END, \
               c.site_id, 0 \
             FROM clients c JOIN bench_days k ON k.n <= 2 \
             JOIN bench_days d ON d.n = 1 + (c.id * 37 + k.n * 181) % 365 \
             ORDER BY d.day, c.id, k.n",
    )
    .await?;
    println!("  encounters: {r} rows");
    step("urine tests, encounters", t);
    let t = Instant::now();
    tx.commit().await?;
    if pg {
        exec(&mut conn, "SET session_replication_role = origin").await?;
        for t in [
            "sites",
            "users",
            "clients",
            "doses",
            "urine_tests",
            "encounters",
        ] {
            exec(
                &mut conn,
                format!(
                    "SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT MAX(id) FROM {t}))"
                )
                .as_str(),
            )
            .await?;
        }
        // The triggers that keep dose_months were off with the foreign keys.
        let t = Instant::now();
        let n = store.rebuild_dose_months().await?;
        println!(
            "  dose_months rebuilt after the load: {n} client-months in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        // What autovacuum would do shortly after such a load.
        exec(&mut conn, "ANALYZE").await?;
    }
    step("commit (+ PostgreSQL ANALYZE)", t);
    println!("GENERATE total {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn figure<'a>(figs: &'a [Figure], id: &str) -> Res<&'a Figure> {
    Ok(figs
        .iter()
        .find(|f| f.id == id)
        .ok_or_else(|| format!("no figure {id}"))?)
}

fn nd(figs: &[Figure], id: &str) -> Res<(u64, u64)> {
    let f = figure(figs, id)?;
    Ok((f.numerator.total(), f.denominator.map_or(0, |d| d.total())))
}

/// Timed runs of the report (after one warm-up run).
const RUNS: usize = 5;

async fn report(store: &Store, period: &Period, today: NaiveDate) -> Res<()> {
    println!("report period {} .. {}", period.from, period.to);
    let mut totals = Vec::new();
    let mut figs = Vec::new();
    // Run 0 warms up (a running server has its connections open and its pages cached); runs
    // 1-5 are timed. The DuckDB side does the same.
    for run in 0..=RUNS {
        let t = Instant::now();
        let mut inputs = store.indicator_inputs(None, period).await?;
        let t_read = t.elapsed().as_secs_f64() * 1e3;
        inputs.apply_dropouts(DEFAULT_DROPOUT_DAYS, today);
        let t_inputs = t.elapsed().as_secs_f64() * 1e3;
        let t_rule = t_inputs - t_read;
        let t2 = Instant::now();
        figs = compute(period, &inputs);
        let t_compute = t2.elapsed().as_secs_f64() * 1e3;
        let total = t.elapsed().as_secs_f64() * 1e3;
        println!(
            "  run {run}: indicator_inputs {t_read:.0} ms + drop-out rule {t_rule:.0} ms + compute {t_compute:.0} ms = {total:.0} ms \
             ({} clients, {} encounters)",
            inputs.clients.len(),
            inputs.encounters.len()
        );
        if run > 0 {
            totals.push(total);
        }
    }
    totals.sort_by(f64::total_cmp);
    println!(
        "REPORT median {:.0} ms ({RUNS} runs after a warm-up)",
        totals[totals.len() / 2]
    );
    let (mmt, _) = nd(&figs, "mmt_clients")?;
    let (att_days, att_clients) = nd(&figs, "mean_attendance")?;
    let (th, th_den) = nd(&figs, "take_home_participation")?;
    let (neg, tests) = nd(&figs, "urine_negative_rate")?;
    let (dropouts, _) = nd(&figs, "dropouts")?;
    println!(
        "FIGURES mmt_clients={mmt} attendance_days={att_days} attendance_clients={att_clients} \
         take_home={th}/{th_den} urine_negative={neg}/{tests} dropouts={dropouts}"
    );
    for id in [
        "mean_attendance",
        "urine_negative_rate",
        "take_home_participation",
    ] {
        println!(
            "  {id} = {:.4}",
            figure(&figs, id)?.value().unwrap_or(f64::NAN)
        );
    }
    for id in ["needles_given", "hiv_tests", "hiv_positivity"] {
        println!(
            "  {id} = {:.4}",
            figure(&figs, id)?.value().unwrap_or(f64::NAN)
        );
    }
    Ok(())
}

fn opt(v: Option<String>) -> String {
    v.unwrap_or_default()
}

async fn export(store: &Store, period: &Period, dir: &str) -> Res<()> {
    let t = Instant::now();
    std::fs::create_dir_all(dir)?;
    let (from, to) = (period.from.to_string(), period.to.to_string());
    let mut out = String::from("id,enrolled_on,discharged_on,sex,birth_year\n");
    let rows = sqlx::query(
        "SELECT id, enrolled_on, discharged_on, sex, birth_year FROM clients ORDER BY id",
    )
    .fetch_all(store.pool())
    .await?;
    for r in &rows {
        let by: Option<i64> = r.try_get("birth_year")?;
        writeln!(
            out,
            "{},{},{},{},{}",
            r.try_get::<i64, _>("id")?,
            r.try_get::<String, _>("enrolled_on")?,
            opt(r.try_get("discharged_on")?),
            opt(r.try_get("sex")?),
            by.map(|y| y.to_string()).unwrap_or_default()
        )?;
    }
    std::fs::File::create(format!("{dir}/clients.csv"))?.write_all(out.as_bytes())?;
    // From the first of the month a year before the period (what the report reads).
    let back = period
        .from
        .checked_sub_months(chrono::Months::new(12))
        .ok_or("bad date")?
        .with_day(1)
        .ok_or("bad date")?;
    let rows = sqlx::query("SELECT client_id, day, rule FROM doses WHERE day >= $1 AND day <= $2")
        .bind(back.to_string())
        .bind(to.clone())
        .fetch_all(store.pool())
        .await?;
    let mut out = String::with_capacity(rows.len() * 32);
    out.push_str("client_id,day,rule\n");
    for r in &rows {
        writeln!(
            out,
            "{},{},{}",
            r.try_get::<i64, _>("client_id")?,
            r.try_get::<String, _>("day")?,
            r.try_get::<String, _>("rule")?
        )?;
    }
    std::fs::File::create(format!("{dir}/doses.csv"))?.write_all(out.as_bytes())?;
    let n_doses = rows.len();
    let rows = sqlx::query(
        "SELECT client_id, collected_on, negative FROM urine_tests \
         WHERE collected_on >= $1 AND collected_on <= $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(store.pool())
    .await?;
    let mut out = String::from("client_id,collected_on,negative\n");
    for r in &rows {
        writeln!(
            out,
            "{},{},{}",
            r.try_get::<i64, _>("client_id")?,
            r.try_get::<String, _>("collected_on")?,
            r.try_get::<i64, _>("negative")?
        )?;
    }
    std::fs::File::create(format!("{dir}/urine_month.csv"))?.write_all(out.as_bytes())?;
    println!(
        "EXPORT {dir}: {n_doses} dose rows, {} urine rows in {:.1} s",
        rows.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Res<()> {
    let a = args()?;
    let store = Store::open(&a.url).await?;
    let period = last_month(a.today)?;
    if a.generate {
        println!(
            "generating {} clients, today {} ({:?})",
            a.clients,
            a.today,
            store.backend()
        );
        generate(&store, a.today, a.clients).await?;
    }
    if a.report {
        report(&store, &period, a.today).await?;
    }
    if let Some(dir) = &a.export {
        export(&store, &period, dir).await?;
    }
    store.close().await;
    Ok(())
}
