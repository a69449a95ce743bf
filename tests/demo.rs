//! `edgesync demo` runs with no database server and converges.

#[test]
fn demo_runs_without_a_server_and_all_copies_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgesync"))
        .args(["demo", "--dir"])
        .arg(dir.path())
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("All three databases agree"), "{stdout}");
    assert!(stdout.contains("conflict #1 on orders"), "{stdout}");
    // The demo ran the repository's example sync.toml, so it works as shipped.
    let written = std::fs::read_to_string(dir.path().join("sync.toml")).expect("sync.toml");
    assert_eq!(written, include_str!("../sync.toml"));
}
