//! The real `edgesync` binary as a child process: timed, with its peak
//! resident set size, or running as the daemon.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Where the `edgesync` binary is: `explicit`, else the one next to this
/// benchmark in the same target directory and profile, built (or found up to
/// date) by `cargo build` first.
pub fn edgesync_binary(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if !p.is_file() {
            bail!("--edgesync {}: no such file", p.display());
        }
        return Ok(p);
    }
    let exe = std::env::current_exe().context("locating the benchmark binary")?;
    let dir = exe
        .parent()
        .context("the benchmark binary has no directory")?
        .to_path_buf();
    let profile = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug")
        .to_string();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--quiet", "-p", "edgesync", "--bin", "edgesync"]);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let status = cmd
        .status()
        .context("running cargo build for the edgesync binary")?;
    if !status.success() {
        bail!("cargo build of the edgesync binary failed ({status})");
    }
    let bin = dir.join("edgesync");
    if !bin.is_file() {
        bail!(
            "{} not found after cargo build; pass --edgesync PATH",
            bin.display()
        );
    }
    Ok(bin)
}

/// One finished run of the binary.
pub struct Run {
    pub elapsed: Duration,
    /// Peak resident set size in KiB.
    pub max_rss_kib: u64,
}

const GNU_TIME: &str = "/usr/bin/time";

/// Run `edgesync --config <config> <args>` to completion; stderr goes to
/// `log`. The peak RSS comes from GNU time (`%M`) when it is installed, else
/// from polling `VmHWM` in `/proc/<pid>/status` until the process exits.
pub fn run_measured(bin: &Path, config: &Path, args: &[&str], log: &Path) -> Result<Run> {
    let rss_file = log.with_extension("rss");
    let use_time = Path::new(GNU_TIME).is_file();
    let mut cmd = if use_time {
        let mut c = Command::new(GNU_TIME);
        c.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .stdout(Stdio::null())
        .stderr(File::create(log)?);
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let mut hwm = 0;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if !use_time {
            if let Some(kib) = vm_hwm(child.id()) {
                hwm = hwm.max(kib);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    if !status.success() {
        let tail = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(10).collect();
        bail!(
            "edgesync {} exited with {status}; last lines of {}:\n{}",
            args.join(" "),
            log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    if use_time {
        let text = std::fs::read_to_string(&rss_file)?;
        hwm = text
            .lines()
            .rev()
            .find_map(|l| l.trim().parse().ok())
            .with_context(|| format!("no peak RSS in {}: {text:?}", rss_file.display()))?;
    }
    Ok(Run {
        elapsed,
        max_rss_kib: hwm,
    })
}

fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `edgesync --config <config> run` in the background.
pub struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    pub fn start(bin: &Path, config: &Path, log: &Path) -> Result<Daemon> {
        let child = Command::new(bin)
            .arg("--config")
            .arg(config)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(File::create(log)?)
            .spawn()
            .with_context(|| format!("starting {} run", bin.display()))?;
        Ok(Daemon {
            child,
            log: log.to_path_buf(),
        })
    }

    /// Fail if the daemon has died.
    pub fn check(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "edgesync run exited with {status}; see {}",
                self.log.display()
            );
        }
        Ok(())
    }

    /// SIGTERM (by pid, through kill(1)), then wait; SIGKILL after 30 s.
    pub fn stop(mut self) -> Result<()> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Only reached when `stop` was not (an error path): do not leave the
        // daemon running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
