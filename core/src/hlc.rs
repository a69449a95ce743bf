//! Hybrid logical clock stamps.
//!
//! A stamp is one `i64`: wall-clock milliseconds shifted left 16 bits, plus a
//! 16-bit logical counter. Taking `max(now << 16, last + 1)` for every local
//! write and `max(local, received)` on every receive gives the HLC properties
//! with plain integer arithmetic — simple enough to compute inside a SQLite
//! trigger — and stamps that sort the way causality does even when a device's
//! wall clock is hours off. Ties between nodes are broken by node id.

/// Bits reserved for the logical counter.
pub const LOGICAL_BITS: u32 = 16;

/// Pack milliseconds and a counter into a stamp.
pub fn pack(millis: i64, counter: u16) -> i64 {
    (millis << LOGICAL_BITS) | i64::from(counter)
}

/// The wall-clock part of a stamp, in milliseconds since the Unix epoch.
pub fn millis(stamp: i64) -> i64 {
    stamp >> LOGICAL_BITS
}

/// The logical counter of a stamp.
pub fn counter(stamp: i64) -> u16 {
    (stamp & 0xffff) as u16
}

/// The next local stamp after `last` at wall time `now_millis`.
pub fn tick(last: i64, now_millis: i64) -> i64 {
    pack(now_millis, 0).max(last + 1)
}

/// Human-readable: `2024-05-01T10:00:00.123Z+3`.
pub fn display(stamp: i64) -> String {
    let ms = millis(stamp);
    let when = chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string());
    format!("{when}+{}", counter(stamp))
}

/// Compare two writes for last-write-wins: later stamp wins, node id breaks
/// ties (a central application write has the empty node id).
pub fn later(a: (i64, &str), b: (i64, &str)) -> bool {
    a > b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_is_monotonic_when_the_clock_goes_back() {
        let t1 = tick(0, 1_000_000);
        let t2 = tick(t1, 999_000);
        assert!(t2 > t1);
        assert_eq!(millis(t2), 1_000_000);
        assert_eq!(counter(t2), 1);
        let t3 = tick(t2, 1_000_001);
        assert_eq!(t3, pack(1_000_001, 0));
    }

    #[test]
    fn ties_break_by_node() {
        assert!(later((5, "b"), (5, "a")));
        assert!(later((6, "a"), (5, "z")));
        assert!(!later((5, ""), (5, "a")));
    }
}
