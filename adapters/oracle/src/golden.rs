//! Golden files: the provisioning plan and the main DML for representative
//! mappings, rendered without a server and compared with
//! `tests/golden/*.sql` (reviewed by a person). `EDGESYNC_BLESS=1` rewrites
//! them.
//!
//! sqlparser has no Oracle dialect. Its `GenericDialect` parses every
//! statement here except the ones listed in [`NOT_PARSEABLE`]: PL/SQL
//! (`CREATE PACKAGE [BODY]`, trigger bodies assigning `:new.x := ...`) and
//! Oracle-only DDL (`CREATE SEQUENCE ... ORDER`, `ALTER TABLE ... ADD (...)`
//! and `DROP (...)`, `DROP PACKAGE`). Those are checked only by the golden
//! files and a real server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use edgesync_core::central::Statement;
use edgesync_core::{
    ColType, ColumnMap, ConflictPolicy, DeleteMode, Direction, QualifiedName, TableMapping,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use crate::sql;
use crate::write::{self, Names};
use crate::{meta, pull, resolve};

const OWNER: &str = "APP";

fn col(name: &str, ty: ColType) -> ColumnMap {
    ColumnMap {
        edge: name.to_lowercase(),
        central: name.into(),
        ty,
        edge_ty: ty,
        nullable: true,
    }
}

/// Composite key, every type Oracle maps, soft deletes, a schema-qualified
/// name.
pub(crate) fn every_type() -> TableMapping {
    TableMapping {
        edge: "order_lines".into(),
        central: QualifiedName::parse("SALES.ORDER_LINES"),
        columns: vec![
            col("ORDER_ID", ColType::Int),
            col("LINE_NO", ColType::Int),
            col("FLAG", ColType::Bool),
            col("RATIO", ColType::Float),
            col(
                "PRICE",
                ColType::Decimal {
                    precision: Some(38),
                    scale: Some(10),
                },
            ),
            col("NOTE", ColType::Text { max_len: Some(200) }),
            col("BODY", ColType::Text { max_len: None }),
            col("PAYLOAD", ColType::Bytes),
            col("CREATED", ColType::Timestamp),
            col("UPDATED_TZ", ColType::TimestampTz),
            col("REF_ID", ColType::Uuid),
            col("DOC", ColType::Json),
        ],
        key: vec![0, 1],
        direction: Direction::Both,
        conflict: ConflictPolicy::FieldMerge,
        deletes: DeleteMode::Soft,
    }
}

/// Hard deletes, a long unqualified mixed-case name, a key of text, UUID,
/// timestamp with zone and decimal.
pub(crate) fn long_hard() -> TableMapping {
    TableMapping {
        edge: "events".into(),
        central: QualifiedName::parse("Device_Events_Recorded_At_The_Edge_Gateways"),
        columns: vec![
            col("REGION", ColType::Text { max_len: Some(10) }),
            col("DEVICE", ColType::Uuid),
            col("AT", ColType::TimestampTz),
            col(
                "AMOUNT",
                ColType::Decimal {
                    precision: Some(12),
                    scale: Some(2),
                },
            ),
            col("READING", ColType::Float),
        ],
        key: vec![0, 1, 2, 3],
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
    let n = Names::of(t, OWNER);
    let all: Vec<usize> = (0..t.columns.len()).collect();
    let cols: Vec<(String, ColType)> = t
        .columns
        .iter()
        .map(|c| (c.central.clone(), c.ty))
        .collect();
    let mut order = Vec::new();
    vec![
        st(
            "stage keys (array bind)",
            write::stage_insert_sql(t, &n, &t.key),
        ),
        st(
            "stage rows (array bind)",
            write::stage_insert_sql(t, &n, &all),
        ),
        st("lock current rows", write::fetch_rows_sql(t, &n)),
        st("lock tombstones", write::fetch_tombs_sql(t, &n)),
        st("update existing rows", write::update_sql(t, &n)),
        st("insert new rows", write::insert_sql(t, &n)),
        st("hard delete rows", write::delete_sql(t, &n)),
        st(
            "write tombstones of hard deletes",
            write::tombs_merge_sql(t, &n),
        ),
        st("read the new versions", write::versions_sql(t, &n)),
        st(
            "log conflicts (array bind)",
            meta::log_sql(&sql::meta(&t.central, OWNER, "es_conflicts")),
        ),
        st("read the pull bound", pull::bound_sql(t, OWNER)),
        st(
            "pull rows, initial load",
            pull::rows_sql(t, OWNER, false, false, &mut order),
        ),
        st(
            "pull rows after a watermark and a cursor",
            pull::rows_sql(t, OWNER, true, true, &mut order),
        ),
        st(
            "pull tombstones, initial load",
            pull::tombs_sql(t, OWNER, false, false),
        ),
        st(
            "pull tombstones after a watermark and a cursor",
            pull::tombs_sql(t, OWNER, true, true),
        ),
        st(
            "conflicts resolve --keep local",
            resolve::upsert_sql(&sql::table_ref(&t.central, OWNER), &cols, &t.key),
        ),
    ]
}

fn render(statements: &[Statement]) -> String {
    let mut out = String::new();
    for s in statements {
        // SQL*Plus style: `/` ends PL/SQL and plain statements alike.
        out.push_str(&format!("-- {}\n{}\n/\n\n", s.purpose, s.sql.trim_end()));
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

/// Statements `GenericDialect` cannot parse, by purpose prefix: PL/SQL and
/// Oracle-only DDL (see the module docs). Everything else must parse.
const NOT_PARSEABLE: &[&str] = &[
    "central version counter",
    "helper package es_sync",
    "body of es_sync",
    "stamp every tombstone",
    "add the edgesync metadata columns",
    "trigger stamping every write",
    "drop the edgesync metadata columns",
    "drop the es_sync package",
];

fn assert_parses(statements: &[Statement]) {
    let mut failures = Vec::new();
    for s in statements {
        if NOT_PARSEABLE.iter().any(|p| s.purpose.starts_with(p)) {
            continue;
        }
        if let Err(e) = Parser::parse_sql(&GenericDialect {}, &s.sql) {
            failures.push(format!("{}: {e}", s.purpose));
        }
    }
    assert!(
        failures.is_empty(),
        "GenericDialect cannot parse:\n{}",
        failures.join("\n")
    );
}

#[test]
fn provisioning_plan_matches_the_golden_file() {
    let tables = [every_type(), long_hard()];
    let init = crate::render_init_plan(&tables, OWNER).unwrap();
    check_golden("init.sql", &render(&init));
    let deinit = crate::render_deinit_plan(&tables, true, OWNER).unwrap();
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
fn every_name_edgesync_makes_fits_30_bytes() {
    let t = long_hard();
    for kind in ["trg_s", "trg_t", "scn", "stg"] {
        let name = sql::object_name(kind, &t.central, OWNER);
        assert!(name.len() <= sql::MAX_OBJECT, "{name}");
    }
    let init = crate::render_init_plan(std::slice::from_ref(&t), OWNER).unwrap();
    // The user's mixed-case name is quoted exactly.
    assert!(init.iter().any(|s| s
        .sql
        .contains("\"APP\".\"Device_Events_Recorded_At_The_Edge_Gateways\"")));
    // A name with a double quote cannot be an Oracle identifier.
    let mut bad = t.clone();
    bad.central = QualifiedName::parse("a\"b");
    assert!(crate::render_init_plan(&[bad], OWNER).is_err());
}
