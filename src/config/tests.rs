use std::path::{Path, PathBuf};
use std::time::Duration;

use edgesync_core::{ConflictPolicy, DeleteMode, Direction};

use super::*;

const MINIMAL: &str = r#"
[central]
url = "sqlite://central.db"

[[edge]]
node = "store-1"
path = "edges/store-1.db"

[[table]]
name = "orders"
"#;

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse(text: &str) -> Config {
    Config::from_toml(text, no_env()).expect("parses")
}

fn parse_err(text: &str) -> ConfigError {
    Config::from_toml(text, no_env()).expect_err("must be refused")
}

fn keys(err: &ConfigError) -> Vec<&str> {
    err.problems().iter().map(|p| p.key.as_str()).collect()
}

/// The problem reported for `key`, which must exist.
fn problem<'a>(err: &'a ConfigError, key: &str) -> &'a Problem {
    err.problems()
        .iter()
        .find(|p| p.key == key)
        .unwrap_or_else(|| panic!("no problem with key {key}; got:\n{err}"))
}

fn invalid(config: &Config) -> ConfigError {
    config.validate().expect_err("must be invalid")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn shipped_example_loads_and_validates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sync.toml");
    let loaded = Config::load_from(&path, no_env()).expect("the shipped sync.toml loads");
    if let Err(e) = loaded.validate() {
        panic!("the shipped sync.toml is invalid:\n{e}");
    }
    let c = &loaded.config;
    assert_eq!(c.central.url, "sqlite://central.db");
    assert_eq!(c.edges.len(), 2);
    assert!(c.edges.iter().all(|e| e.path.is_absolute()));
    assert_eq!(loaded.dir(), Path::new(env!("CARGO_MANIFEST_DIR")));
    let products = c.table("products").expect("products");
    assert_eq!(products.direction, Direction::Pull);
    let orders = c.table("orders").expect("orders");
    assert_eq!(c.conflict_for(orders), ConflictPolicy::ClientWins);
    assert_eq!(c.conflict_for(products), ConflictPolicy::ServerWins);
}

#[test]
fn defaults_apply() {
    let c = parse(MINIMAL);
    assert_eq!(c.sync, SyncConfig::default());
    assert_eq!(c.sync.interval, Duration::from_secs(10));
    assert_eq!(c.sync.batch_rows, 5000);
    assert_eq!(c.sync.page_rows, 5000);
    assert_eq!(c.sync.retry_max, Duration::from_secs(300));
    assert_eq!(c.sync.conflict_retention, Duration::from_secs(30 * 86_400));
    assert_eq!(c.log.level, "info");
    assert_eq!(c.log.format, LogFormat::Auto);
    let t = &c.tables[0];
    assert_eq!(t.direction, Direction::Both);
    assert_eq!(t.deletes, DeleteMode::Soft);
    assert_eq!(t.conflict, None);
    assert_eq!(t.central_name(), "orders");
    assert_eq!(c.conflict_for(t), ConflictPolicy::ServerWins);
    assert!(c.serve.is_none());
    c.validate().expect("minimal config is valid");
}

#[test]
fn every_key_parses() {
    let c = parse(
        r#"
[central]
url = "postgres://sync@db.example/erp"
password_env = "PGPASS"
ca = "tls/ca.pem"

[[edge]]
node = "store-042"
path = "/var/lib/edgesync/store-042.db"
params = { region = "north", store_no = 42 }

[sync]
interval = "1m 30s"
batch_rows = 100
page_rows = 200
conflict = "last-write-wins"
retry_max = "1h"
conflict_retention = "90d"

[[table]]
name = "orders"
central = "sales.orders"
key = ["id", "line"]
direction = "push"
conflict = "client-wins"
deletes = "hard"
columns = { cust = "customer_id" }
filter = "region = :region"

[log]
level = "info,edgesync=debug"
format = "json"
"#,
    );
    assert_eq!(c.sync.interval, Duration::from_secs(90));
    assert_eq!(c.sync.conflict, ConflictPolicy::LastWriteWins);
    assert_eq!(c.sync.retry_max, Duration::from_secs(3600));
    assert_eq!(c.sync.conflict_retention, Duration::from_secs(90 * 86_400));
    assert_eq!(c.edges[0].params["store_no"], "42");
    let t = &c.tables[0];
    assert_eq!(t.central_name(), "sales.orders");
    assert_eq!(
        t.key.as_deref(),
        Some(&["id".to_string(), "line".to_string()][..])
    );
    assert_eq!(t.direction, Direction::Push);
    assert_eq!(t.deletes, DeleteMode::Hard);
    assert_eq!(t.central_column("cust"), "customer_id");
    assert_eq!(t.central_column("total"), "total");
    assert_eq!(c.log.format, LogFormat::Json);
    c.validate().expect("valid");
}

#[test]
fn unknown_key_is_named_with_its_path() {
    let err = parse_err(
        r#"
[central]
url = "sqlite://c.db"
[[edge]]
node = "a"
path = "a.db"
[[table]]
name = "products"
[[table]]
name = "orders"
conflcit = "client-wins"
"#,
    );
    let p = problem(&err, "table[1].conflcit");
    assert!(p.message.contains("unknown field"), "{p}");
    let err = parse_err("[central]\nurl = \"sqlite://c.db\"\n[sync]\nbatchrows = 1\n");
    problem(&err, "sync.batchrows");
    let err = parse_err("[central]\nurl = \"sqlite://c.db\"\n[sink]\nx = 1\n");
    problem(&err, "sink");
}

#[test]
fn load_errors_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "sync.toml",
        &format!("{MINIMAL}\n[sync]\ninterval = \"10 parsecs\"\n"),
    );
    let err = Config::load_from(&path, no_env()).expect_err("bad duration");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "{}: sync.interval: invalid duration \"10 parsecs\"",
            path.display()
        )),
        "{text}"
    );
}

#[test]
fn bad_values_are_named() {
    let err = parse_err(&format!("{MINIMAL}\n[sync]\nbatch_rows = \"many\"\n"));
    assert!(
        problem(&err, "sync.batch_rows").message.contains("invalid"),
        "{err}"
    );
    let err = parse_err(&format!("{MINIMAL}\n[sync]\ninterval = 10\n"));
    problem(&err, "sync.interval");
    let err = parse_err(
        "[central]\nurl = \"sqlite://c.db\"\n[[table]]\nname = \"t\"\ndirection = \"sideways\"\n",
    );
    let p = problem(&err, "table[0].direction");
    assert!(
        p.message.contains("sideways") && p.message.contains("pull"),
        "{p}"
    );
    let err = parse_err("[central]\nurl = \"sqlite://c.db\"\n[sync]\nconflict = \"merge\"\n");
    let p = problem(&err, "sync.conflict");
    assert!(p.message.contains("server-wins"), "{p}");
    let err = parse_err("[[edge]]\nnode = \"a\"\npath = \"a.db\"\n");
    assert!(
        problem(&err, "central").message.contains("missing"),
        "{err}"
    );
    let err = parse_err("[central]\npassword_env = \"X\"\n");
    assert!(
        problem(&err, "central.url").message.contains("missing"),
        "{err}"
    );
    let err = parse_err("[central]\nurl = \"sqlite://c.db\"\n[[table]]\ndirection = \"pull\"\n");
    problem(&err, "table[0].name");
    let err = parse_err("central = 5\n");
    assert!(
        problem(&err, "central")
            .message
            .ends_with("expected a table"),
        "{err}"
    );
    let err = parse_err(&format!("{MINIMAL}key = \"id\"\n"));
    assert!(
        problem(&err, "table[0].key")
            .message
            .contains("expected a list"),
        "{err}"
    );
}

#[test]
fn toml_syntax_error_is_one_line() {
    let err = parse_err("[central]\nurl = sqlite\n");
    let text = err.to_string();
    assert!(text.contains("line 2"), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[test]
fn env_overrides_apply_to_scalar_sections() {
    let c = Config::from_toml(
        MINIMAL,
        env(&[
            ("EDGESYNC_SYNC__BATCH_ROWS", "100"),
            ("EDGESYNC_SYNC__INTERVAL", "2s"),
            ("EDGESYNC_SYNC__CONFLICT", "client-wins"),
            ("EDGESYNC_CENTRAL__URL", "postgres://u:pw@db/erp"),
            ("EDGESYNC_LOG__FORMAT", "json"),
            ("EDGESYNC_CONFIG", "/elsewhere.toml"),
            ("EDGESYNC_CENTRAL_PASSWORD", "not an override"),
            ("EDGESYNC_TEST_PG_URL", "postgres://x"),
            ("PATH", "/bin"),
        ]),
    )
    .expect("overrides apply");
    assert_eq!(c.sync.batch_rows, 100);
    assert_eq!(c.sync.interval, Duration::from_secs(2));
    assert_eq!(c.sync.conflict, ConflictPolicy::ClientWins);
    assert_eq!(c.log.format, LogFormat::Json);
    // A password in a URL from the environment is allowed (it is a secret
    // source), and never shown.
    assert_eq!(c.central.url, "postgres://u:pw@db/erp");
    assert_eq!(c.central.redacted_url(), "postgres://u:***@db/erp");
    assert!(!format!("{:?}", c.central).contains("pw@"));
}

#[test]
fn env_override_errors_name_the_variable() {
    let err = Config::from_toml(MINIMAL, env(&[("EDGESYNC_SYNC__BATCH_ROWS", "lots")]))
        .expect_err("bad value");
    let p = problem(&err, "sync.batch_rows");
    assert!(p.message.contains("EDGESYNC_SYNC__BATCH_ROWS"), "{p}");
    let err = Config::from_toml(MINIMAL, env(&[("EDGESYNC_SYNC__BATCHROWS", "1")]))
        .expect_err("unknown key");
    let p = problem(&err, "sync.batchrows");
    assert!(p.message.contains("EDGESYNC_SYNC__BATCHROWS"), "{p}");
    let err = Config::from_toml(MINIMAL, env(&[("EDGESYNC_TABLE__NAME", "x")]))
        .expect_err("lists are not overridable");
    problem(&err, "EDGESYNC_TABLE__NAME");
}

#[test]
fn env_override_of_the_process_is_read_by_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "sync.toml",
        &format!("{MINIMAL}\n[log]\nlevel = \"warn\"\n"),
    );
    // Only this test sets this variable, to the default level, so that
    // other tests loading a config at the same time are not affected.
    let var = "EDGESYNC_LOG__LEVEL";
    std::env::set_var(var, DEFAULT_LOG_LEVEL);
    let loaded = Config::load(Some(&path));
    std::env::remove_var(var);
    assert_eq!(loaded.expect("loads").config.log.level, DEFAULT_LOG_LEVEL);
}

#[test]
fn relative_paths_resolve_against_the_config_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "sync.toml",
        &format!("{MINIMAL}\n[[edge]]\nnode = \"b\"\npath = \"/abs/b.db\"\n"),
    );
    let loaded = Config::load_from(&path, no_env()).expect("loads");
    assert_eq!(
        loaded.config.edges[0].path,
        dir.path().join("edges/store-1.db")
    );
    assert_eq!(loaded.config.edges[1].path, PathBuf::from("/abs/b.db"));
    assert_eq!(loaded.path, path);
}

#[test]
fn missing_file_names_every_path_tried() {
    let err =
        Config::load_from(Path::new("/nonexistent/sync.toml"), no_env()).expect_err("missing");
    assert!(matches!(err, ConfigError::NotFound { .. }));
    assert!(err.to_string().contains("/nonexistent/sync.toml"), "{err}");
    let err = ConfigError::NotFound {
        tried: DEFAULT_PATHS.iter().map(PathBuf::from).collect(),
    };
    let text = err.to_string();
    assert!(
        text.contains("./sync.toml") && text.contains("/etc/edgesync/sync.toml"),
        "{text}"
    );
}

#[test]
fn secrets_in_the_file_are_refused() {
    let err = parse_err("[central]\nurl = \"postgres://u@h/db\"\npassword = \"hunter2\"\n");
    let p = problem(&err, "central.password");
    assert!(
        p.message.contains("password_env") && p.message.contains("password_file"),
        "{p}"
    );
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let err = parse_err("[central]\nurl = \"https://hub:8443\"\ntoken = \"t\"\n");
    assert!(
        problem(&err, "central.token").message.contains("token_env"),
        "{err}"
    );
    let err = parse_err(&MINIMAL.replace("sqlite://central.db", "postgres://u:secret@h/db"));
    problem(&err, "central.url");
    assert!(!err.to_string().contains("secret"), "{err}");
    let err = parse_err(&MINIMAL.replace("sqlite://central.db", "postgres://u@h/db?password=s"));
    problem(&err, "central.url");
    // A user name alone is fine.
    parse(&MINIMAL.replace("sqlite://central.db", "postgres://u@h:5432/db"));
}

#[test]
fn secrets_are_read_from_env_and_file() {
    let mut c = parse(MINIMAL).central;
    assert_eq!(c.password().expect("none"), None);

    let var = "EDGESYNC_CONFIG_TEST_SECRET_3f9a";
    c.password_env = Some(var.into());
    let err = c.password().expect_err("unset");
    assert!(err.to_string().contains(var), "{err}");
    assert!(err.to_string().starts_with("central.password_env"), "{err}");
    std::env::set_var(var, "s3cret");
    let got = c.password();
    std::env::remove_var(var);
    assert_eq!(got.expect("set").as_deref(), Some("s3cret"));

    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "token", "tok-123\n");
    c.password_env = None;
    c.token_file = Some(file.clone());
    assert_eq!(c.token().expect("file").as_deref(), Some("tok-123"));
    let missing = dir.path().join("nope");
    c.token_file = Some(missing.clone());
    let err = c.token().expect_err("missing file");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn validation_names_central_problems() {
    let mut c = parse(MINIMAL);
    c.central.url = String::new();
    problem(&invalid(&c), "central.url");
    c.central.url = "redis://x".into();
    assert!(problem(&invalid(&c), "central.url")
        .message
        .contains("unknown scheme"));
    c.central.url = "central.db".into();
    assert!(problem(&invalid(&c), "central.url")
        .message
        .contains("no scheme"));
    for ok in [
        "sqlite://c.db",
        "postgres://h/db",
        "postgresql://h/db",
        "mysql://h/db",
        "mssql://h/db",
        "oracle://h/svc",
    ] {
        c.central.url = ok.into();
        c.validate().unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    c.central.url = "https://hub:8443".into();
    problem(&invalid(&c), "central.token_env");
    c.central.token_env = Some("TOKEN".into());
    c.tables.clear();
    c.validate().expect("a hub client needs no tables");
    c.central.token_file = Some("t".into());
    problem(&invalid(&c), "central.token_file");
}

#[test]
fn validation_names_edge_problems() {
    let mut c = parse(MINIMAL);
    c.edges.clear();
    problem(&invalid(&c), "edge");

    let edge = |node: &str, path: &str| EdgeConfig {
        node: node.into(),
        path: path.into(),
        params: Default::default(),
    };
    c.edges = vec![
        edge("store-1", "a.db"),
        edge("", "b.db"),
        edge("store-1", "c.db"),
        edge("bad id!", "a.db"),
        edge(&"x".repeat(65), "e.db"),
    ];
    let err = invalid(&c);
    let p = problem(&err, "edge[2].node");
    assert!(
        p.message.contains("\"store-1\"") && p.message.contains("edge[0]"),
        "{p}"
    );
    assert!(problem(&err, "edge[1].node").message.contains("empty"));
    problem(&err, "edge[3].node");
    problem(&err, "edge[4].node");
    assert!(problem(&err, "edge[3].path").message.contains("edge[0]"));
}

#[test]
fn validation_names_sync_problems() {
    let mut c = parse(MINIMAL);
    c.sync.batch_rows = 0;
    c.sync.page_rows = MAX_ROWS + 1;
    c.sync.interval = Duration::ZERO;
    c.sync.conflict = ConflictPolicy::Manual;
    c.sync.conflict_retention = Duration::ZERO;
    let err = invalid(&c);
    assert_eq!(
        keys(&err),
        [
            "sync.batch_rows",
            "sync.page_rows",
            "sync.interval",
            "sync.conflict_retention"
        ]
    );
    assert!(problem(&err, "sync.conflict_retention")
        .message
        .contains("longer than zero"));
    c.sync = SyncConfig {
        batch_rows: MAX_ROWS,
        page_rows: 1,
        ..SyncConfig::default()
    };
    c.validate().expect("bounds are inclusive");
}

#[test]
fn validation_names_table_problems() {
    let mut c = parse(MINIMAL);
    c.tables.clear();
    problem(&invalid(&c), "table");

    let c = parse(
        r#"
[central]
url = "sqlite://c.db"
[[edge]]
node = "store-1"
path = "a.db"
params = { region = "north" }
[[edge]]
node = "store-2"
path = "b.db"
[[table]]
name = "orders"
key = []
conflict = "field-merge"
filter = "region = :region AND kind::text <> ':skip' AND store = :store"
[[table]]
name = "Orders"
[[table]]
name = "es_meta"
columns = { es_x = "y", a = "es_b", c = "y", d = "Y" }
[[table]]
name = "pulled"
direction = "pull"
conflict = "client-wins"
central = "sales.es_pulled"
[[table]]
name = "copy"
central = "ORDERS"
key = ["id", "es_ver", "id"]
"#,
    );
    let err = invalid(&c);
    assert!(problem(&err, "table[0].key").message.contains("empty"));
    assert!(
        !keys(&err).contains(&"table[0].conflict"),
        "field-merge is a supported policy"
    );
    let filter: Vec<&Problem> = err
        .problems()
        .iter()
        .filter(|p| p.key == "table[0].filter")
        .collect();
    let text: Vec<String> = filter.iter().map(|p| p.message.clone()).collect();
    assert_eq!(filter.len(), 3, "{text:?}");
    assert!(text
        .iter()
        .any(|m| m.contains(":region") && m.contains("edge[1]") && m.contains("store-2")));
    assert!(text
        .iter()
        .any(|m| m.contains(":store") && m.contains("edge[0]")));
    assert!(!text
        .iter()
        .any(|m| m.contains("skip") || m.contains(":text")));
    let p = problem(&err, "table[1].name");
    assert!(
        p.message.contains("duplicate table") && p.message.contains("table[0]"),
        "{p}"
    );
    assert!(problem(&err, "table[2].name").message.contains("reserved"));
    assert!(problem(&err, "table[2].columns.es_x")
        .message
        .contains("reserved"));
    problem(&err, "table[2].columns.a");
    assert!(problem(&err, "table[2].columns.d")
        .message
        .contains("also mapped from \"c\""));
    assert!(problem(&err, "table[3].central")
        .message
        .contains("reserved"));
    assert!(
        !keys(&err).contains(&"table[3].conflict"),
        "pull + conflict is fine"
    );
    assert!(problem(&err, "table[4].central")
        .message
        .contains("table[0]"));
    let key_problems = err
        .problems()
        .iter()
        .filter(|p| p.key == "table[4].key")
        .count();
    assert_eq!(key_problems, 2, "{err}");
}

#[test]
fn all_problems_are_reported_together_one_per_line() {
    let mut c = parse(MINIMAL);
    c.central.url = "ftp://x".into();
    c.edges[0].node = String::new();
    c.sync.batch_rows = 0;
    c.tables[0].key = Some(vec![]);
    c.log.level = "loud".into();
    let err = c.validate().expect_err("invalid");
    assert_eq!(
        keys(&err),
        [
            "central.url",
            "edge[0].node",
            "sync.batch_rows",
            "table[0].key",
            "log.level"
        ]
    );
    let text = err.to_string();
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(text.lines().all(|l| !l.is_empty()));
    let with_file = err.with_file(Path::new("sync.toml")).to_string();
    assert!(
        with_file.lines().all(|l| l.starts_with("sync.toml: ")),
        "{with_file}"
    );
}

#[test]
fn located_validation_refuses_an_edge_that_is_the_central_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "sync.toml",
        &MINIMAL.replace("edges/store-1.db", "./central.db"),
    );
    let loaded = Config::load_from(&path, no_env()).expect("loads");
    loaded.config.validate().expect("fine without the location");
    let err = loaded.validate().expect_err("same file");
    problem(&err, "edge[0].path");
}

#[test]
fn serve_section_parses_and_is_checked() {
    let c = parse(
        r#"
[central]
url = "postgres://sync@db/erp"
[serve]
tls_cert = "tls/hub.pem"
tls_key = "tls/hub.key"
[[table]]
name = "orders"
"#,
    );
    let serve = c.serve.as_ref().expect("serve");
    assert_eq!(serve.listen, DEFAULT_LISTEN);
    c.validate().expect("a hub needs no edges");
    let mut bad = c.clone();
    if let Some(s) = bad.serve.as_mut() {
        s.listen = "8443".into();
    }
    problem(&invalid(&bad), "serve.listen");
}

#[test]
fn log_levels() {
    for ok in [
        "info",
        "DEBUG",
        "off",
        "info,edgesync=debug",
        "edgesync::engine=trace",
    ] {
        check_log_level(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in ["", "loud", "edgesync=verbose", "=debug"] {
        assert!(check_log_level(bad).is_err(), "{bad}");
    }
}

#[test]
fn filter_params_skip_strings_and_casts() {
    use super::validate::filter_params;
    assert_eq!(
        filter_params("a = :a AND b::int = :b_2 AND c = ':no' AND d = \":no\" AND e = :a"),
        ["a", "b_2"]
    );
    assert!(filter_params("x = 1").is_empty());
}

#[test]
fn metrics_section_parses_and_is_checked() {
    let c = parse(MINIMAL);
    assert!(c.metrics.is_none(), "no endpoint unless asked for");
    let c = parse(&format!("{MINIMAL}\n[metrics]\n"));
    let m = c.metrics.as_ref().expect("metrics");
    assert_eq!(m.listen, DEFAULT_METRICS_LISTEN);
    assert_eq!(
        m.healthz_window(Duration::from_secs(10)),
        MIN_HEALTHZ_WINDOW
    );
    assert_eq!(
        m.healthz_window(Duration::from_secs(60)),
        Duration::from_secs(180)
    );
    c.validate().expect("defaults are valid");

    let c = parse(&format!(
        "{MINIMAL}\n[metrics]\nlisten = \"0.0.0.0:9999\"\nhealthz_window = \"90s\"\n"
    ));
    let m = c.metrics.as_ref().expect("metrics");
    assert_eq!(
        m.healthz_window(Duration::from_secs(600)),
        Duration::from_secs(90)
    );

    let mut bad = c.clone();
    if let Some(m) = bad.metrics.as_mut() {
        m.listen = "localhost:9187".into();
        m.healthz_window = Some(Duration::ZERO);
    }
    let err = invalid(&bad);
    assert!(problem(&err, "metrics.listen")
        .message
        .contains("127.0.0.1:9187"));
    problem(&err, "metrics.healthz_window");

    let err = parse_err(&format!(
        "{MINIMAL}\n[metrics]\nhealthz_window = \"soon\"\n"
    ));
    problem(&err, "metrics.healthz_window");
    let err = parse_err(&format!("{MINIMAL}\n[metrics]\nport = 9187\n"));
    assert!(err.to_string().contains("port"), "{err}");

    let c = Config::from_toml(
        &format!("{MINIMAL}\n[metrics]\n"),
        env(&[("EDGESYNC_METRICS__LISTEN", "127.0.0.1:1234")]),
    )
    .expect("override");
    assert_eq!(
        c.metrics.as_ref().map(|m| m.listen.as_str()),
        Some("127.0.0.1:1234")
    );
}

#[test]
fn serve_limits_have_defaults_and_are_checked() {
    let c = parse(
        r#"
[central]
url = "postgres://sync@db/erp"
[serve]
tls_cert = "hub.pem"
tls_key = "hub.key"
max_body_bytes = 65536
request_timeout = "5s"
[[table]]
name = "orders"
"#,
    );
    let s = c.serve.as_ref().expect("serve");
    assert_eq!(s.max_body_bytes, 65536);
    assert_eq!(s.max_page_rows, DEFAULT_MAX_PAGE_ROWS);
    assert_eq!(s.rate_per_node, DEFAULT_RATE_PER_NODE);
    assert_eq!(s.rate_burst, DEFAULT_RATE_BURST);
    assert_eq!(s.request_timeout, Duration::from_secs(5));
    assert_eq!(s.clock_window, DEFAULT_CLOCK_WINDOW);
    c.validate().expect("valid");
    let mut bad = c.clone();
    if let Some(s) = bad.serve.as_mut() {
        s.max_body_bytes = 10;
        s.max_page_rows = 0;
        s.rate_burst = 0;
        s.request_timeout = Duration::ZERO;
        s.clock_window = Duration::from_secs(7200);
    }
    let err = invalid(&bad);
    for key in [
        "serve.max_body_bytes",
        "serve.max_page_rows",
        "serve.rate_burst",
        "serve.request_timeout",
        "serve.clock_window",
    ] {
        problem(&err, key);
    }
}

#[test]
fn serve_jwt_parses_and_each_problem_names_its_key() {
    let c = parse(
        r#"
[central]
url = "postgres://sync@db/erp"
[serve]
tls_cert = "tls/hub.pem"
tls_key = "tls/hub.key"
[serve.jwt]
issuer = "https://idp.example"
audience = "edgesync"
rs256_public_key = "idp.pem"
[[table]]
name = "orders"
"#,
    );
    let jwt = c.serve.as_ref().and_then(|s| s.jwt.clone()).expect("jwt");
    assert_eq!(jwt.leeway, DEFAULT_JWT_LEEWAY);
    c.validate().expect("valid");
    let mut bad = c.clone();
    if let Some(j) = bad.serve.as_mut().and_then(|s| s.jwt.as_mut()) {
        j.issuer = " ".into();
        j.audience = String::new();
        j.hs256_secret_env = Some("S".into());
        j.hs256_secret_file = Some("s".into());
        j.leeway = std::time::Duration::from_secs(3600);
    }
    let err = invalid(&bad);
    for key in [
        "serve.jwt.issuer",
        "serve.jwt.audience",
        "serve.jwt.hs256_secret_file",
        "serve.jwt.leeway",
    ] {
        problem(&err, key);
    }
    if let Some(j) = bad.serve.as_mut().and_then(|s| s.jwt.as_mut()) {
        *j = jwt.clone();
        j.rs256_public_key = None;
    }
    assert!(problem(&invalid(&bad), "serve.jwt")
        .message
        .contains("rs256_public_key"));
    let err = parse_err(
        "[central]\nurl = \"sqlite://c.db\"\n[serve]\ntls_cert = \"a\"\ntls_key = \"b\"\n\
         [serve.jwt]\nissuer = \"i\"\naudience = \"a\"\nhs256_secret = \"inline\"\n",
    );
    assert!(err.to_string().contains("hs256_secret"), "{err}");
}

/// `out-of-scope` is what the conflict log calls a push refused by a
/// filter; choosing it as a policy is refused, per table and as default.
#[test]
fn out_of_scope_is_not_a_conflict_policy() {
    let err = invalid(&parse(&format!("{MINIMAL}conflict = \"out-of-scope\"\n")));
    assert!(problem(&err, "table[0].conflict")
        .message
        .contains("not a policy"));
    let text = MINIMAL.replace(
        "[[table]]",
        "[sync]\nconflict = \"out-of-scope\"\n\n[[table]]",
    );
    let err = invalid(&parse(&text));
    assert!(problem(&err, "sync.conflict")
        .message
        .contains("not a policy"));
}
