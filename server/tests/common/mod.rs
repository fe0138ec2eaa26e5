//! A real `sandboxd serve` process on a free port with a fresh data directory, and a tiny
//! HTTP client for talking to it. The process is killed when the [`TestServer`] drops.
//!
//! With `SANDBOXD_TEST_POSTGRES_URL` set (e.g. from `tests/cluster/postgres.sh start <dir>`),
//! each server gets a fresh PostgreSQL database on that server (`--database`) instead of
//! SQLite in its data directory.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub struct TestServer {
    child: Child,
    pub port: u16,
    pub key: String,
    pub data_dir: PathBuf,
    pub templates_dir: PathBuf,
    /// `--database`, when the server runs on PostgreSQL.
    pub database: Option<String>,
    _dir: tempfile::TempDir,
    client: Client<HttpConnector, Full<Bytes>>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts the status and that the body is E2B's `Error {code, message}`.
    pub fn assert_error(&self, status: u16) {
        assert_eq!(self.status.as_u16(), status, "body: {}", String::from_utf8_lossy(&self.body));
        let body = self.json();
        assert_eq!(body["code"], status, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn spawn(port: u16, data_dir: &std::path::Path, templates_dir: &std::path::Path, database: Option<&str>) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sandboxd"));
    match database {
        Some(url) => command.env("SANDBOXD_DATABASE_URL", url),
        None => command.env_remove("SANDBOXD_DATABASE_URL"),
    };
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--templates-dir")
        .arg(templates_dir)
        .env("SANDBOXD_ACCEL", "tcg")
        // No loop-mounted XFS store for throwaway test directories.
        .env("SANDBOXD_STORE", "plain")
        .env("RUST_LOG", "sandboxd=warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn sandboxd")
}

impl TestServer {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let port = free_port();
        let templates_dir = dir.path().join("templates");
        let database = sandboxd::store::test_db::fresh_database();
        let child = spawn(port, &data_dir, &templates_dir, database.as_deref());
        let client = Client::builder(TokioExecutor::new()).build_http();
        let mut server = Self { child, port, key: String::new(), data_dir, templates_dir, database, _dir: dir, client };
        server.wait_healthy().await;
        server.key = std::fs::read_to_string(server.data_dir.join("api_key")).unwrap().trim().to_string();
        server
    }

    /// SIGKILLs the server and starts it again on the same port and data directory.
    /// The server's configuration, as far as paths go (for checking its data directory).
    pub fn config(&self) -> sandboxd::config::Config {
        sandboxd::config::Config {
            listen: ([127, 0, 0, 1], self.port).into(),
            data_dir: self.data_dir.clone(),
            templates_dir: self.templates_dir.clone(),
            max_sandboxes: 1,
            max_memory_mb: None,
            domain: None,
            telemetry: Default::default(),
            pool: sandboxd::manager::PoolSettings { size: 0, ..Default::default() },
            database: self.database.clone(),
            cluster: None,
        }
    }

    pub async fn kill_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(self.port, &self.data_dir, &self.templates_dir, self.database.as_deref());
        self.wait_healthy().await;
    }

    async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.request(Method::GET, "/health", &[], None).await
                && r.status == StatusCode::OK
            {
                break;
            }
            assert!(self.child.try_wait().unwrap().is_none(), "sandboxd exited during start-up");
            assert!(Instant::now() < deadline, "sandboxd did not become healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Reply, hyper_util::client::legacy::Error> {
        let mut req = Request::builder().method(method).uri(format!("http://127.0.0.1:{}{path}", self.port));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::from(body.unwrap_or_default()))).unwrap();
        let resp = self.client.request(req).await?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        Ok(Reply { status: parts.status, headers: parts.headers, body })
    }

    /// An authenticated request with an optional JSON body.
    pub async fn call(&self, method: Method, path: &str, body: Option<&str>) -> Reply {
        let key = self.key.clone();
        let headers = [("x-api-key", key.as_str()), ("content-type", "application/json")];
        self.request(method, path, &headers, body.map(|b| b.as_bytes().to_vec())).await.expect("request")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
