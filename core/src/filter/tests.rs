use super::*;
use crate::{ColumnMap, ConflictPolicy, DeleteMode, Direction, QualifiedName};

fn mapping() -> TableMapping {
    let col = |name: &str, ty| ColumnMap {
        edge: name.into(),
        central: name.into(),
        ty,
        edge_ty: ty,
        nullable: true,
    };
    TableMapping {
        edge: "t".into(),
        central: QualifiedName::parse("t"),
        columns: vec![
            col("id", ColType::Int),
            col("tenant", ColType::Text { max_len: None }),
            col("region", ColType::Text { max_len: None }),
            col("qty", ColType::Int),
            col("Active", ColType::Bool),
        ],
        key: vec![0],
        direction: Direction::Both,
        conflict: ConflictPolicy::ServerWins,
        deletes: DeleteMode::Soft,
    }
}

fn row(tenant: Option<&str>, region: &str, qty: i64) -> Vec<Value> {
    vec![
        Value::Int(1),
        tenant.map_or(Value::Null, |t| Value::Text(t.into())),
        Value::Text(region.into()),
        Value::Int(qty),
        Value::Bool(true),
    ]
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn filters_bind_the_nodes_values() {
    let m = mapping();
    let f = Filter::parse(
        "tenant = :tenant AND (region IN (:region, 'all') OR qty <> 0)",
        &m,
    )
    .expect("parse");
    assert_eq!(f.params(), ["tenant", "region"]);
    let p = params(&[("region", "north")]);
    let b = f.bind(Some("acme"), &p).expect("bind");
    assert!(b.selects(&row(Some("acme"), "north", 0)));
    assert!(b.selects(&row(Some("acme"), "all", 0)));
    assert!(b.selects(&row(Some("acme"), "south", 5)));
    assert!(!b.selects(&row(Some("acme"), "south", 0)));
    assert!(!b.selects(&row(Some("other"), "north", 0)));
    assert!(!b.selects(&row(None, "north", 0)), "NULL is never in scope");
    assert!(f.bind(None, &p).is_err(), ":tenant unbound");
    let f = Filter::parse("NOT tenant IS NULL AND qty != -1.0", &m).expect("parse");
    let b = f.bind(None, &BTreeMap::new()).expect("bind");
    assert!(b.selects(&row(Some("x"), "", 3)));
    assert!(!b.selects(&row(Some("x"), "", -1)));
    assert!(!b.selects(&row(None, "", 3)));
    let f = Filter::parse("region NOT IN ('a', 'b')", &m).expect("parse");
    let b = f.bind(None, &BTreeMap::new()).expect("bind");
    assert!(b.selects(&row(None, "c", 0)));
    assert!(!b.selects(&row(None, "a", 0)));
}

#[test]
fn unsupported_filters_are_refused() {
    let m = mapping();
    for bad in [
        "",
        "qty > 1",
        "nope = 1",
        "tenant = :tenant OR",
        "tenant = lower(:tenant)",
        "tenant = 'x",
        "region IN ()",
        "tenant = :tenant; DROP TABLE t",
    ] {
        assert!(Filter::parse(bad, &m).is_err(), "{bad:?} accepted");
    }
    assert!(Filter::parse("\"Region\" = 'it''s'", &m).is_ok());
}

#[test]
fn a_value_that_does_not_fit_its_column_is_refused_at_bind() {
    let m = mapping();
    let f = Filter::parse("qty = :q", &m).expect("parse");
    let err = f.bind(None, &params(&[("q", "lots")])).expect_err("bound");
    assert!(err.contains("qty") && err.contains("integer"), "{err}");
    let err = Scope::new("region = :region", &m, None, &BTreeMap::new()).expect_err("bound");
    assert!(
        err.to_string().contains("table t") && err.to_string().contains(":region"),
        "{err}"
    );
}

/// A dialect case: placeholders, column quoting, first number, the SQL.
type Case<'a> = (Placeholder, &'a dyn Fn(&str) -> String, usize, &'a str);

/// One filter in every dialect: columns quoted the dialect's way, every
/// value (literals too) a numbered or positional bind parameter, none in
/// the text, and a value with a quote bound as it is.
#[test]
fn rendering_binds_every_value_in_each_dialect() {
    let m = mapping();
    let scope = Scope::new(
        "region = :region AND (qty IN (1, :q) OR NOT tenant IS NULL) AND \"Active\" <> FALSE",
        &m,
        None,
        &params(&[("region", "o'north"), ("q", "7")]),
    )
    .expect("scope");
    let dq = |c: &str| format!("t.\"{}\"", c.replace('"', "\"\""));
    let bq = |c: &str| format!("`{}`", c.replace('`', "``"));
    let br = |c: &str| format!("[{}]", c.replace(']', "]]"));
    let cases: [Case; 5] = [
        (
            Placeholder::Dollar,
            &dq,
            3,
            "(t.\"region\" = $3 AND (t.\"qty\" IN ($4, $5) OR (NOT t.\"tenant\" IS NULL)) \
             AND t.\"Active\" <> $6)",
        ),
        (
            Placeholder::Question,
            &bq,
            1,
            "(`region` = ? AND (`qty` IN (?, ?) OR (NOT `tenant` IS NULL)) AND `Active` <> ?)",
        ),
        (
            Placeholder::QuestionNumbered,
            &dq,
            2,
            "(t.\"region\" = ?2 AND (t.\"qty\" IN (?3, ?4) OR (NOT t.\"tenant\" IS NULL)) \
             AND t.\"Active\" <> ?5)",
        ),
        (
            Placeholder::AtP,
            &br,
            1,
            "([region] = @P1 AND ([qty] IN (@P2, @P3) OR (NOT [tenant] IS NULL)) \
             AND [Active] <> @P4)",
        ),
        (
            Placeholder::Colon,
            &dq,
            10,
            "(t.\"region\" = :10 AND (t.\"qty\" IN (:11, :12) OR (NOT t.\"tenant\" IS NULL)) \
             AND t.\"Active\" <> :13)",
        ),
    ];
    for (ph, quote, first, want) in cases {
        let r = scope.render(ph, quote, first).expect("render");
        assert_eq!(r.sql, want, "{ph:?}");
        assert!(!r.sql.contains("north") && !r.sql.contains('\''), "{ph:?}");
        assert_eq!(
            r.params,
            vec![
                (
                    Value::Text("o'north".into()),
                    ColType::Text { max_len: None }
                ),
                (Value::Int(1), ColType::Int),
                (Value::Int(7), ColType::Int),
                (Value::Bool(false), ColType::Bool),
            ],
            "{ph:?}"
        );
    }
    let flag = scope
        .render_flag(Placeholder::Question, &bq, 1)
        .expect("flag");
    assert!(
        flag.sql.starts_with("CASE WHEN (`region` = ?"),
        "{}",
        flag.sql
    );
    assert!(flag.sql.ends_with(") THEN 1 ELSE 0 END"), "{}", flag.sql);
}

#[test]
fn a_column_named_like_an_injection_is_only_ever_quoted() {
    let mut m = mapping();
    m.columns[2].central = "re\"gion".into();
    let scope = Scope::new(
        "\"re\"\"gion\" = :r",
        &m,
        None,
        &params(&[("r", "x'; DROP TABLE t; --")]),
    )
    .expect("scope");
    let r = scope
        .render(
            Placeholder::Dollar,
            &|c| format!("\"{}\"", c.replace('"', "\"\"")),
            1,
        )
        .expect("render");
    assert_eq!(r.sql, "\"re\"\"gion\" = $1");
    assert_eq!(r.params[0].0, Value::Text("x'; DROP TABLE t; --".into()));
}

/// The push check: a change is refused when its new values or the central
/// row it would change are outside the scope; the answer gives the node the
/// central row only where it may hold it, else a move-out; a replayed
/// answer never hands out a row outside the scope.
#[test]
fn pushes_outside_the_scope_are_refused_and_answered_within_it() {
    let m = mapping();
    let scope = Scope::new(
        "region = :region",
        &m,
        None,
        &params(&[("region", "north")]),
    )
    .expect("scope");
    let change = |region: &str| Change {
        key: vec![Value::Int(1)],
        values: Some(row(None, region, 0)),
        deleted: false,
        version: 5,
        base: None,
        hlc: 9,
    };
    let central = |region: &str| CentralRow {
        values: Some(row(None, region, 0)),
        deleted: false,
        version: 7,
        hlc: 8,
        origin: None,
    };
    assert_eq!(
        scope.refuses(&change("north"), Some(&central("north"))),
        None
    );
    assert_eq!(scope.refuses(&change("north"), None), None);
    assert!(scope.refuses(&change("south"), None).is_some());
    assert!(scope
        .refuses(&change("north"), Some(&central("south")))
        .is_some());
    let tombstone = CentralRow {
        values: None,
        deleted: true,
        version: 7,
        hlc: 8,
        origin: None,
    };
    let delete = Change {
        values: None,
        deleted: true,
        ..change("north")
    };
    assert_eq!(scope.refuses(&delete, Some(&tombstone)), None);
    assert!(scope.refuses(&delete, Some(&central("south"))).is_some());

    let key = [Value::Int(1)];
    let PushOutcome::Superseded { row: Some(back) } =
        scope.refused_outcome(&key, Some(&central("north")))
    else {
        panic!("the central row in scope goes back")
    };
    assert_eq!(back.values, Some(row(None, "north", 0)));
    for c in [Some(central("south")), None] {
        let PushOutcome::Superseded { row: Some(gone) } = scope.refused_outcome(&key, c.as_ref())
        else {
            panic!("a move-out")
        };
        assert!(gone.is_move_out(), "{gone:?}");
    }
    let mut replay = PushOutcome::Superseded {
        row: Some(central("south").to_change(key.to_vec())),
    };
    scope.restrict(&mut replay);
    assert!(
        matches!(replay, PushOutcome::Superseded { row: Some(r) } if r.is_move_out() && r.version == 7)
    );
}
