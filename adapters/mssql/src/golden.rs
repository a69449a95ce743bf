//! Golden files: the provisioning plan and the main DML for representative
//! mappings, rendered without a server and compared with
//! `tests/golden/*.sql` (reviewed by a person). `EDGESYNC_BLESS=1` rewrites
//! them. Every statement is also given to sqlparser's `MsSqlDialect`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use edgesync_core::central::Statement;
use edgesync_core::{
    ColType, ColumnMap, ConflictPolicy, DeleteMode, Direction, QualifiedName, TableMapping,
};
use sqlparser::dialect::MsSqlDialect;
use sqlparser::parser::Parser;

use crate::{meta, pull, resolve, sql, write};

fn col(name: &str, ty: ColType) -> ColumnMap {
    ColumnMap {
        edge: name.into(),
        central: name.into(),
        ty,
        edge_ty: ty,
        nullable: true,
    }
}

/// Composite key, every type, soft deletes, a schema-qualified name with a
/// character that needs quoting.
pub(crate) fn every_type() -> TableMapping {
    TableMapping {
        edge: "order_lines".into(),
        central: QualifiedName::parse("sales.order]lines"),
        columns: vec![
            col("order_id", ColType::Int),
            col("line_no", ColType::Int),
            col("flag", ColType::Bool),
            col("ratio", ColType::Float),
            col(
                "price",
                ColType::Decimal {
                    precision: Some(38),
                    scale: Some(10),
                },
            ),
            col("note", ColType::Text { max_len: Some(200) }),
            col("body", ColType::Text { max_len: None }),
            col("payload", ColType::Bytes),
            col("due", ColType::Date),
            col("at_time", ColType::Time),
            col("created", ColType::Timestamp),
            col("updated_tz", ColType::TimestampTz),
            col("ref_id", ColType::Uuid),
            col("doc", ColType::Json),
        ],
        key: vec![0, 1],
        direction: Direction::Both,
        conflict: ConflictPolicy::FieldMerge,
        deletes: DeleteMode::Soft,
    }
}

/// Hard deletes, a long unqualified name, a key of text, UUID, date,
/// timestamp with zone and decimal.
pub(crate) fn long_hard() -> TableMapping {
    TableMapping {
        edge: "events".into(),
        central: QualifiedName::parse(&format!("device_events_{}", "x".repeat(106))),
        columns: vec![
            col("region", ColType::Text { max_len: Some(10) }),
            col("device", ColType::Uuid),
            col("day", ColType::Date),
            col("at", ColType::TimestampTz),
            col(
                "amount",
                ColType::Decimal {
                    precision: Some(12),
                    scale: Some(2),
                },
            ),
            col("reading", ColType::Float),
        ],
        key: vec![0, 1, 2, 3, 4],
        direction: Direction::Both,
        conflict: ConflictPolicy::ServerWins,
        deletes: DeleteMode::Hard,
    }
}

fn st(purpose: &str, sql: String) -> Statement {
    Statement {
        purpose: purpose.into(),
        sql,
    }
}

/// The main DML of a push and a pull for `t`.
pub(crate) fn dml(t: &TableMapping) -> Vec<Statement> {
    let natives: Vec<sql::Native> = t
        .columns
        .iter()
        .map(|c| sql::default_native(c.ty))
        .collect();
    let all: Vec<usize> = (0..t.columns.len()).collect();
    let cols: Vec<(String, ColType)> = t
        .columns
        .iter()
        .map(|c| (c.central.clone(), c.ty))
        .collect();
    vec![
        st("create the staging table", write::stage_ddl(t, &natives)),
        st("stage two keys", write::stage_insert_sql(t, &t.key, 2)),
        st("stage two rows", write::stage_insert_sql(t, &all, 2)),
        st("lock current rows and tombstones", write::fetch_sql(t)),
        st("update existing rows", write::update_sql(t)),
        st("insert new rows", write::insert_sql(t, &natives)),
        st("hard delete rows, write tombstones", write::delete_sql(t)),
        st("read the new versions", write::versions_sql(t)),
        st(
            "log two conflicts",
            meta::log_sql(&sql::meta(&t.central, "es_conflicts"), 2),
        ),
        st("read the pull bound", pull::BOUND_SQL.to_string()),
        st("pull rows, initial load", pull::rows_sql(t, false, false)),
        st(
            "pull rows after a watermark and a cursor",
            pull::rows_sql(t, true, true),
        ),
        st(
            "pull tombstones, initial load",
            pull::tombs_sql(t, false, false),
        ),
        st(
            "pull tombstones after a watermark and a cursor",
            pull::tombs_sql(t, true, true),
        ),
        st(
            "conflicts resolve --keep local",
            resolve::upsert_sql(&sql::table_ref(&t.central), &cols, &t.key, false),
        ),
    ]
}

fn render(statements: &[Statement]) -> String {
    let mut out = String::new();
    for s in statements {
        out.push_str(&format!("-- {}\n{}\nGO\n\n", s.purpose, s.sql.trim_end()));
    }
    out
}

fn check_golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var("EDGESYNC_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with EDGESYNC_BLESS=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the rendered SQL at line {}:\n  golden:   {:?}\n  rendered: {:?}\n\
             review the change, then run with EDGESYNC_BLESS=1 to accept it",
            path.display(),
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

/// Statements sqlparser's MsSqlDialect does not parse, by purpose prefix:
/// T-SQL's column lists after one `ADD` or `DROP COLUMN` (`ALTER TABLE t ADD
/// a int, b int`) are not in its grammar. Everything else must parse.
const NOT_PARSEABLE: &[&str] = &[
    "add the edgesync metadata columns",
    "drop the edgesync metadata columns",
];

/// sqlparser does not know table hints on a `MERGE` target
/// (`MERGE t WITH (HOLDLOCK) AS ts`); the rest of the statement is checked
/// without the hint.
fn without_merge_hints(sql: &str) -> String {
    sql.replace(" WITH (HOLDLOCK) AS ts", " AS ts")
}

fn parse_all(statements: &[Statement]) -> Vec<String> {
    let mut failures = Vec::new();
    for s in statements {
        if let Err(e) = Parser::parse_sql(&MsSqlDialect {}, &without_merge_hints(&s.sql)) {
            failures.push(format!("{}: {e}", s.purpose));
        }
    }
    failures
}

fn assert_parses(statements: &[Statement]) {
    let failures: Vec<String> = parse_all(statements)
        .into_iter()
        .filter(|f| !NOT_PARSEABLE.iter().any(|p| f.starts_with(p)))
        .collect();
    assert!(
        failures.is_empty(),
        "MsSqlDialect cannot parse:\n{}",
        failures.join("\n")
    );
}

#[test]
fn provisioning_plan_matches_the_golden_file() {
    let tables = [every_type(), long_hard()];
    let init = crate::render_init_plan(&tables).unwrap();
    check_golden("init.sql", &render(&init));
    let deinit = crate::render_deinit_plan(&tables, true).unwrap();
    check_golden("deinit.sql", &render(&deinit));
    assert_parses(&init);
    assert_parses(&deinit);
}

#[test]
fn push_and_pull_dml_matches_the_golden_file() {
    let mut all = dml(&every_type());
    all.extend(dml(&long_hard()));
    check_golden("dml.sql", &render(&all));
    assert_parses(&all);
}

#[test]
fn identifiers_stay_within_the_limit_and_are_quoted() {
    let t = long_hard();
    let init = crate::render_init_plan(std::slice::from_ref(&t)).unwrap();
    let name = sql::object_name("trg_w", &t.central);
    assert!(name.len() <= sql::MAX_IDENT, "{name}");
    assert!(init.iter().any(|s| s.sql.contains(&sql::ident(&name))));
    // The `]` in the table name is doubled everywhere it appears.
    let e = every_type();
    for s in crate::render_init_plan(std::slice::from_ref(&e)).unwrap() {
        assert!(!s.sql.contains("[order]lines]"), "{}", s.sql);
    }
    // A soft-delete table gets the INSTEAD OF trigger, a hard one does not.
    let soft = crate::render_init_plan(std::slice::from_ref(&e)).unwrap();
    assert!(soft.iter().any(|s| s.sql.contains("INSTEAD OF DELETE")));
    assert!(!init.iter().any(|s| s.sql.contains("INSTEAD OF DELETE")));
}
