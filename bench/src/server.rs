//! A sandboxd started for one benchmark run: fresh data directory, shared template cache,
//! free loopback port. Dropping it stops the server, kills leftover VMs and unmounts the store.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use e2b::ConnectionOpts;

/// Extras of one sandboxd start (cluster nodes need them; a plain server does not).
#[derive(Debug, Default, Clone)]
pub struct Launch {
    /// Appended to `serve` (`--max-sandboxes` here replaces the default 64).
    pub args: Vec<String>,
    /// Written to `<data-dir>/api_key` before the start: a cluster's nodes share one key.
    pub api_key: Option<String>,
    /// Listen here instead of on a free port (a node's `--advertise-url` must name it).
    pub port: Option<u16>,
}

/// A free loopback port.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub struct Server {
    child: Child,
    pub data_dir: tempfile::TempDir,
    pub url: String,
    pub api_key: String,
}

impl Server {
    /// Without a warm pool: the scenarios measure restores (the `pool` scenario starts its own).
    pub fn start(bin: &Path, templates_dir: Option<&Path>) -> anyhow::Result<Server> {
        Self::start_with_env(bin, templates_dir, &[("SANDBOXD_POOL_SIZE", "0")])
    }

    /// [`Server::start`] with extra environment variables for sandboxd.
    pub fn start_with_env(bin: &Path, templates_dir: Option<&Path>, env: &[(&str, &str)]) -> anyhow::Result<Server> {
        Self::start_with(bin, templates_dir, env, &Launch::default())
    }

    /// [`Server::start_with_env`] with extra arguments and a preset API key.
    pub fn start_with(bin: &Path, templates_dir: Option<&Path>, env: &[(&str, &str)], launch: &Launch) -> anyhow::Result<Server> {
        let data_dir = tempfile::Builder::new().prefix("sandboxd-bench-").tempdir()?;
        let port = launch.port.map(Ok).unwrap_or_else(free_port)?;
        if let Some(key) = &launch.api_key {
            std::fs::write(data_dir.path().join("api_key"), key)?;
        }
        let mut cmd = Command::new(bin);
        cmd.arg("serve").arg("--listen").arg(format!("127.0.0.1:{port}")).arg("--data-dir").arg(data_dir.path());
        if !launch.args.iter().any(|a| a == "--max-sandboxes") {
            cmd.args(["--max-sandboxes", "64"]);
        }
        cmd.args(&launch.args);
        cmd.envs(env.iter().copied());
        if let Some(t) = templates_dir {
            cmd.arg("--templates-dir").arg(t);
        }
        let log = std::fs::File::create(data_dir.path().join("sandboxd.log"))?;
        let child = cmd.stdout(log.try_clone()?).stderr(log).spawn().with_context(|| format!("start {}", bin.display()))?;
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        let key_path = data_dir.path().join("api_key");
        let mut server = Server { child, data_dir, url, api_key: String::new() };
        loop {
            if let Ok(key) = std::fs::read_to_string(&key_path)
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                server.api_key = key.trim().to_string();
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("sandboxd exited early ({status}); see {}", server.log_path().display());
            }
            if Instant::now() > deadline {
                bail!("sandboxd did not come up within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.data_dir.path().join("sandboxd.log")
    }

    pub fn opts(&self) -> ConnectionOpts {
        ConnectionOpts {
            api_key: Some(self.api_key.clone()),
            api_url: Some(self.url.clone()),
            sandbox_url: Some(self.url.clone()),
            ..Default::default()
        }
    }

    /// The host-side record of a snapshot: `store/snapshots/<id>/meta.json`.
    pub fn image_meta(&self, snapshot_id: &str) -> anyhow::Result<serde_json::Value> {
        let path = self.data_dir.path().join("store/snapshots").join(image_id(snapshot_id)).join("meta.json");
        let raw = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
        Ok(serde_json::from_slice(&raw)?)
    }
}

/// The image (directory) a snapshot ID names: `[team/]<image>[:tag]` → `<image>`.
pub fn image_id(snapshot_id: &str) -> &str {
    snapshot_id.split(':').next().unwrap_or(snapshot_id).rsplit('/').next().unwrap_or_default()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // VMs outlive sandboxd by design; the benchmark's must not outlive the benchmark.
        let run = self.data_dir.path().join("store/run");
        let recorded = std::fs::read_dir(&run)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("qemu.pid")).ok()?.trim().parse::<u32>().ok())
            // A stale pid file may name a reused PID: only QEMU processes are ours.
            .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"qemu-system")));
        let mut pids: Vec<u32> = recorded.collect();
        // Spare QEMUs (store/spare/) and VMs begun as one name no run directory.
        pids.extend(crate::pss::qemu_pids_under(&self.data_dir.path().join("store")));
        for pid in pids {
            // SAFETY: kill(2) on QEMU processes of this benchmark's own data directory (their
            // pid files, or their command lines naming its run directory).
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(200));
        let _ = Command::new("umount").arg(self.data_dir.path().join("store")).status();
    }
}

