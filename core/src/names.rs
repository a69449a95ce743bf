//! Every name edgesync adds to a database starts with [`PREFIX`].
//!
//! `es_` starts with a letter, is lower case and short, so every derived name
//! stays valid unquoted on all five backends, including Oracle's 30-byte limit
//! for the names we build from a table name (see [`object_name`]). Application
//! tables and columns must not use the prefix; `check-config` refuses them.

/// The reserved prefix.
pub const PREFIX: &str = "es_";

/// Per-row version: on the central, the row's version from a central counter;
/// on an edge, the local change sequence of the row's last local write
/// (0 = never written locally).
pub const COL_VER: &str = "es_ver";
/// Edge only: the central version this row was last synced at (the conflict
/// base). NULL when the row has never been synced.
pub const COL_CVER: &str = "es_cver";
/// Soft-delete marker (0/1 or boolean).
pub const COL_DELETED: &str = "es_deleted";
/// Hybrid logical clock stamp of the row's last write (see [`crate::hlc`]).
pub const COL_HLC: &str = "es_hlc";
/// Central only: the node whose push last wrote the row (NULL = a central
/// application write).
pub const COL_ORIGIN: &str = "es_origin";
/// Central only: the origin node's local sequence number of that write.
pub const COL_OSEQ: &str = "es_oseq";
/// Central only, where the backend needs it for commit-safe watermarks (e.g.
/// PostgreSQL's writing transaction id).
pub const COL_TXID: &str = "es_txid";

/// Is `name` reserved for edgesync?
pub fn is_reserved(name: &str) -> bool {
    name.len() >= PREFIX.len() && name[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
}

/// A per-table object name (`es_<kind>_<table>`), cut to `max_len` bytes with
/// a stable hash suffix when the table name is long, so the result is valid on
/// backends with short identifier limits and still unique per table.
pub fn object_name(kind: &str, table: &str, max_len: usize) -> String {
    let table = table.replace(['.', '"', '`', '[', ']', ' '], "_");
    let full = format!("{PREFIX}{kind}_{table}");
    if full.len() <= max_len {
        return full;
    }
    let hash = fnv1a(full.as_bytes());
    let suffix = format!("_{:08x}", hash as u32);
    let mut keep = max_len.saturating_sub(suffix.len());
    while !full.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}{}", &full[..keep], suffix)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_prefix_is_case_insensitive() {
        assert!(is_reserved("es_ver"));
        assert!(is_reserved("ES_VER"));
        assert!(!is_reserved("estimate"));
        assert!(!is_reserved("e"));
    }

    #[test]
    fn long_object_names_are_cut_stably_and_uniquely() {
        let a = object_name("trg", "a_very_long_table_name_for_oracle_limits_1", 30);
        let b = object_name("trg", "a_very_long_table_name_for_oracle_limits_2", 30);
        assert!(a.len() <= 30 && b.len() <= 30, "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(
            a,
            object_name("trg", "a_very_long_table_name_for_oracle_limits_1", 30)
        );
        assert_eq!(object_name("trg", "orders", 30), "es_trg_orders");
        assert_eq!(
            object_name("trg", "sales.orders", 63),
            "es_trg_sales_orders"
        );
    }
}
