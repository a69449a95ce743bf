//! Compressed bodies: a large pull page travels zstd-compressed and the
//! edges still converge; a small body that inflates past
//! `serve.max_body_bytes` (a "zip bomb") is refused with 413 whatever its
//! compressed size, audited, and writes nothing; an encoding the hub does
//! not speak is 415; the zstd decoder survives random and mutated frames.

use std::io::Write;

use edgesync::hub::protocol as p;

use super::harness::{error_body, now, raw, HubEnv};
use super::{assert_refused, central, push_body, rows, scope_env};
use crate::common::{query_text, Backend, Sql};
use crate::roundtrip::{ITEMS, TABLES};

/// Rows on each side: enough for pages well above the compression
/// threshold.
const ROWS: i64 = 1500;

fn insert_notes(from: i64, to: i64, who: &str) -> String {
    let values: Vec<String> = (from..to)
        .map(|i| format!("({i}, 'note {i} written by {who}, with some text that repeats')"))
        .collect();
    format!("INSERT INTO notes (id, body) VALUES {};", values.join(", "))
}

async fn a_large_pull_travels_compressed_and_converges(backend: Backend) {
    let h = HubEnv::new(backend, &["a", "b"], &ITEMS, TABLES, "").await;
    let sql = insert_notes(1, ROWS + 1, "hq");
    h.env.central_run(Sql::all(&sql)).await;
    // The hub answers a pull page zstd-compressed (the edge accepts zstd and
    // gzip, the hub prefers zstd), and the page inflates to every row.
    let info = h.table_info("a", "notes").await;
    let body = serde_json::to_vec(&serde_json::json!({
        "node": "a", "table": info.central, "layout": info.layout, "token": null, "limit": ROWS,
    }))
    .expect("json");
    let r = raw(
        &h.transport(0),
        Some(&h.tokens["a"]),
        p::PULL,
        &body,
        now(),
        |_| {},
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.encoding.as_deref(),
        Some(p::ZSTD),
        "the page was not compressed"
    );
    let page: edgesync_core::PullPage = serde_json::from_slice(&r.body).expect("a pull page");
    assert!(page.changes.len() >= 100, "{} rows", page.changes.len());
    assert!(
        r.body.len() > 100 * p::COMPRESS_ABOVE,
        "{} bytes",
        r.body.len()
    );
    // Both ways through the real binary: a's large push travels compressed
    // too, and everything converges.
    h.env.init().await;
    h.env
        .edge("a")
        .execute_batch(&insert_notes(ROWS + 1, 2 * ROWS + 1, "a"))
        .expect("a writes");
    h.env.sync_all(2).await;
    let q = "SELECT count(*), min(id), max(id) FROM notes";
    let expected = rows(&[&["3000", "1", "3000"]]);
    assert_eq!(query_text(&h.env.edge("a"), q), expected);
    assert_eq!(query_text(&h.env.edge("b"), q), expected);
    let c = central(
        &h.env,
        "SELECT count(*) FROM notes",
        "SELECT count(*)::text FROM notes",
    )
    .await;
    assert_eq!(c, rows(&[&["3000"]]));
}

/// `data` compressed with `encoding` at its strongest.
fn compress(encoding: &str, data: &[u8]) -> Vec<u8> {
    match encoding {
        "zstd" => zstd::stream::encode_all(data, 19).expect("zstd"),
        _ => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            enc.write_all(data).expect("gzip");
            enc.finish().expect("gzip")
        }
    }
}

async fn a_zip_bomb_is_refused_by_its_inflated_size(backend: Backend) {
    const MAX: usize = 65_536;
    let h = scope_env(backend, &format!("max_body_bytes = {MAX}")).await;
    let info = h.table_info("a", "notes").await;
    // A valid push, padded with 32 MiB of whitespace (valid JSON) before it.
    let mut bomb = vec![b' '; 32 << 20];
    bomb.extend(push_body(&info, "a", 1));
    for encoding in ["zstd", "gzip"] {
        let z = compress(encoding, &bomb);
        assert!(z.len() < MAX, "{encoding}: {} compressed bytes", z.len());
        let r = raw(
            &h.transport(0),
            Some(&h.tokens["a"]),
            p::PUSH,
            &z,
            now(),
            |headers| headers.push(("content-encoding", encoding.to_string())),
        )
        .await;
        assert_refused(&h, &r, 413, "too_large", Some("a")).await;
    }
    // The same push, compressed and within the limit, is applied.
    let z = compress("zstd", &push_body(&info, "a", 1));
    let ok = raw(
        &h.transport(0),
        Some(&h.tokens["a"]),
        p::PUSH,
        &z,
        now(),
        |headers| headers.push(("content-encoding", "zstd".to_string())),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    // An encoding the hub does not speak: 415, and the client can tell why.
    let r = raw(
        &h.transport(0),
        Some(&h.tokens["a"]),
        p::PUSH,
        &push_body(&info, "a", 2),
        now(),
        |headers| headers.push(("content-encoding", "br".to_string())),
    )
    .await;
    assert_eq!(r.status, 415, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(error_body(&r).code, "unsupported_encoding");
    assert_eq!(
        h.last_audit().await[..3],
        ["a".to_string(), "unsupported_encoding".into(), "415".into()]
    );
}

hub_backends!(
    a_large_pull_travels_compressed_and_converges,
    a_zip_bomb_is_refused_by_its_inflated_size,
);

/// Random bytes and mutated zstd frames through the decoder: no panic, and
/// never more than the limit inflated. Bounded like the hub's other fuzz
/// pass (`EDGESYNC_FUZZ_CASES`, `EDGESYNC_FUZZ_SEED`).
#[test]
fn the_zstd_decoder_survives_random_and_mutated_frames() {
    use rand::{Rng, SeedableRng};
    let seed = crate::common::seed_from_env("EDGESYNC_FUZZ_SEED", "zstd fuzz");
    let cases = crate::common::env_usize("EDGESYNC_FUZZ_CASES", 4000);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let frame = compress("zstd", &vec![b'x'; 1 << 16]);
    for i in 0..cases {
        let input: Vec<u8> = if i % 2 == 0 {
            (0..rng.random_range(0..256))
                .map(|_| rng.random())
                .collect()
        } else {
            let mut f = frame.clone();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..f.len());
                f[at] ^= 1 << rng.random_range(0..8);
            }
            f.truncate(rng.random_range(1..=f.len()));
            f
        };
        if let Ok(out) = p::decode_body(Some(p::ZSTD), &input, 1 << 12) {
            assert!(out.len() <= 1 << 12);
        }
    }
}
