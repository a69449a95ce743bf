//! What changed between two configs, in words for the log a reload writes.

use std::fmt::Debug;

use crate::config::{Config, EdgeConfig, TableConfig};

/// One line per change from `old` to `new`, e.g. `table notes added`,
/// `sync.interval: 10s -> 1m`. Empty when the files mean the same.
pub(crate) fn changes(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if old.central != new.central {
        if old.central.url != new.central.url {
            out.push(format!(
                "central.url: {} -> {}",
                old.central.redacted_url(),
                new.central.redacted_url()
            ));
        } else {
            out.push("[central] credentials or TLS settings changed".to_string());
        }
    }
    list(
        &mut out,
        "edge",
        &old.edges,
        &new.edges,
        |e: &EdgeConfig| e.node.clone(),
    );
    let s = (&old.sync, &new.sync);
    field(&mut out, "sync.interval", &s.0.interval, &s.1.interval);
    field(
        &mut out,
        "sync.batch_rows",
        &s.0.batch_rows,
        &s.1.batch_rows,
    );
    field(&mut out, "sync.page_rows", &s.0.page_rows, &s.1.page_rows);
    field(&mut out, "sync.conflict", &s.0.conflict, &s.1.conflict);
    field(&mut out, "sync.retry_max", &s.0.retry_max, &s.1.retry_max);
    list(
        &mut out,
        "table",
        &old.tables,
        &new.tables,
        |t: &TableConfig| t.name.to_ascii_lowercase(),
    );
    field(&mut out, "log.level", &old.log.level, &new.log.level);
    field(&mut out, "log.format", &old.log.format, &new.log.format);
    if old.metrics != new.metrics {
        out.push(format!("[metrics]: {:?} -> {:?}", old.metrics, new.metrics));
    }
    if old.serve != new.serve {
        out.push("[serve] changed".to_string());
    }
    out
}

fn field<T: PartialEq + Debug>(out: &mut Vec<String>, key: &str, old: &T, new: &T) {
    if old != new {
        out.push(format!("{key}: {old:?} -> {new:?}"));
    }
}

/// Entries added, removed and changed, matched by `id`.
fn list<T: PartialEq>(
    out: &mut Vec<String>,
    what: &str,
    old: &[T],
    new: &[T],
    id: impl Fn(&T) -> String,
) {
    for n in new {
        match old.iter().find(|o| id(o) == id(n)) {
            None => out.push(format!("{what} {} added", id(n))),
            Some(o) if o != n => out.push(format!("{what} {} changed", id(n))),
            Some(_) => {}
        }
    }
    for o in old {
        if !new.iter().any(|n| id(n) == id(o)) {
            out.push(format!("{what} {} removed", id(o)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[central]
url = "sqlite://central.db"

[[edge]]
node = "a"
path = "a.db"

[[edge]]
node = "b"
path = "b.db"

[sync]
interval = "10s"

[[table]]
name = "items"
"#;

    fn parse(text: &str) -> Config {
        Config::from_toml(text, Vec::new()).expect("parses")
    }

    #[test]
    fn names_what_was_added_removed_and_changed() {
        let old = parse(BASE);
        assert!(changes(&old, &old).is_empty());
        let text = BASE
            .replace("interval = \"10s\"", "interval = \"1m\"")
            .replace("path = \"b.db\"", "path = \"b2.db\"")
            .replace(
                "node = \"a\"\npath = \"a.db\"",
                "node = \"c\"\npath = \"c.db\"",
            );
        let new = parse(&format!("{text}\n[[table]]\nname = \"notes\"\n"));
        let got = changes(&old, &new);
        assert_eq!(
            got,
            [
                "edge c added",
                "edge b changed",
                "edge a removed",
                "sync.interval: 10s -> 60s",
                "table notes added",
            ],
            "{got:#?}"
        );
    }
}
