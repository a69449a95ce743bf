//! What a hub allows one request and one node: body size, rows per page,
//! request rate, time. The rate limiter is the only state a hub keeps, and
//! it is per instance on purpose: behind a load balancer each instance
//! enforces its own share, and losing it on restart loses nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::ServeConfig;

/// The limits of one hub, from `[serve]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest request body, compressed or not (413 above).
    pub max_body_bytes: usize,
    /// Most rows per pull page, whatever the edge asks for.
    pub max_page_rows: usize,
    /// Requests per second per node, sustained (429 above).
    pub rate_per_node: f64,
    /// Requests a node may make at once before the rate applies.
    pub rate_burst: f64,
    /// Longest a request may take, body included (503 after).
    pub request_timeout: Duration,
    /// How far a request's timestamp may be from the hub's clock (401 beyond).
    pub clock_window: Duration,
}

impl Limits {
    /// The limits `[serve]` sets.
    pub fn from_config(s: &ServeConfig) -> Limits {
        Limits {
            max_body_bytes: s.max_body_bytes,
            max_page_rows: s.max_page_rows,
            rate_per_node: f64::from(s.rate_per_node),
            rate_burst: f64::from(s.rate_burst.max(1)),
            request_timeout: s.request_timeout,
            clock_window: s.clock_window,
        }
    }
}

/// Token buckets, one per node.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

/// Nodes above this many buckets trigger a sweep of the full ones.
const SWEEP_AT: usize = 10_000;

impl RateLimiter {
    /// `rate` requests per second, `burst` at once; a rate of 0 means no
    /// limit.
    pub fn new(rate: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            rate,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one request from `node`'s bucket at `now`: `Ok` or how long to
    /// wait.
    pub fn check(&self, node: &str, now: Instant) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > SWEEP_AT {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(node.to_string()).or_insert((self.burst, now));
        let refill = now.saturating_duration_since(*at).as_secs_f64() * self.rate;
        *tokens = (*tokens + refill).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
}

/// `Retry-After` seconds for a wait (at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_gets_its_burst_then_its_rate() {
        let l = RateLimiter::new(2.0, 3.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check("a", t0).is_ok());
        }
        let wait = l.check("a", t0).expect_err("burst used up");
        assert!(wait <= Duration::from_millis(500), "{wait:?}");
        assert_eq!(retry_after_secs(wait), 1);
        // Another node has its own bucket.
        assert!(l.check("b", t0).is_ok());
        // Half a second later one more request is allowed, not two.
        let t1 = t0 + Duration::from_millis(500);
        assert!(l.check("a", t1).is_ok());
        assert!(l.check("a", t1).is_err());
        assert!(RateLimiter::new(0.0, 1.0).check("a", t0).is_ok());
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
