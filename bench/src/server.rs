//! A sandboxd started for one benchmark run: fresh data directory, shared template cache,
//! free loopback port. Dropping it stops the server, kills leftover VMs and unmounts the store.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use e2b::ConnectionOpts;

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
        let data_dir = tempfile::Builder::new().prefix("sandboxd-bench-").tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut cmd = Command::new(bin);
        cmd.arg("serve").arg("--listen").arg(format!("127.0.0.1:{port}")).arg("--data-dir").arg(data_dir.path());
        cmd.args(["--max-sandboxes", "64"]);
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
        let dir = snapshot_id.split(':').next().unwrap_or(snapshot_id).rsplit('/').next().unwrap_or_default();
        let path = self.data_dir.path().join("store/snapshots").join(dir).join("meta.json");
        let raw = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
        Ok(serde_json::from_slice(&raw)?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // VMs outlive sandboxd by design; the benchmark's must not outlive the benchmark.
        let run = self.data_dir.path().join("store/run");
        for pid in crate::pss::qemu_pids_under(&run) {
            // SAFETY: kill(2) on QEMU processes of this benchmark's own data directory.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(200));
        let _ = Command::new("umount").arg(self.data_dir.path().join("store")).status();
    }
}

