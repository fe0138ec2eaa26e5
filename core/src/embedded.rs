//! The embedded default: a local sandboxd, started in the background when none answers.
//!
//! Used only when no E2B setting is configured (see [`crate::config`]). Steps:
//! 1. `GET <url>/health`; if it answers, use it.
//! 2. Otherwise take an exclusive `flock` on `<data dir>/sandboxd.start.lock` (so two processes
//!    never both start one), check `/health` again, then locate a launcher and spawn
//!    `sandboxd serve --listen <host:port> --data-dir <data dir>` in its own session with
//!    stdout/stderr appended to `<data dir>/sandboxd.log`.
//! 3. Wait for `/health` until a deadline (`E2B_SANDBOXD_START_TIMEOUT` seconds, default 60),
//!    failing early with the log's tail if the process exits.
//! 4. Read the API key from `<data dir>/api_key` (sandboxd writes it on first start).
//! 5. A create from the `base` template waits while it answers 404: a fresh sandboxd builds that
//!    template in the background ([`while_base_template_builds`]).
//!
//! Launcher search order: `$E2B_SANDBOXD_BIN`, launchers registered by a binding with
//! [`register_launcher`] (a `sandboxd` shipped next to the Python/Node package, or a command that
//! runs the server linked into the native module), `sandboxd` on `PATH`,
//! `<data dir>/bin/sandboxd`.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::config::EmbeddedServer;
use crate::error::{Error, Result};

/// A way to run sandboxd: a program and the arguments that come before `serve …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launcher {
    pub program: PathBuf,
    pub args: Vec<String>,
}

fn registered() -> &'static Mutex<Vec<Launcher>> {
    static L: OnceLock<Mutex<Vec<Launcher>>> = OnceLock::new();
    L.get_or_init(|| Mutex::new(Vec::new()))
}

/// Let a binding offer a launcher (tried after `$E2B_SANDBOXD_BIN`, before `PATH`). A plain
/// file path is only used when it exists.
pub fn register_launcher(launcher: Launcher) {
    let mut l = registered().lock().unwrap_or_else(|p| p.into_inner());
    if !l.contains(&launcher) {
        l.push(launcher);
    }
}

/// Candidate launchers, in search order; only existing programs are returned.
pub fn launchers(data_dir: &Path) -> Vec<Launcher> {
    let mut out = Vec::new();
    let plain = |p: PathBuf| Launcher { program: p, args: vec![] };
    if let Some(b) = std::env::var_os("E2B_SANDBOXD_BIN").filter(|b| !b.is_empty()) {
        out.push(plain(PathBuf::from(b)));
    }
    out.extend(registered().lock().unwrap_or_else(|p| p.into_inner()).iter().cloned());
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            out.push(plain(dir.join("sandboxd")));
        }
    }
    out.push(plain(data_dir.join("bin/sandboxd")));
    out.retain(|l| l.program.is_file());
    out
}

/// Make sure a sandboxd answers at `server.url` and return its API key.
///
/// Memoised per (url, data dir) for the life of the process; a failed attempt is retried by the
/// next call.
pub async fn ensure_running(server: &EmbeddedServer) -> Result<String> {
    type Cell = Arc<tokio::sync::OnceCell<String>>;
    static CELLS: OnceLock<Mutex<HashMap<(String, PathBuf), Cell>>> = OnceLock::new();
    let cell = {
        let mut m = CELLS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        m.entry((server.url.clone(), server.data_dir.clone())).or_default().clone()
    };
    cell.get_or_try_init(|| start_if_needed(server)).await.cloned()
}

async fn start_if_needed(server: &EmbeddedServer) -> Result<String> {
    let http = crate::api::http_client();
    let deadline = Instant::now() + start_timeout();
    if !healthy(http, &server.url).await {
        std::fs::create_dir_all(&server.data_dir).map_err(|e| {
            Error::sandbox(format!("cannot create {}: {e}", server.data_dir.display()))
        })?;
        let lock = lock_file(&server.data_dir, deadline).await?;
        if !healthy(http, &server.url).await {
            spawn_and_wait(http, server, deadline).await?;
        }
        drop(lock);
    }
    read_api_key(&server.data_dir, deadline).await
}

fn start_timeout() -> Duration {
    std::env::var("E2B_SANDBOXD_START_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(60))
}

async fn healthy(http: &reqwest::Client, url: &str) -> bool {
    let req = http.get(format!("{url}/health")).timeout(Duration::from_secs(2));
    matches!(req.send().await, Ok(r) if r.status().is_success())
}

/// An exclusive advisory lock, released when the file is dropped (closed).
async fn lock_file(data_dir: &Path, deadline: Instant) -> Result<File> {
    let path = data_dir.join("sandboxd.start.lock");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::sandbox(format!("cannot open {}: {e}", path.display())))?;
    loop {
        // SAFETY: flock on a file descriptor we own; LOCK_NB never blocks the runtime thread.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(f);
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout(format!(
                "another process holds {} while starting sandboxd",
                path.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn spawn_and_wait(http: &reqwest::Client, server: &EmbeddedServer, deadline: Instant) -> Result<()> {
    let Some(launcher) = launchers(&server.data_dir).into_iter().next() else {
        return Err(Error::sandbox(format!(
            "no sandboxd answers at {url} and no sandboxd binary was found (looked at \
             $E2B_SANDBOXD_BIN, the e2b package, PATH and {bin}). Install sandboxd, start it with \
             `sandboxd serve`, or set E2B_API_KEY to use E2B's cloud.",
            url = server.url,
            bin = server.data_dir.join("bin/sandboxd").display()
        )));
    };
    let listen = listen_addr(&server.url)?;
    let log_path = server.data_dir.join("sandboxd.log");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| Error::sandbox(format!("cannot open {}: {e}", log_path.display())))?;
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let log_err = log.try_clone().map_err(|e| Error::sandbox(e.to_string()))?;

    let mut cmd = Command::new(&launcher.program);
    cmd.args(&launcher.args)
        .args(["serve", "--listen", &listen, "--data-dir"])
        .arg(&server.data_dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    // SAFETY: setsid is async-signal-safe; it detaches sandboxd from our session and terminal so
    // a Ctrl-C aimed at the caller does not reach the daemon.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    tracing::info!(program = %launcher.program.display(), %listen, "starting sandboxd");
    let mut child = cmd.spawn().map_err(|e| {
        Error::sandbox(format!("cannot start {}: {e}", launcher.program.display()))
    })?;

    let exited = loop {
        if healthy(http, &server.url).await {
            break None;
        }
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout(format!(
                "sandboxd did not answer {}/health in time; its log ({}) ends with:\n{}",
                server.url,
                log_path.display(),
                log_tail(&log_path, log_start)
            )));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    };
    if let Some(status) = exited {
        return Err(Error::sandbox(format!(
            "sandboxd exited ({status}) before answering; its log ({}) ends with:\n{}",
            log_path.display(),
            log_tail(&log_path, log_start)
        )));
    }
    // Reap the daemon if it ever exits while we live, without blocking anyone.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

/// `host:port` to listen on, taken from a loopback URL.
pub fn listen_addr(url: &str) -> Result<String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| Error::InvalidArgument(format!("SANDBOXD_URL must be http://…, got {url}")))?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p),
        None => (hostport, "80"),
    };
    if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        return Err(Error::InvalidArgument(format!(
            "no sandboxd answers at {url}, and only a loopback address can be started locally"
        )));
    }
    let host = if host == "localhost" { "127.0.0.1" } else { host };
    Ok(format!("{host}:{port}"))
}

fn log_tail(path: &Path, from: u64) -> String {
    let mut s = String::new();
    if let Ok(mut f) = File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let start = from.max(len.saturating_sub(4000));
        let _ = f.seek(SeekFrom::Start(start));
        let _ = f.read_to_string(&mut s);
    }
    s
}

async fn read_api_key(data_dir: &Path, deadline: Instant) -> Result<String> {
    let path = data_dir.join("api_key");
    loop {
        match std::fs::read_to_string(&path) {
            Ok(k) if !k.trim().is_empty() => return Ok(k.trim().to_string()),
            _ if Instant::now() > deadline => {
                return Err(Error::Authentication(format!(
                    "sandboxd answers but its API key file {} is missing; set E2B_API_KEY or \
                     SANDBOXD_DATA_DIR to the server's data directory",
                    path.display()
                )));
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Run `attempt` (a create from the `base` template) again while it fails with 404: a sandboxd
/// that has just started builds that template in the background (minutes on a first start).
/// Bounded by `E2B_SANDBOXD_TEMPLATE_WAIT` seconds (default 900); tells the user once on stderr.
pub async fn while_base_template_builds<T, F, Fut>(server: &EmbeddedServer, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let wait = std::env::var("E2B_SANDBOXD_TEMPLATE_WAIT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(900));
    let deadline = Instant::now() + wait;
    let mut told = false;
    loop {
        match attempt().await {
            Err(Error::Sandbox { status: Some(404), message }) if Instant::now() < deadline => {
                if !told {
                    told = true;
                    eprintln!(
                        "e2b: waiting for the local sandboxd to build the base template ({message}); \
                         progress in {}",
                        server.data_dir.join("sandboxd.log").display()
                    );
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(listen_addr("http://127.0.0.1:49982").unwrap(), "127.0.0.1:49982");
        assert_eq!(listen_addr("http://localhost:5000/").unwrap(), "127.0.0.1:5000");
        assert!(listen_addr("http://10.0.0.1:5000").is_err());
        assert!(listen_addr("https://127.0.0.1:5000").is_err());
    }
}
