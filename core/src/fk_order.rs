//! Ordering the rows of one self-referencing table inside one batch
//! (`parent_id REFERENCES same(id)`), for databases that check a foreign
//! key row by row (MySQL/InnoDB, and any constraint not declared
//! DEFERRABLE): a parent is inserted before its children, and children are
//! deleted before their parent. Pure and database-free, so every adapter
//! that needs it orders the same way.
//!
//! A row's parent is found by comparing its foreign-key values with the
//! other rows' keys ([`crate::Value::same_as`]); rows whose parent is not in
//! the set keep their relative order, and a cycle (which only deferred
//! constraints could accept) is broken where it is met.

use crate::value::Value;

/// One foreign key of a table onto its own key: for each key column (in
/// the mapping's key order), the position of the referencing column in the
/// mapping's column order.
pub type SelfReference = Vec<usize>;

/// `rows` reordered so that every row comes after the row its values
/// reference through any of `refs`. `key(i)` is row `i`'s key, `values(i)`
/// its column values (`None`: not known, the row references nothing).
pub fn parents_first<'a>(
    rows: &[usize],
    refs: &[SelfReference],
    key: impl Fn(usize) -> &'a [Value],
    values: impl Fn(usize) -> Option<&'a [Value]>,
) -> Vec<usize> {
    if refs.is_empty() || rows.len() < 2 {
        return rows.to_vec();
    }
    // parent[n]: positions in `rows` that row n references.
    let parents: Vec<Vec<usize>> = rows
        .iter()
        .map(|&i| {
            let Some(vals) = values(i) else {
                return Vec::new();
            };
            refs.iter()
                .filter_map(|cols| {
                    let target: Option<Vec<&Value>> = cols.iter().map(|&c| vals.get(c)).collect();
                    let target = target?;
                    if target.iter().any(|v| matches!(v, Value::Null)) {
                        return None;
                    }
                    rows.iter().position(|&j| {
                        j != i
                            && key(j).len() == target.len()
                            && key(j).iter().zip(&target).all(|(a, b)| a.same_as(b))
                    })
                })
                .collect()
        })
        .collect();
    let mut state = vec![0u8; rows.len()]; // 0 new, 1 on the path, 2 placed
    let mut out = Vec::with_capacity(rows.len());
    for start in 0..rows.len() {
        visit(start, &parents, &mut state, &mut |n| out.push(rows[n]));
    }
    out
}

/// Depth-first: a row's parents are placed before it. An explicit stack, so
/// a deep tree cannot overflow the thread's stack.
fn visit(start: usize, parents: &[Vec<usize>], state: &mut [u8], place: &mut impl FnMut(usize)) {
    if state[start] != 0 {
        return;
    }
    let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
    state[start] = 1;
    while let Some((n, next)) = stack.pop() {
        match parents[n].get(next) {
            Some(&p) => {
                stack.push((n, next + 1));
                if state[p] == 0 {
                    state[p] = 1;
                    stack.push((p, 0));
                }
            }
            None => {
                state[n] = 2;
                place(n);
            }
        }
    }
}

/// `rows` reordered so that children come before their parents (the
/// reverse of [`parents_first`]), for deletes.
pub fn children_first<'a>(
    rows: &[usize],
    refs: &[SelfReference],
    key: impl Fn(usize) -> &'a [Value],
    values: impl Fn(usize) -> Option<&'a [Value]>,
) -> Vec<usize> {
    let mut out = parents_first(rows, refs, key, values);
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows `(id, parent)`, key = column 0, the reference = column 1.
    fn tree(rows: &[(i64, Option<i64>)]) -> (Vec<Vec<Value>>, Vec<Vec<Value>>) {
        let keys = rows.iter().map(|(id, _)| vec![Value::Int(*id)]).collect();
        let values = rows
            .iter()
            .map(|(id, up)| vec![Value::Int(*id), up.map_or(Value::Null, Value::Int)])
            .collect();
        (keys, values)
    }

    #[test]
    fn parents_before_children_and_the_reverse_for_deletes() {
        // 3 -> 2 -> 1, and 4 -> 1; 9 references a row not in the batch.
        let (keys, values) = tree(&[
            (3, Some(2)),
            (2, Some(1)),
            (9, Some(7)),
            (1, None),
            (4, Some(1)),
        ]);
        let rows: Vec<usize> = (0..5).collect();
        let refs = vec![vec![1]];
        let order = parents_first(&rows, &refs, |i| &keys[i], |i| Some(&values[i]));
        let pos = |id: i64| order.iter().position(|&i| keys[i][0] == Value::Int(id));
        assert!(
            pos(1) < pos(2) && pos(2) < pos(3) && pos(1) < pos(4),
            "{order:?}"
        );
        assert_eq!(order.len(), 5);
        let rev = children_first(&rows, &refs, |i| &keys[i], |i| Some(&values[i]));
        let order_rev: Vec<usize> = order.iter().rev().copied().collect();
        assert_eq!(rev, order_rev);
    }

    #[test]
    fn no_reference_or_a_cycle_keeps_every_row_once() {
        let (keys, values) = tree(&[(1, Some(2)), (2, Some(1)), (3, None)]);
        let rows = vec![0, 1, 2];
        let order = parents_first(&rows, &[vec![1]], |i| &keys[i], |i| Some(&values[i]));
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, rows);
        assert_eq!(parents_first(&rows, &[], |i| &keys[i], |_| None), rows);
    }
}
