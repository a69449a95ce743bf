//! The harness of the daemon tests: `edgesync run` as a child process,
//! polling with deadlines, a loopback HTTP client and a cuttable TCP proxy.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::common::{Env, Sql};

/// How long a condition that should hold "soon" may take on a loaded CI
/// machine.
pub const SOON: Duration = Duration::from_secs(20);

/// A running `edgesync run`; killed if the test ends without stopping it.
pub struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Start `edgesync --config <env's> run` with stderr (JSON logs, as
    /// stderr is not a terminal) going to a file.
    pub fn start(env: &Env, vars: &[(&str, &str)]) -> Daemon {
        Daemon::spawn(env, vars, false)
    }

    /// [`Daemon::start`] with `WATCHDOG_PID` set to the daemon's own pid, as
    /// systemd does (through `sh -c 'WATCHDOG_PID=$$ exec ...'`).
    pub fn start_with_watchdog_pid(env: &Env, vars: &[(&str, &str)]) -> Daemon {
        Daemon::spawn(env, vars, true)
    }

    fn spawn(env: &Env, vars: &[(&str, &str)], watchdog_pid: bool) -> Daemon {
        let log = env
            .path()
            .join(format!("daemon-{}.log", uuid::Uuid::new_v4().simple()));
        let file = std::fs::File::create(&log).expect("log file");
        let bin = env!("CARGO_BIN_EXE_edgesync");
        let mut cmd = if watchdog_pid {
            let mut sh = Command::new("sh");
            sh.args(["-c", "WATCHDOG_PID=$$ exec \"$0\" \"$@\"", bin]);
            sh
        } else {
            Command::new(bin)
        };
        // The scheduler's own "edge synced" events are debug level.
        cmd.arg("--config")
            .arg(env.config_path())
            .args(["--log-level", "info,edgesync::daemon=debug"])
            .arg("run")
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start edgesync run");
        Daemon { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log's events (one JSON object per line).
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.log_text()
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
            })
            .collect()
    }

    /// Events whose message is `message` and whose fields include `fields`.
    pub fn count(&self, message: &str, fields: &[(&str, &str)]) -> usize {
        self.events()
            .iter()
            .filter(|e| e["message"].as_str() == Some(message))
            .filter(|e| fields.iter().all(|(k, v)| e[*k].as_str() == Some(*v)))
            .count()
    }

    /// Wait until the log holds a line containing every one of `needles`.
    pub fn wait_log(&mut self, needles: &[&str], within: Duration) {
        let ok = poll(within, || {
            self.assert_running();
            self.log_text()
                .lines()
                .any(|l| needles.iter().all(|n| l.contains(n)))
        });
        assert!(
            ok,
            "no log line with {needles:?} within {within:?}; log:\n{}",
            self.log_text()
        );
    }

    /// Wait until `node` has completed at least `n` syncs (of any tables).
    pub fn wait_synced(&mut self, node: &str, n: usize) {
        let ok = poll(SOON, || {
            self.assert_running();
            self.count("edge synced", &[("node", node)]) >= n
        });
        assert!(ok, "{node} did not sync; log:\n{}", self.log_text());
    }

    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!(
                "edgesync run exited early ({status}); log:\n{}",
                self.log_text()
            );
        }
    }

    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg("-s")
            .arg(name)
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -s {name} failed");
    }

    /// Wait for the process to exit; panics after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "edgesync run still running {within:?} after the signal; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then expect exit status 0 within 10 s.
    pub fn stop(mut self) {
        self.signal("TERM");
        let status = self.wait_exit(Duration::from_secs(10));
        assert!(status.success(), "exit {status}; log:\n{}", self.log_text());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Poll `f` every 20 ms until it is true or `within` has passed.
pub fn poll(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `SELECT count(*)` on the central.
pub async fn central_count(env: &Env, table: &str, cond: &str) -> i64 {
    let rows = env
        .central_query(Sql::all(&format!(
            "SELECT count(*) FROM {table} WHERE {cond}"
        )))
        .await;
    rows[0][0].parse().expect("count")
}

/// Wait until the central has at least `n` rows matching `cond`; returns
/// how long it took.
pub async fn wait_central(
    env: &Env,
    table: &str,
    cond: &str,
    n: i64,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let got = central_count(env, table, cond).await;
        if got >= n {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "central {table} has {got} rows where {cond}, expected {n}, after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn edge_count(path: &Path, sql: &str) -> i64 {
    let c = Connection::open(path).expect("open edge");
    c.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    c.query_row(sql, [], |r| r.get(0)).expect("count on edge")
}

/// A port nobody listens on (bind :0, read it, let it go).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// `GET path` over loopback: (status code, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// The value of the sample whose line starts with `series` (name and
/// labels exactly as exposed).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// A TCP proxy on loopback in front of the test PostgreSQL that a test can
/// cut (every connection reset, new ones refused) and restore: a network
/// outage between a gateway and its central.
pub struct Proxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    pub fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, stop2, live2) = (up.clone(), stop.clone(), live.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let pipe = |mut from: TcpStream, mut to: TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                };
                let clones = (client.try_clone(), server.try_clone());
                if let (Ok(c2), Ok(s2)) = clones {
                    if let Ok(mut l) = live2.lock() {
                        l.push(client.try_clone().expect("clone"));
                        l.push(server.try_clone().expect("clone"));
                    }
                    pipe(client, s2);
                    pipe(server, c2);
                }
            }
        });
        Proxy {
            port,
            up,
            stop,
            live,
        }
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.live.lock().expect("lock").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut();
    }
}

/// A `Duration` as `Debug` prints it (`1.5s`, `750.2ms`), in seconds.
pub fn debug_secs(s: &str) -> Option<f64> {
    match s.strip_suffix("ms") {
        Some(ms) => ms.parse::<f64>().ok().map(|v| v / 1000.0),
        None => s.strip_suffix('s')?.parse().ok(),
    }
}
