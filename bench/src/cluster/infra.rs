//! What a two-node cluster needs on this machine, each stopped when dropped: a throwaway
//! PostgreSQL (`tests/cluster/postgres.sh`), an S3 server (s3s-fs, `tests/cluster/s3s.sh`)
//! whose bucket is a directory we can read, and the nodes themselves (sandboxd with
//! `--database`, `--object-store`, `--node-id`, `--advertise-url`), as
//! `tests/compat/test_cluster.py` runs them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use crate::server::{Launch, Server, free_port};

/// Bucket (a directory of s3s-fs's root) and key prefix of the nodes' objects.
const BUCKET: &str = "images";
const PREFIX: &str = "bench";
/// One key for the whole cluster (it lives in the shared database).
const API_KEY: &str = "e2b_b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3";
const S3_ACCESS_KEY: &str = "bench";
const S3_SECRET_KEY: &str = "benchsecret";

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/cluster")
        .join(name)
}

fn stdout_of(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("run {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// PostgreSQL in a temporary directory; `url` is its admin database.
pub struct Postgres {
    root: tempfile::TempDir,
    pub url: String,
}

impl Postgres {
    pub fn start() -> anyhow::Result<Postgres> {
        let root = tempfile::Builder::new()
            .prefix("sandboxd-bench-pg-")
            .tempdir()?;
        // The server runs as the unprivileged user `postgres`, which must reach its directory.
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755))?;
        let url = stdout_of(
            Command::new(script("postgres.sh"))
                .arg("start")
                .arg(root.path().join("pg")),
        )?;
        Ok(Postgres { root, url })
    }

    /// One value from the database (`psql -tA`).
    pub fn query(&self, sql: &str) -> anyhow::Result<String> {
        stdout_of(Command::new("psql").arg(&self.url).args(["-tAc", sql]))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new(script("postgres.sh"))
            .arg("stop")
            .arg(self.root.path().join("pg"))
            .status();
    }
}

/// s3s-fs serving a temporary directory; the nodes' objects are files under `objects_dir`.
pub struct S3 {
    child: Child,
    root: tempfile::TempDir,
    pub endpoint: String,
}

impl S3 {
    pub fn start() -> anyhow::Result<S3> {
        let bin = stdout_of(&mut Command::new(script("s3s.sh")).arg("path"))?;
        let root = tempfile::Builder::new()
            .prefix("sandboxd-bench-s3-")
            .tempdir()?;
        std::fs::create_dir(root.path().join(BUCKET))?;
        let port = free_port()?;
        let child = Command::new(&bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--access-key",
                S3_ACCESS_KEY,
                "--secret-key",
                S3_SECRET_KEY,
            ])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("start {bin}"))?;
        let mut s3 = S3 {
            child,
            root,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = s3.child.try_wait()? {
                bail!("s3s-fs exited early ({status})");
            }
            ensure!(
                Instant::now() < deadline,
                "s3s-fs did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(s3)
    }

    /// `--object-store` of the nodes.
    pub fn url(&self) -> String {
        format!("s3://{BUCKET}/{PREFIX}")
    }

    /// Where the objects of `url()` are on disk (`chunks/`, `state/`, `layers/`, `images/`).
    pub fn objects_dir(&self) -> PathBuf {
        self.root.path().join(BUCKET).join(PREFIX)
    }

    /// CPU time s3s-fs has used so far (user + system), in ms: it runs on the nodes' cores.
    pub fn cpu_ms(&self) -> anyhow::Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
        let rest = stat.rsplit_once(')').context("malformed /proc stat")?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        Ok(ticks * 1000.0 / hz)
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A node's capacity: placement (`store/nodes.rs`) prefers a node that keeps the image, then
/// the one with the most free memory, and skips full nodes. With one sandbox per node and A
/// the largest, B the next, a create of `base` lands on A, a restore of A's snapshot lands on
/// B while A's source runs, on C while B's clone runs too, and on A once the source is gone.
/// C never fetches from another node (`SANDBOXD_PEER_FETCH=0`): the bucket alone.
pub struct NodeSpec {
    pub id: &'static str,
    pub max_memory_mb: u32,
    pub peer_fetch: bool,
}

pub const A: NodeSpec = NodeSpec {
    id: "a",
    max_memory_mb: 8192,
    peer_fetch: true,
};
pub const B: NodeSpec = NodeSpec {
    id: "b",
    max_memory_mb: 4096,
    peer_fetch: true,
};
pub const C: NodeSpec = NodeSpec {
    id: "c",
    max_memory_mb: 2048,
    peer_fetch: false,
};

pub fn start_node(
    bin: &Path,
    templates_dir: Option<&Path>,
    pg: &Postgres,
    s3: &S3,
    spec: &NodeSpec,
) -> anyhow::Result<Server> {
    let port = free_port()?;
    let launch = Launch {
        args: [
            "--database",
            &pg.url,
            "--object-store",
            &s3.url(),
            "--node-id",
            spec.id,
            "--advertise-url",
            &format!("http://127.0.0.1:{port}"),
            "--max-sandboxes",
            "1",
            "--max-memory-mb",
            &spec.max_memory_mb.to_string(),
        ]
        .map(String::from)
        .to_vec(),
        api_key: Some(API_KEY.into()),
        port: Some(port),
    };
    let env = [
        ("SANDBOXD_POOL_SIZE", "0"),
        ("RUST_LOG", "sandboxd=info,sandboxd::vm::runtime=debug,warn"),
        ("AWS_ENDPOINT_URL", &s3.endpoint),
        ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY),
        ("AWS_REGION", "us-east-1"),
        ("SANDBOXD_PEER_FETCH", if spec.peer_fetch { "1" } else { "0" }),
    ];
    Server::start_with(bin, templates_dir, &env, &launch)
        .with_context(|| format!("start node {}", spec.id))
}

/// Whether `sandbox_id` runs on `node` (its run directory is there).
pub fn runs_on(node: &Server, sandbox_id: &str) -> bool {
    node.data_dir
        .path()
        .join("store/run")
        .join(sandbox_id)
        .is_dir()
}
