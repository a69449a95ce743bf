//! `edgesync run` as ops run it: the real binary as a child process, with
//! signals, edge files that break, a metrics endpoint and JSON logs on
//! stderr. Every wait polls for a condition with a deadline.

mod harness;
mod notify;
mod progress;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{Backend, Env, Sql};
use crate::for_each_backend;
use harness::{
    central_count, debug_secs, edge_count, free_port, http_get, poll, sample, wait_central, Daemon,
    Proxy, SOON,
};

const DDL: Sql = Sql {
    sqlite: "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);
      CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
    postgres: "CREATE TABLE items (id bigint PRIMARY KEY, name text);
      CREATE TABLE notes (id bigint PRIMARY KEY, body text NOT NULL);",
    mysql: "CREATE TABLE items (id bigint PRIMARY KEY, name longtext);
      CREATE TABLE notes (id bigint PRIMARY KEY, body longtext NOT NULL);",
};

const ITEMS_ONLY: &str = "[[table]]\nname = \"items\"\n";
const BOTH: &str = "[[table]]\nname = \"items\"\n\n[[table]]\nname = \"notes\"\n";

async fn a_local_commit_reaches_the_central_within_two_seconds(backend: Backend) {
    let mut env = Env::new(backend, &["a", "b"], &DDL).await;
    env.write_config(BOTH, "");
    env.init().await;
    // A long interval: only the change notification can be this fast.
    let mut d = Daemon::start(&env, &[("EDGESYNC_SYNC__INTERVAL", "60s")]);
    d.wait_synced("a", 1);
    d.wait_synced("b", 1);
    let edge = env.edge("a");
    for id in 1..=3 {
        edge.execute("INSERT INTO notes (id, body) VALUES (?1, 'hello')", [id])
            .expect("insert on the edge");
        let took = wait_central(&env, "notes", &format!("id = {id}"), 1, SOON).await;
        assert!(
            took <= Duration::from_secs(2),
            "commit {id} took {took:?} to reach the central; log:\n{}",
            d.log_text()
        );
    }
    // The daemon's own writes wake the watcher too; they must not turn into
    // a sync loop. Once the last sync has logged its tables, no edge syncs
    // again over a quiet second.
    let mut before = d.count("edge synced", &[]);
    let mut quiet_since = Instant::now();
    let settled = poll(SOON, || {
        let now = d.count("edge synced", &[]);
        if now != before {
            before = now;
            quiet_since = Instant::now();
        }
        quiet_since.elapsed() >= Duration::from_millis(300)
    });
    assert!(settled, "never quiet; log:\n{}", d.log_text());
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        d.count("edge synced", &[]),
        before,
        "syncs without changes; log:\n{}",
        d.log_text()
    );
    d.stop();
}

async fn a_failing_table_does_not_hold_up_the_other_tables_of_its_edge(backend: Backend) {
    let mut env = Env::new(backend, &["a"], &DDL).await;
    env.write_config(BOTH, "");
    env.init().await;
    let mut d = Daemon::start(&env, &[("EDGESYNC_SYNC__INTERVAL", "60s")]);
    d.wait_synced("a", 1);
    let edge = env.edge("a");
    // notes breaks on the edge (a botched migration, say) ...
    edge.execute_batch("ALTER TABLE notes RENAME TO notes_gone")
        .expect("rename");
    edge.execute("INSERT INTO items (id, name) VALUES (1, 'one')", [])
        .expect("insert");
    wait_central(&env, "items", "id = 1", 1, SOON).await;
    // ... and backs off, further and further, ...
    let backed_off = poll(SOON, || {
        d.events().iter().any(|e| {
            e["message"].as_str() == Some("table sync failed; backing off")
                && e["table"].as_str() == Some("notes")
                && e["failures"].as_u64().is_some_and(|f| f >= 4)
        })
    });
    assert!(backed_off, "notes did not back off; log:\n{}", d.log_text());
    // ... while items keeps syncing at once.
    edge.execute("INSERT INTO items (id, name) VALUES (2, 'two')", [])
        .expect("insert");
    let took = wait_central(&env, "items", "id = 2", 1, SOON).await;
    assert!(
        took <= Duration::from_secs(2),
        "items waited {took:?} behind the failing notes; log:\n{}",
        d.log_text()
    );
    d.stop();
}

async fn sigterm_during_a_large_sync_exits_0_without_a_partial_batch(backend: Backend) {
    const ROWS: i64 = 40_000;
    const BATCH: i64 = 250;
    let mut env = Env::new(backend, &["a"], &DDL).await;
    env.write_config(BOTH, &format!("batch_rows = {BATCH}"));
    env.init().await;
    env.edge("a")
        .execute_batch(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
             INSERT INTO notes (id, body) SELECT i, 'note ' || i FROM n;"
        ))
        .expect("write rows on the edge");
    let mut d = Daemon::start(&env, &[]);
    wait_central(&env, "notes", "1 = 1", 1, SOON).await;
    d.signal("TERM");
    let signalled = Instant::now();
    let status = d.wait_exit(Duration::from_secs(15));
    let took = signalled.elapsed();
    assert!(status.success(), "exit {status}; log:\n{}", d.log_text());
    assert!(
        took < Duration::from_secs(5),
        "took {took:?} to stop; log:\n{}",
        d.log_text()
    );
    let at_stop = central_count(&env, "notes", "1 = 1").await;
    assert!(
        at_stop % BATCH == 0 || at_stop == ROWS,
        "{at_stop} rows at the central: a batch was cut in half"
    );
    assert!(
        at_stop < ROWS,
        "the sync finished before the signal; make it larger"
    );
    // The interrupted table is not reported as failed ...
    let status = env.cli(&["status"]);
    assert!(
        status.status.success(),
        "status after a stop: {}{}",
        String::from_utf8_lossy(&status.stdout),
        crate::common::stderr(&status)
    );
    // ... and the next sync converges.
    let out = env.cli(&["sync"]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    assert_eq!(central_count(&env, "notes", "1 = 1").await, ROWS);
}

async fn sighup_applies_a_good_config_and_keeps_the_old_one_on_a_bad_one(backend: Backend) {
    let mut env = Env::new(backend, &["a"], &DDL).await;
    env.write_config(ITEMS_ONLY, "");
    env.init().await;
    let mut d = Daemon::start(&env, &[]);
    let edge = env.edge("a");
    edge.execute("INSERT INTO items (id, name) VALUES (1, 'one')", [])
        .expect("insert");
    wait_central(&env, "items", "id = 1", 1, SOON).await;

    // A new table: provision it, then reload.
    env.write_config(BOTH, "");
    let out = env.cli(&["init-sync", "--table", "notes"]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    d.signal("HUP");
    d.wait_log(&["config reloaded", "table notes added"], SOON);
    edge.execute("INSERT INTO notes (id, body) VALUES (1, 'new table')", [])
        .expect("insert note");
    wait_central(&env, "notes", "id = 1", 1, SOON).await;

    // A broken file is refused, and the running config keeps syncing.
    env.write_config(BOTH, "batch_rows = 0");
    d.signal("HUP");
    d.wait_log(&["reload failed", "sync.batch_rows"], SOON);
    edge.execute("INSERT INTO items (id, name) VALUES (2, 'two')", [])
        .expect("insert");
    edge.execute("INSERT INTO notes (id, body) VALUES (2, 'still')", [])
        .expect("insert note");
    wait_central(&env, "items", "id = 2", 1, SOON).await;
    wait_central(&env, "notes", "id = 2", 1, SOON).await;

    // So is a file that validates but names a table the central lacks.
    env.write_config(&format!("{BOTH}\n[[table]]\nname = \"missing\"\n"), "");
    d.signal("HUP");
    d.wait_log(&["reload failed", "missing"], SOON);
    edge.execute("INSERT INTO items (id, name) VALUES (3, 'three')", [])
        .expect("insert");
    wait_central(&env, "items", "id = 3", 1, SOON).await;
    d.stop();
}

async fn a_locked_or_missing_edge_does_not_stall_the_others(backend: Backend) {
    let mut env = Env::new(backend, &["a", "b", "c"], &DDL).await;
    env.write_config(ITEMS_ONLY, "retry_max = \"2s\"");
    env.init().await;
    env.edge("c")
        .execute("INSERT INTO items (id, name) VALUES (300, 'from c')", [])
        .expect("insert on c");
    // Edge d's directory does not exist (an unmounted volume, say).
    let missing = env.path().join("not-mounted").join("d.db");
    let mut text = std::fs::read_to_string(env.config_path()).expect("read config");
    text.push_str(&format!(
        "\n[[edge]]\nnode = \"d\"\npath = \"{}\"\n",
        missing.display()
    ));
    std::fs::write(env.config_path(), text).expect("write config");
    // Another process holds c exclusively, readers included.
    let lock = env.edge("c");
    let rollback_journal = poll(SOON, || {
        lock.query_row("PRAGMA journal_mode = DELETE", [], |r| {
            r.get::<_, String>(0)
        })
        .is_ok_and(|m| m.eq_ignore_ascii_case("delete"))
    });
    assert!(rollback_journal, "cannot take c out of WAL mode");
    lock.execute_batch("BEGIN EXCLUSIVE").expect("lock c");

    let mut d = Daemon::start(&env, &[]);
    env.edge("a")
        .execute("INSERT INTO items (id, name) VALUES (100, 'from a')", [])
        .expect("insert on a");
    wait_central(&env, "items", "id = 100", 1, SOON).await;
    env.central_run(Sql::all(
        "INSERT INTO items (id, name) VALUES (200, 'central')",
    ))
    .await;
    let b = env.edge_path("b");
    assert!(
        poll(SOON, || edge_count(
            &b,
            "SELECT count(*) FROM items WHERE id IN (100, 200)"
        ) == 2),
        "b did not receive the rows; log:\n{}",
        d.log_text()
    );
    d.wait_log(&["cannot open the edge", "\"node\":\"c\""], SOON);
    d.wait_log(
        &["cannot open the edge", "\"node\":\"d\"", "not-mounted"],
        SOON,
    );

    // Once the lock goes, c catches up on its own.
    lock.execute_batch("COMMIT").expect("unlock c");
    drop(lock);
    wait_central(&env, "items", "id = 300", 1, Duration::from_secs(30)).await;
    d.stop();
}

async fn metrics_match_what_was_synced_and_healthz_tracks_staleness(backend: Backend) {
    let port = free_port();
    let mut env = Env::new(backend, &["a", "b"], &DDL).await;
    env.write_config(
        ITEMS_ONLY,
        &format!(
            "retry_max = \"2s\"\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"\nhealthz_window = \"4s\"\n"
        ),
    );
    env.init().await;
    env.edge("a")
        .execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 7)
             INSERT INTO items (id, name) SELECT i, 'a' FROM n;",
        )
        .expect("insert on a");
    env.central_run(Sql::all(
        "INSERT INTO items (id, name) VALUES (1001, 'c'), (1002, 'c'), (1003, 'c')",
    ))
    .await;
    let mut d = Daemon::start(&env, &[]);

    let series = |name: &str, node: &str| format!("{name}{{node=\"{node}\",table=\"items\"}}");
    let expected = [
        (series("edgesync_rows_pushed_total", "a"), 7.0),
        (series("edgesync_rows_pulled_total", "a"), 3.0),
        (series("edgesync_rows_pushed_total", "b"), 0.0),
        (series("edgesync_rows_pulled_total", "b"), 10.0),
        (series("edgesync_pending_changes", "a"), 0.0),
    ];
    let mut text = String::new();
    let matched = poll(SOON, || {
        d.assert_running();
        text = match http_get(port, "/metrics") {
            Some((200, body)) => body,
            _ => return false,
        };
        expected.iter().all(|(s, v)| sample(&text, s) == Some(*v))
    });
    assert!(matched, "expected {expected:?} in:\n{text}");
    assert_eq!(central_count(&env, "items", "1 = 1").await, 10);
    assert!(sample(&text, &series("edgesync_push_batches_total", "a")).is_some_and(|v| v >= 1.0));
    assert!(sample(
        &text,
        &series("edgesync_last_success_timestamp_seconds", "b")
    )
    .is_some());
    assert!(sample(&text, &series("edgesync_lag_seconds", "a")).is_some());
    assert_eq!(sample(&text, "edgesync_edge_up{node=\"a\"}"), Some(1.0));
    assert_eq!(sample(&text, "edgesync_central_up"), Some(1.0));
    assert!(
        sample(&text, "edgesync_sync_duration_seconds_count{node=\"a\"}").is_some_and(|v| v >= 1.0)
    );
    assert!(
        text.contains(
            "edgesync_conflicts_total{node=\"a\",table=\"items\",strategy=\"server-wins\"} 0"
        ),
        "{text}"
    );
    let health = http_get(port, "/healthz").expect("GET /healthz");
    assert_eq!(health.0, 200, "{}", health.1);

    // Break b: its table disappears (a botched migration, say).
    env.edge("b")
        .execute_batch("ALTER TABLE items RENAME TO items_gone")
        .expect("rename on b");
    let mut last = (0, String::new());
    let stale = poll(SOON, || {
        last = http_get(port, "/healthz").unwrap_or_default();
        last.0 == 503
    });
    assert!(stale, "healthz stayed {last:?}; log:\n{}", d.log_text());
    assert!(last.1.contains("b: last success"), "{}", last.1);
    assert!(!last.1.contains("a: last success"), "{}", last.1);
    let counted = poll(SOON, || {
        http_get(port, "/metrics").is_some_and(|(_, t)| {
            sample(
                &t,
                "edgesync_sync_errors_total{node=\"b\",table=\"items\",kind=\"edge\"}",
            )
            .is_some_and(|v| v >= 1.0)
        })
    });
    assert!(counted, "no edge error counted for b");

    // Fixed: healthy again.
    env.edge("b")
        .execute_batch("ALTER TABLE items_gone RENAME TO items")
        .expect("rename back");
    assert!(
        poll(SOON, || http_get(port, "/healthz")
            .is_some_and(|(c, _)| c == 200)),
        "healthz did not recover; log:\n{}",
        d.log_text()
    );
    d.stop();
}

/// A central outage: edges back off (further and further), and once the
/// central answers again they resume at once, not when their backoff ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_central_outage_edges_resume_before_their_backoff_ends() {
    let mut env = Env::new(Backend::Postgres, &["a"], &DDL).await;
    env.write_config(ITEMS_ONLY, "retry_max = \"2m\"");
    env.init().await;
    let (prefix, rest) = env
        .central_url
        .split_once('@')
        .expect("user@host in the test URL");
    let (hostport, db) = rest.split_once('/').expect("/db in the test URL");
    let proxy = Proxy::start(hostport.to_string());
    let text = std::fs::read_to_string(env.config_path()).expect("read config");
    let proxied = format!("{prefix}@127.0.0.1:{}/{db}", proxy.port);
    std::fs::write(env.config_path(), text.replace(&env.central_url, &proxied))
        .expect("write config");
    let mut d = Daemon::start(&env, &[("EDGESYNC_SYNC__INTERVAL", "60s")]);
    d.wait_synced("a", 1);

    proxy.cut();
    env.edge("a")
        .execute("INSERT INTO items (id, name) VALUES (1, 'offline')", [])
        .expect("insert on a");
    d.wait_log(&["the central does not answer"], SOON);
    // Let the edge's backoff grow past what the test will allow for the
    // recovery (the probe runs at most 5 s apart).
    let long_backoff = poll(Duration::from_secs(60), || {
        d.events().iter().any(|e| {
            e["message"].as_str() == Some("table sync failed; backing off")
                && e["retry_in"]
                    .as_str()
                    .and_then(debug_secs)
                    .is_some_and(|s| s >= 8.0)
        })
    });
    assert!(long_backoff, "backoff did not grow; log:\n{}", d.log_text());

    proxy.restore();
    let took = wait_central(&env, "items", "id = 1", 1, SOON).await;
    assert!(
        took < Duration::from_millis(6500),
        "took {took:?} after the central came back; log:\n{}",
        d.log_text()
    );
    d.wait_log(&["the central answers again"], SOON);
    let metrics_up = d.count("the central answers again; resuming every edge", &[]);
    assert!(metrics_up >= 1);
    d.stop();
}

/// What systemd sees through `NOTIFY_SOCKET` (`Type=notify`): READY once
/// the engine is open, a STATUS line naming the edges, WATCHDOG pings when
/// `WatchdogSec` is set, RELOADING/READY around a SIGHUP, STOPPING at the
/// end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_is_told_ready_status_watchdog_reloading_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let mut env = Env::new(Backend::Sqlite, &["a", "b"], &DDL).await;
    env.write_config(ITEMS_ONLY, "");
    env.init().await;
    let socket_path = env.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut d = Daemon::start_with_watchdog_pid(
        &env,
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().expect("utf-8 path")),
            ("WATCHDOG_USEC", "2000000"),
        ],
    );
    let mut seen: Vec<String> = Vec::new();
    let receive_until = |seen: &mut Vec<String>, what: &dyn Fn(&str) -> bool| {
        let deadline = Instant::now() + SOON;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = socket.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let hit = msg.lines().any(what);
                seen.push(msg);
                if hit {
                    return true;
                }
            }
        }
        false
    };
    assert!(receive_until(&mut seen, &|l| l == "READY=1"), "{seen:?}");
    assert!(
        receive_until(&mut seen, &|l| l
            .starts_with("STATUS=syncing 2 edges: 2 ok")),
        "{seen:?}"
    );
    assert!(receive_until(&mut seen, &|l| l == "WATCHDOG=1"), "{seen:?}");
    d.signal("HUP");
    assert!(
        receive_until(&mut seen, &|l| l == "RELOADING=1"),
        "{seen:?}"
    );
    assert!(receive_until(&mut seen, &|l| l == "READY=1"), "{seen:?}");
    d.signal("TERM");
    assert!(receive_until(&mut seen, &|l| l == "STOPPING=1"), "{seen:?}");
    let status = d.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit {status}; log:\n{}", d.log_text());
}

for_each_backend!(
    a_local_commit_reaches_the_central_within_two_seconds,
    a_failing_table_does_not_hold_up_the_other_tables_of_its_edge,
    sigterm_during_a_large_sync_exits_0_without_a_partial_batch,
    sighup_applies_a_good_config_and_keeps_the_old_one_on_a_bad_one,
    a_locked_or_missing_edge_does_not_stall_the_others,
    metrics_match_what_was_synced_and_healthz_tracks_staleness,
);

/// The config the .deb installs as /etc/edgesync/sync.toml validates.
#[test]
fn the_packaged_example_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/sync.toml");
    let loaded = edgesync::config::Config::load_from(&path, Vec::new()).expect("loads");
    loaded.validate().expect("validates");
    let metrics = loaded.config.metrics.as_ref().expect("[metrics]");
    assert_eq!(metrics.listen, "127.0.0.1:9187");
    let out = Command::new(env!("CARGO_BIN_EXE_edgesync"))
        .arg("--config")
        .arg(&path)
        .args(["check-config", "--offline"])
        .output()
        .expect("run check-config");
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
}
