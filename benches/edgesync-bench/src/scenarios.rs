//! The scenarios, per central backend: initial load, push, pull, capture
//! overhead, latency and memory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use edgesync::config::Config;
use edgesync::engine::{provision, sync, Engine, Selection};

use crate::central::{self, Backend, BenchDb};
use crate::child::{self, Daemon};
use crate::raw;
use crate::report::{thousands, Row};
use crate::Args;

/// What can be run (`--only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Load,
    Push,
    Pull,
    Capture,
    Latency,
    Memory,
}

fn wanted(args: &Args, s: Scenario) -> bool {
    args.only.is_empty() || args.only.contains(&s)
}

/// One central database with the benchmark table and one provisioned edge.
struct Env {
    backend: Backend,
    db: BenchDb,
    dir: PathBuf,
    config: PathBuf,
    edge: PathBuf,
}

fn admin_url(args: &Args, backend: Backend) -> &str {
    match backend {
        Backend::Postgres => &args.pg_url,
        Backend::Mariadb => &args.mysql_url,
    }
}

/// A `sync.toml` with one edge and one table.
fn write_config(
    path: &Path,
    url: &str,
    node: &str,
    edge: &Path,
    table: &str,
    interval: &str,
) -> Result<()> {
    let toml = format!(
        "[central]\nurl = \"{url}\"\n\n[[edge]]\nnode = \"{node}\"\npath = \"{}\"\n\n\
         [sync]\ninterval = \"{interval}\"\n\n[[table]]\nname = \"{table}\"\n",
        edge.display()
    );
    std::fs::write(path, toml).with_context(|| format!("writing {}", path.display()))
}

async fn open_engine(config: &Path) -> Result<Engine> {
    let loaded = Config::load(Some(config))?;
    loaded.validate()?;
    Engine::open(loaded.config, &loaded.path, &Selection::default()).await
}

/// `init-sync`, in process.
async fn init_sync(config: &Path) -> Result<()> {
    let engine = open_engine(config).await?;
    let plans = provision::plan(&engine, provision::Action::Init, false).await?;
    provision::execute(&engine, &plans).await?;
    Ok(())
}

impl Env {
    /// A fresh database holding `rows` rows (and an empty `items_raw`), and a
    /// provisioned, empty edge.
    async fn new(
        args: &Args,
        backend: Backend,
        rows: u64,
        base: &Path,
        label: &str,
    ) -> Result<Env> {
        let started = Instant::now();
        let db = BenchDb::create(backend, admin_url(args, backend), label).await?;
        let mut c = db.conn().await?;
        c.exec(&central::table_ddl(backend, "items")).await?;
        c.exec(&central::table_ddl(backend, "items_raw")).await?;
        let mut from = 1;
        while from <= rows {
            let to = rows.min(from + 999_999);
            c.exec(&central::fill_sql(backend, from, to)).await?;
            from = to + 1;
        }
        c.close().await;
        let dir = base.join(format!("{}-{label}", backend.name()));
        std::fs::create_dir_all(&dir)?;
        let edge = dir.join("edge1.db");
        let config = dir.join("sync.toml");
        write_config(&config, &db.url, "edge1", &edge, "items", "60s")?;
        init_sync(&config).await?;
        let mut c = db.conn().await?;
        match backend {
            Backend::Postgres => c.exec("VACUUM ANALYZE items").await?,
            Backend::Mariadb => c.exec("ANALYZE TABLE items").await?,
        }
        c.close().await;
        eprintln!(
            "[{}] {label}: {rows} central rows provisioned in {:.1} s",
            backend.name(),
            started.elapsed().as_secs_f64()
        );
        Ok(Env {
            backend,
            db,
            dir,
            config,
            edge,
        })
    }

    fn edge_count(&self) -> Result<i64> {
        let c = raw::open_sqlite(&self.edge)?;
        Ok(c.query_row("SELECT count(*) FROM items", [], |r| r.get(0))?)
    }
}

fn rate(rows: u64, d: Duration) -> f64 {
    rows as f64 / d.as_secs_f64().max(1e-9)
}

fn per_s(x: f64) -> String {
    format!("{} rows/s", thousands(x))
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Every scenario for one backend; rows appended to `out`.
pub async fn run_backend(
    args: &Args,
    backend: Backend,
    bin: &Path,
    base: &Path,
    capture: bool,
    out: &mut Vec<Row>,
) -> Result<()> {
    let name = backend.name();
    let n = args.rows;
    let changes = args.changes.min(n);
    let env = Env::new(args, backend, n, base, "main").await?;
    let result = run_main(args, &env, bin, capture, changes, out).await;
    let dropped = env.db.drop_db().await;
    result?;
    dropped?;

    if wanted(args, Scenario::Memory) && args.memory_rows > 0 {
        let m = args.memory_rows;
        let env = Env::new(args, backend, m, base, "mem").await?;
        let log = env.dir.join("sync.log");
        let measured = child::run_measured(bin, &env.config, &["sync"], &log);
        let count = env.edge_count();
        let dropped = env.db.drop_db().await;
        let run = measured?;
        ensure!(count? == m as i64, "the {m}-row initial load is incomplete");
        dropped?;
        eprintln!(
            "[{name}] initial load of {m} rows: {:.1} s, peak RSS {:.1} MB",
            run.elapsed.as_secs_f64(),
            mb(run.max_rss_kib)
        );
        let at_n = out
            .iter()
            .find(|r| r.backend == name && r.scenario.starts_with("memory"))
            .and_then(|r| r.value.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok());
        out.push(Row {
            backend: name,
            scenario: "memory: initial load, peak RSS".into(),
            rows: thousands(m as f64),
            value: format!("{:.1} MB", mb(run.max_rss_kib)),
            raw: String::new(),
            ratio: at_n.map_or(String::new(), |a| {
                format!("{:.2}x of {}", mb(run.max_rss_kib) / a, thousands(n as f64))
            }),
            target: "<= 100 MB, flat (<= 1.25x)".into(),
            pass: Some(
                mb(run.max_rss_kib) <= 100.0
                    && at_n.is_none_or(|a| mb(run.max_rss_kib) <= 1.25 * a),
            ),
        });
    }
    Ok(())
}

async fn run_main(
    args: &Args,
    env: &Env,
    bin: &Path,
    capture: bool,
    changes: u64,
    out: &mut Vec<Row>,
) -> Result<()> {
    let name = env.backend.name();
    let n = args.rows;
    let mut central = env.db.conn().await?;

    // MariaDB: init-sync leaves existing rows unversioned; the first pull
    // after it stamps them (once per table). Done and timed here, so the
    // initial load below is what every later edge sees.
    if env.backend == Backend::Mariadb {
        let d = stamp_all(env, &mut central).await?;
        eprintln!(
            "[{name}] stamping {n} rows after init-sync: {:.2} s ({})",
            d.as_secs_f64(),
            per_s(rate(n, d))
        );
        out.push(Row {
            backend: name,
            scenario: "first pull after init-sync: stamp versions (once per table)".into(),
            rows: thousands(n as f64),
            value: per_s(rate(n, d)),
            raw: String::new(),
            ratio: String::new(),
            target: String::new(),
            pass: None,
        });
    }

    // 1. Initial load (and the memory figure at n rows): the real binary.
    let raw_load = raw::load(&mut central, &env.dir.join("raw-load.db")).await?;
    ensure!(
        raw_load.0 == n,
        "the raw load read {} of {n} rows",
        raw_load.0
    );
    let raw_load_rate = rate(n, raw_load.1);
    let run = child::run_measured(bin, &env.config, &["sync"], &env.dir.join("load.log"))?;
    ensure!(
        env.edge_count()? == n as i64,
        "the initial load is incomplete"
    );
    let load_rate = rate(n, run.elapsed);
    eprintln!(
        "[{name}] initial load: {:.2} s ({}), raw {:.2} s ({}), peak RSS {:.1} MB",
        run.elapsed.as_secs_f64(),
        per_s(load_rate),
        raw_load.1.as_secs_f64(),
        per_s(raw_load_rate),
        mb(run.max_rss_kib)
    );
    if wanted(args, Scenario::Load) {
        let ratio = load_rate / raw_load_rate;
        out.push(Row {
            backend: name,
            scenario: "initial load (central -> empty edge)".into(),
            rows: thousands(n as f64),
            value: per_s(load_rate),
            raw: format!(
                "{} ({})",
                per_s(raw_load_rate),
                match env.backend {
                    Backend::Postgres => "COPY TO + rusqlite insert",
                    Backend::Mariadb => "streamed SELECT + rusqlite insert",
                }
            ),
            ratio: format!("{ratio:.2}x"),
            target: ">= 0.5x raw".into(),
            pass: Some(ratio >= 0.5),
        });
    }
    if wanted(args, Scenario::Memory) {
        out.push(Row {
            backend: name,
            scenario: "memory: initial load, peak RSS".into(),
            rows: thousands(n as f64),
            value: format!("{:.1} MB", mb(run.max_rss_kib)),
            raw: String::new(),
            ratio: String::new(),
            target: "<= 100 MB".into(),
            pass: Some(mb(run.max_rss_kib) <= 100.0),
        });
    }

    // 2. Push: updates of existing rows, then inserts of new ones.
    if wanted(args, Scenario::Push) {
        let raw_push = raw::push(&mut central, &env.edge, 1, changes).await?;
        let raw_rate = rate(raw_push.0, raw_push.1);
        let raw_label = match env.backend {
            Backend::Postgres => "COPY FROM STDIN",
            Backend::Mariadb => "LOAD DATA LOCAL INFILE",
        };
        let app = raw::open_sqlite(&env.edge)?;
        app.execute_batch(&format!(
            "BEGIN; UPDATE items SET qty = qty + 1, note = 'edge ' || id \
             WHERE id BETWEEN 1 AND {changes}; COMMIT;"
        ))?;
        let updates = push(env, changes).await?;
        app.execute_batch(&format!(
            "BEGIN; INSERT INTO items ({cols}) SELECT id + {n}, name, note, qty, price, \
             updated_at, payload FROM items WHERE id BETWEEN 1 AND {changes}; COMMIT;",
            cols = raw::COLUMNS
        ))?;
        let inserts = push(env, changes).await?;
        drop(app);
        let count = central
            .int(&format!(
                "SELECT count(*) FROM items WHERE id > {n} OR (id <= {changes} AND note LIKE 'edge %')"
            ))
            .await?;
        ensure!(
            count == 2 * changes as i64,
            "the central holds {count} of the {} pushed rows",
            2 * changes
        );
        for (what, d) in [("updates", updates), ("inserts", inserts)] {
            let r = rate(changes, d);
            let ratio = r / raw_rate;
            eprintln!(
                "[{name}] push {what}: {:.2} s ({}), raw {:.2} s ({})",
                d.as_secs_f64(),
                per_s(r),
                raw_push.1.as_secs_f64(),
                per_s(raw_rate)
            );
            out.push(Row {
                backend: name,
                scenario: format!("push: {what} (edge -> central)"),
                rows: thousands(changes as f64),
                value: per_s(r),
                raw: format!("{} ({raw_label})", per_s(raw_rate)),
                ratio: format!("{ratio:.2}x"),
                target: ">= 0.5x raw".into(),
                pass: Some(ratio >= 0.5),
            });
        }
    }

    // 3. Pull: rows changed by a central application.
    if wanted(args, Scenario::Pull) {
        let from = n - changes + 1;
        central
            .exec(&central::central_update_sql(env.backend, from, n))
            .await?;
        let engine = open_engine(&env.config).await?;
        let edge = &engine.edges[0];
        let table = &edge.tables[0];
        let mut stats = sync::TableStats::default();
        let started = Instant::now();
        sync::pull_table(
            engine.central.as_ref(),
            &edge.db,
            &edge.config.node,
            table,
            engine.config.sync.page_rows,
            &mut stats,
        )
        .await?;
        let d = started.elapsed();
        ensure!(
            stats.pulled as u64 == changes,
            "the pull applied {} of {changes} changes",
            stats.pulled
        );
        let r = rate(changes, d);
        let ratio = r / load_rate;
        eprintln!(
            "[{name}] pull: {:.2} s ({}) in {} pages",
            d.as_secs_f64(),
            per_s(r),
            stats.pull_pages
        );
        out.push(Row {
            backend: name,
            scenario: "pull: updates (central -> edge)".into(),
            rows: thousands(changes as f64),
            value: per_s(r),
            raw: format!("{} (edgesync initial load)", per_s(load_rate)),
            ratio: format!("{ratio:.2}x"),
            target: ">= 0.5x initial load".into(),
            pass: Some(ratio >= 0.5),
        });
    }

    // 4. Capture overhead (SQLite only; once).
    if capture && wanted(args, Scenario::Capture) {
        capture_overhead(args, env, &mut central, out).await?;
    }

    // 5. Latency.
    if wanted(args, Scenario::Latency) {
        latency(args, env, bin, &mut central, out).await?;
    }
    central.close().await;
    Ok(())
}

/// Give every central row its version (MariaDB: each pull call stamps up to
/// a budget of unversioned rows first), with one-row pulls that deliver
/// nothing to any edge; the time.
async fn stamp_all(env: &Env, central: &mut central::Conn) -> Result<Duration> {
    let engine = open_engine(&env.config).await?;
    let table = &engine.edges[0].tables[0];
    let started = Instant::now();
    loop {
        let pending = central
            .int("SELECT COUNT(*) FROM items WHERE es_ver IS NULL")
            .await?;
        if pending == 0 {
            return Ok(started.elapsed());
        }
        engine.central.pull("stamp", table, None, 1).await?;
    }
}

/// Push every pending change of the edge's table, in process; the time.
async fn push(env: &Env, expected: u64) -> Result<Duration> {
    let engine = open_engine(&env.config).await?;
    let edge = &engine.edges[0];
    let table = &edge.tables[0];
    let mut stats = sync::TableStats::default();
    let started = Instant::now();
    sync::push_table(
        engine.central.as_ref(),
        &edge.db,
        &edge.config.node,
        table,
        engine.config.sync.batch_rows,
        &mut stats,
    )
    .await?;
    let d = started.elapsed();
    ensure!(
        stats.pushed as u64 == expected && stats.conflicts == 0 && stats.quarantined == 0,
        "the push moved {} of {expected} changes ({} conflicts, {} quarantined)",
        stats.pushed,
        stats.conflicts,
        stats.quarantined
    );
    Ok(d)
}

/// One application workload on a SQLite table: insert `n` rows (ids from
/// `from`) in one transaction, then update each of them in another; the two
/// times.
fn app_workload(
    conn: &mut rusqlite::Connection,
    table: &str,
    from: i64,
    n: u64,
) -> Result<(Duration, Duration)> {
    let payload = [7u8; 16];
    let started = Instant::now();
    let tx = conn.transaction()?;
    {
        let mut st = tx.prepare(&format!(
            "INSERT INTO {table} ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            raw::COLUMNS
        ))?;
        for id in from..from + n as i64 {
            let name = format!("item {id}");
            let note = format!("note {id:032x}");
            let blob: Option<&[u8]> = (id % 4 != 0).then_some(&payload);
            st.execute(rusqlite::params![
                id,
                name,
                note,
                id % 1000,
                "1234.56",
                "2024-01-01 00:00:00+00:00",
                blob
            ])?;
        }
    }
    tx.commit()?;
    let inserted = started.elapsed();
    let started = Instant::now();
    let tx = conn.transaction()?;
    {
        let mut st = tx.prepare(&format!(
            "UPDATE {table} SET qty = qty + 1, note = ?1 WHERE id = ?2"
        ))?;
        for id in from..from + n as i64 {
            let note = format!("updated {id:032x}");
            ensure!(
                st.execute(rusqlite::params![note, id])? == 1,
                "row {id} missing"
            );
        }
    }
    tx.commit()?;
    Ok((inserted, started.elapsed()))
}

/// The same application workload on a synced table (an edge provisioned by
/// init-sync) and an unsynced one with the same columns.
async fn capture_overhead(
    args: &Args,
    env: &Env,
    central: &mut central::Conn,
    out: &mut Vec<Row>,
) -> Result<()> {
    let n = args.changes;
    central
        .exec(&central::table_ddl(env.backend, "items_cap"))
        .await?;
    let synced_path = env.dir.join("capture-synced.db");
    let plain_path = env.dir.join("capture-plain.db");
    let config = env.dir.join("capture.toml");
    write_config(
        &config,
        &env.db.url,
        "capture",
        &synced_path,
        "items_cap",
        "60s",
    )?;
    init_sync(&config).await?;
    let mut synced = raw::open_sqlite(&synced_path)?;
    let mut plain = raw::open_sqlite(&plain_path)?;
    plain.execute_batch(&raw::SQLITE_TABLE.replacen("items", "items_cap", 1))?;
    // Twice each, alternating; the better time of each counts.
    let (mut best_plain, mut best_synced) = (
        (Duration::MAX, Duration::MAX),
        (Duration::MAX, Duration::MAX),
    );
    for rep in 0..2 {
        let from = 1 + rep * n as i64;
        let p = app_workload(&mut plain, "items_cap", from, n)?;
        let s = app_workload(&mut synced, "items_cap", from, n)?;
        best_plain = (best_plain.0.min(p.0), best_plain.1.min(p.1));
        best_synced = (best_synced.0.min(s.0), best_synced.1.min(s.1));
    }
    let pending: i64 =
        synced.query_row("SELECT count(*) FROM items_cap WHERE es_ver > 0", [], |r| {
            r.get(0)
        })?;
    ensure!(
        pending == 2 * n as i64,
        "the synced table captured {pending} of {} rows",
        2 * n
    );
    let parts = [
        ("capture: insert", best_synced.0, best_plain.0, None),
        ("capture: update", best_synced.1, best_plain.1, None),
        (
            "capture: insert + update",
            best_synced.0 + best_synced.1,
            best_plain.0 + best_plain.1,
            Some(1.5),
        ),
    ];
    for (what, s, p, target) in parts {
        let ops = if target.is_some() { 2 * n } else { n };
        let ratio = s.as_secs_f64() / p.as_secs_f64().max(1e-9);
        eprintln!(
            "[sqlite] {what}: synced {:.3} s, unsynced {:.3} s ({ratio:.2}x)",
            s.as_secs_f64(),
            p.as_secs_f64()
        );
        out.push(Row {
            backend: "sqlite",
            scenario: format!("{what} (synced vs unsynced table)"),
            rows: thousands(n as f64),
            value: per_s(rate(ops, s)),
            raw: format!("{} (unsynced)", per_s(rate(ops, p))),
            ratio: format!("{ratio:.2}x time"),
            target: target.map_or(String::new(), |t| format!("<= {t}x time")),
            pass: target.map(|t| ratio <= t),
        });
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

const PROBE: Duration = Duration::from_millis(2);
const VISIBLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Wait until the central holds row `id`; the time since `since`.
async fn central_sees(central: &mut central::Conn, id: i64, since: Instant) -> Result<Duration> {
    loop {
        if central.has_row(id).await? {
            return Ok(since.elapsed());
        }
        if since.elapsed() > VISIBLE_TIMEOUT {
            bail!("row {id} did not reach the central within {VISIBLE_TIMEOUT:?}");
        }
        tokio::time::sleep(PROBE).await;
    }
}

/// A random duration below `max`.
fn jitter(max: Duration) -> Duration {
    let r = uuid::Uuid::new_v4().as_u128() as u64;
    max.mul_f64((r >> 11) as f64 / (1u64 << 53) as f64)
}

fn edge_insert(app: &rusqlite::Connection, id: i64) -> Result<()> {
    app.execute(
        &format!(
            "INSERT INTO items ({}) VALUES (?1, 'latency', NULL, 1, '1.00', \
             '2024-01-01 00:00:00+00:00', NULL)",
            raw::COLUMNS
        ),
        [id],
    )?;
    Ok(())
}

/// Commit-to-visible latency with `edgesync run` going: edge -> central on
/// the commit wake path (interval 60 s), and central -> edge on PostgreSQL,
/// which only the interval drives.
async fn latency(
    args: &Args,
    env: &Env,
    bin: &Path,
    central: &mut central::Conn,
    out: &mut Vec<Row>,
) -> Result<()> {
    let name = env.backend.name();
    let base = 100_000_000_i64;
    let app = raw::open_sqlite(&env.edge)?;
    let mut daemon = Daemon::start(bin, &env.config, &env.dir.join("run.log"))?;
    // Warm-up: the daemon's first sync pass, and one row through.
    edge_insert(&app, base)?;
    central_sees(central, base, Instant::now()).await?;
    let mut samples = Vec::with_capacity(args.latency_samples);
    for i in 0..args.latency_samples {
        let id = base + 1 + i as i64;
        // Commits at random moments, as applications make them: otherwise
        // each one would follow the previous push in lockstep with the
        // daemon's 100 ms commit watcher, and always wait the same.
        tokio::time::sleep(jitter(Duration::from_millis(100))).await;
        edge_insert(&app, id)?;
        let committed = Instant::now();
        samples.push(central_sees(central, id, committed).await?);
        if i % 50 == 0 {
            daemon.check()?;
        }
    }
    daemon.stop()?;
    samples.sort();
    let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
    eprintln!(
        "[{name}] latency edge -> central: p50 {}, p99 {}, max {}",
        ms(p50),
        ms(p99),
        ms(*samples.last().unwrap_or(&Duration::ZERO))
    );
    out.push(Row {
        backend: name,
        scenario: "latency: edge commit -> visible at central".into(),
        rows: format!("{} commits", samples.len()),
        value: format!("p50 {} / p99 {}", ms(p50), ms(p99)),
        raw: String::new(),
        ratio: String::new(),
        target: "p99 <= 1 s".into(),
        pass: Some(p99 <= Duration::from_secs(1)),
    });

    if env.backend != Backend::Postgres || args.pull_latency_samples == 0 {
        return Ok(());
    }
    // Central -> edge: on PostgreSQL the daemon's pull is woken by
    // LISTEN/NOTIFY at the central's commit; `interval = 1s` is only the
    // fallback poll, so a figure near it would mean the notification path
    // is not working.
    let config = env.dir.join("sync-1s.toml");
    write_config(&config, &env.db.url, "edge1", &env.edge, "items", "1s")?;
    let mut daemon = Daemon::start(bin, &config, &env.dir.join("run-1s.log"))?;
    let mut probe = app.prepare("SELECT EXISTS (SELECT 1 FROM items WHERE id = ?1)")?;
    let mut samples = Vec::new();
    let base = 200_000_000_i64;
    for i in 0..=args.pull_latency_samples {
        let id = base + i as i64;
        // At a random moment of the interval.
        tokio::time::sleep(jitter(Duration::from_secs(1))).await;
        central
            .exec(&format!(
                "INSERT INTO items ({}) VALUES ({id}, 'latency', NULL, 1, 1.00, \
                 '2024-01-01 00:00:00+00', NULL)",
                raw::COLUMNS
            ))
            .await?;
        let committed = Instant::now();
        loop {
            if probe.query_row([id], |r| r.get::<_, bool>(0))? {
                break;
            }
            if committed.elapsed() > VISIBLE_TIMEOUT {
                bail!("row {id} did not reach the edge within {VISIBLE_TIMEOUT:?}");
            }
            tokio::time::sleep(PROBE).await;
        }
        // The first one waits for the daemon's start-up as well.
        if i > 0 {
            samples.push(committed.elapsed());
        }
        daemon.check()?;
    }
    daemon.stop()?;
    samples.sort();
    let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
    eprintln!(
        "[{name}] latency central -> edge (interval 1 s): p50 {}, p99 {}",
        ms(p50),
        ms(p99)
    );
    out.push(Row {
        backend: name,
        scenario: "latency: central commit -> visible at edge (LISTEN/NOTIFY; interval = 1 s)"
            .into(),
        rows: format!("{} commits", samples.len()),
        value: format!("p50 {} / p99 {}", ms(p50), ms(p99)),
        raw: String::new(),
        ratio: String::new(),
        target: "p99 <= 1 s".into(),
        pass: Some(p99 <= Duration::from_secs(1)),
    });
    Ok(())
}
