//! The order tables are synced in, from their foreign keys.
//!
//! Parents go before children, so an inserted child meets its parent
//! already there on the other side. Deletes want the opposite (a child
//! must go before its parent); rather than split a table's changes into
//! separate insert and delete passes — which the push protocol cannot do,
//! since every push acknowledges a contiguous run of local sequences — the
//! engine keeps this one order and lets a table whose change is refused
//! for a constraint wait until the other tables have moved (see
//! [`super::passes`]). Starting parents first makes that wait the exception:
//! it only happens for deletes of parents, and costs one extra attempt.

/// Indices into `tables` (edge table names), parents before children. `refs` are `(child,
/// parent)` edge table names (as [`edgesync_sqlite::EdgeDb::references`]
/// lists them). Self-references do not constrain the order (the adapters
/// apply a table's batch in one transaction). Tables in a cycle, and
/// tables unrelated to each other, keep their config order.
pub fn parents_first(tables: &[String], refs: &[(String, String)]) -> Vec<usize> {
    let index = |name: &str| tables.iter().position(|t| t.eq_ignore_ascii_case(name));
    // parents[i]: the tables i references (other than itself).
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); tables.len()];
    for (child, parent) in refs {
        if let (Some(c), Some(p)) = (index(child), index(parent)) {
            if c != p && !parents[c].contains(&p) {
                parents[c].push(p);
            }
        }
    }
    let mut placed = vec![false; tables.len()];
    let mut out = Vec::with_capacity(tables.len());
    while out.len() < tables.len() {
        // The first table in config order whose parents are all placed; in
        // a cycle there is none, so the first unplaced one breaks it.
        let ready = (0..tables.len())
            .find(|&i| !placed[i] && parents[i].iter().all(|&p| placed[p]))
            .or_else(|| (0..tables.len()).find(|&i| !placed[i]));
        let Some(i) = ready else { break };
        placed[i] = true;
        out.push(i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    fn refs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(c, p)| (c.to_string(), p.to_string()))
            .collect()
    }

    #[test]
    fn parents_come_first_whatever_the_config_order() {
        let tables = names(&["lines", "orders", "customers", "x"]);
        let order = parents_first(
            &tables,
            &refs(&[
                ("lines", "orders"),
                ("orders", "Customers"),
                ("lines", "lines"),
            ]),
        );
        assert_eq!(order, vec![2, 1, 0, 3]);
    }

    #[test]
    fn cycles_and_self_references_keep_config_order() {
        let tables = names(&["a", "b", "c"]);
        // c is free at once; the a/b cycle is broken at the first of them.
        let order = parents_first(&tables, &refs(&[("a", "b"), ("b", "a"), ("c", "c")]));
        assert_eq!(order, vec![2, 0, 1]);
        assert_eq!(parents_first(&tables, &[]), vec![0, 1, 2]);
    }
}
