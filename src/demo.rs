//! `edgesync demo`: a self-contained walkthrough on an embedded SQLite
//! central, runnable on a fresh machine with no database server.
//!
//! It goes through the real code paths — a `sync.toml` written to disk and
//! loaded like any other, `init-sync`, `sync` — while the "applications" at
//! the stores and at head office write with plain SQL through rusqlite, just
//! as real ones would, knowing nothing of edgesync.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rusqlite::Connection;

use crate::config::Config;
use crate::engine::{provision, sync, Engine, Selection};

/// The demo runs the repository's example `sync.toml`, so the example can
/// never stop working without the demo (and CI) noticing.
const DEMO_TOML: &str = include_str!("../sync.toml");

const CENTRAL_SCHEMA: &str = "
CREATE TABLE products (
    id    INTEGER PRIMARY KEY,
    name  TEXT NOT NULL,
    price DECIMAL_TEXT(10,2) NOT NULL
);
CREATE TABLE orders (
    id         UUID_TEXT PRIMARY KEY,
    store      TEXT NOT NULL,
    product_id INTEGER NOT NULL,
    qty        INTEGER NOT NULL,
    placed_at  TIMESTAMPTZ_TEXT NOT NULL
);
INSERT INTO products VALUES (1, 'Espresso beans 1kg', '18.90'), (2, 'Oat milk 1l', '2.49'), (3, 'Paper cups x100', '4.50');
INSERT INTO orders VALUES
  ('5f0c6a4e-8a51-4c3e-9a59-0d5e7f3b2a01', 'store-1', 1, 2, '2026-11-20 08:15:00+01:00'),
  ('9b2d7c1f-3e4a-4f6b-8c2d-1a0b9e8f7d02', 'store-2', 3, 10, '2026-11-20 09:40:00+01:00');
";

/// Run the walkthrough in `dir` (a fresh temporary directory if `None`).
pub async fn run(dir: Option<PathBuf>, keep: bool) -> Result<()> {
    let temp;
    let dir = match dir {
        Some(d) => {
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
            d
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("edgesync-demo-")
                .tempdir()?;
            if keep {
                temp.keep()
            } else {
                temp.path().to_path_buf()
            }
        }
    };
    let result = walkthrough(&dir).await;
    if keep {
        println!("\nThe demo files are kept in {}", dir.display());
    }
    result
}

async fn walkthrough(dir: &Path) -> Result<()> {
    println!("edgesync demo — two stores and head office, on an embedded SQLite central");
    println!("working directory: {}\n", dir.display());

    let central_path = dir.join("central.db");
    let config_path = dir.join("sync.toml");
    std::fs::write(&config_path, DEMO_TOML)?;
    std::fs::create_dir_all(dir.join("edges"))?;
    {
        let c = Connection::open(&central_path)?;
        c.execute_batch(CENTRAL_SCHEMA)?;
    }
    step("1. Head office has a central database with products and orders; sync.toml maps two stores.");
    show(&central_path, "central", "products")?;

    let engine = open(&config_path).await?;
    let plans = provision::plan(&engine, provision::Action::Init, false).await?;
    let n: usize = plans.iter().map(|p| p.statements.len()).sum();
    for line in provision::execute(&engine, &plans).await? {
        println!("   {line}");
    }
    step(&format!(
        "2. `edgesync init-sync` provisioned {n} statements (see `init-sync --dry-run`) and created the store tables from the central schema."
    ));
    report(&sync::sync_all(&engine).await)?;
    step("3. First `edgesync sync`: each store received the catalogue and the orders.");
    show(&dir.join("edges/store-1.db"), "store-1", "orders")?;

    step("4. The network goes down. Everyone keeps working with plain SQL:");
    let s1 = Connection::open(dir.join("edges/store-1.db"))?;
    let s2 = Connection::open(dir.join("edges/store-2.db"))?;
    let hq = Connection::open(&central_path)?;
    s1.execute_batch(
        "UPDATE orders SET qty = 5 WHERE id = '5f0c6a4e-8a51-4c3e-9a59-0d5e7f3b2a01';
         INSERT INTO orders (id, store, product_id, qty, placed_at) VALUES ('c3a1e2d4-0b5f-4e6a-9d7c-8b1a2f3e4d03', 'store-1', 2, 24, '2026-11-21 07:05:12.250+01:00');",
    )?;
    println!("   store-1: order 5f0c… qty 2 -> 5; new order c3a1… (24 x oat milk)");
    s2.execute_batch(
        "UPDATE orders SET qty = 3 WHERE id = '5f0c6a4e-8a51-4c3e-9a59-0d5e7f3b2a01';
         DELETE FROM orders WHERE id = '9b2d7c1f-3e4a-4f6b-8c2d-1a0b9e8f7d02';",
    )?;
    println!(
        "   store-2: order 5f0c… qty 2 -> 3 (the same row store-1 changed!); cancels order 9b2d…"
    );
    hq.execute_batch("UPDATE products SET price = '4.95' WHERE id = 3;")?;
    println!("   head office: paper cups 4.50 -> 4.95");
    drop((s1, s2, hq));

    step("5. The link returns. store-1 syncs first, then store-2, then store-1 again:");
    for node in ["store-1", "store-2", "store-1"] {
        let edge = engine
            .edges
            .iter()
            .find(|e| e.config.node == node)
            .context("demo edge missing")?;
        report(&sync::sync_edge(&engine, edge).await)?;
    }
    step("6. Both stores changed order 5f0c… while offline. The orders table says conflict = \"client-wins\": store-2's push met store-1's already-synced write, kept its own value, and the conflict was logged with every version:");
    for c in engine.central.conflicts(true, 10).await? {
        let key: Vec<String> = c
            .key
            .iter()
            .map(|(k, v)| format!("{k}={}", v.display()))
            .collect();
        let qty = |row: &Option<Vec<(String, edgesync_core::Value)>>| {
            row.as_ref()
                .and_then(|r| r.iter().find(|(k, _)| k == "qty").map(|(_, v)| v.display()))
                .unwrap_or_else(|| "deleted".into())
        };
        println!(
            "   conflict #{} on {} {}: node {} wanted qty {}, central had {}, result {} ({})",
            c.id,
            c.table,
            key.join(","),
            c.node,
            qty(&c.local),
            qty(&c.central),
            qty(&c.result),
            c.strategy
        );
    }
    step("7. Every copy now holds the same rows (the cancelled order is kept with es_deleted = 1, as deletes = \"soft\" asks):");
    show(&central_path, "central", "orders")?;
    show(&dir.join("edges/store-1.db"), "store-1", "orders")?;
    show(&dir.join("edges/store-2.db"), "store-2", "orders")?;
    show(&dir.join("edges/store-2.db"), "store-2", "products")?;
    let same = rows(&central_path, "orders")? == rows(&dir.join("edges/store-1.db"), "orders")?
        && rows(&central_path, "orders")? == rows(&dir.join("edges/store-2.db"), "orders")?
        && rows(&central_path, "products")? == rows(&dir.join("edges/store-2.db"), "products")?;
    anyhow::ensure!(
        same,
        "demo: the copies did not converge — this is a bug, please report it"
    );
    println!(
        "\nAll three databases agree. Try `edgesync --config {} status`.",
        dir.join("sync.toml").display()
    );
    Ok(())
}

async fn open(config_path: &Path) -> Result<Engine> {
    let loaded = Config::load(Some(config_path))?;
    loaded.config.validate()?;
    Engine::open(loaded.config, &loaded.path, &Selection::default()).await
}

fn step(text: &str) {
    println!("\n{text}");
}

fn report(stats: &[sync::TableStats]) -> Result<()> {
    for s in stats {
        if let Some(e) = &s.error {
            anyhow::bail!("demo sync of {} on {} failed: {e}", s.table, s.node);
        }
        println!(
            "   {:<8} {:<9} pushed {:>2}  pulled {:>2}  conflicts {}",
            s.node, s.table, s.pushed, s.pulled, s.conflicts
        );
    }
    Ok(())
}

/// User columns of a table (metadata left out), sorted by key.
fn rows(db: &Path, table: &str) -> Result<Vec<Vec<String>>> {
    let c = Connection::open(db)?;
    let cols: Vec<String> = {
        let mut st = c.prepare(&format!(
            "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
        ))?;
        let names = st.query_map([], |r| r.get::<_, String>(0))?;
        names
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|n| !edgesync_core::names::is_reserved(n) || n == "es_deleted")
            .collect()
    };
    let sql = format!(
        "SELECT {} FROM \"{table}\" ORDER BY 1",
        cols.iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut st = c.prepare(&sql)?;
    let mut out = vec![cols.clone()];
    let mut q = st.query([])?;
    while let Some(r) = q.next()? {
        let mut row = Vec::new();
        for i in 0..cols.len() {
            let v: rusqlite::types::Value = r.get(i)?;
            row.push(match v {
                rusqlite::types::Value::Null => "NULL".into(),
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Real(f) => f.to_string(),
                rusqlite::types::Value::Text(s) => s,
                rusqlite::types::Value::Blob(b) => format!("<{} bytes>", b.len()),
            });
        }
        out.push(row);
    }
    Ok(out)
}

fn show(db: &Path, label: &str, table: &str) -> Result<()> {
    let rows = rows(db, table)?;
    let mut widths = vec![0usize; rows[0].len()];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count().min(38));
        }
    }
    println!("   [{label}] {table}");
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| {
                let c: String = c.chars().take(38).collect();
                format!("{c:<w$}")
            })
            .collect();
        println!("     {}", cells.join("  ").trim_end());
    }
    Ok(())
}
