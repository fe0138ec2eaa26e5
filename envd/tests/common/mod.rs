//! Test harness: starts the real `envd` binary on a free loopback port with a
//! private account database (so login shells do not read the host's dotfiles)
//! and talks raw HTTP/1.1 or h2c to it.
//!
//! The envelope codec and messages come from the crate's own `proto.rs`,
//! included by path exactly as the client crate will.

#![allow(dead_code)]

#[path = "../../src/proto.rs"]
pub mod proto;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// The test process's uid and gid.
fn own_ids() -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    // /proc/self is owned by the process's effective uid/gid: no libc call needed.
    let m = std::fs::metadata("/proc/self").expect("/proc/self");
    (m.uid(), m.gid())
}

/// User-switching tests need root; elsewhere they skip with a note.
pub fn is_root() -> bool {
    own_ids().0 == 0
}

pub struct Envd {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Drop for Envd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Envd {
    /// Starts envd; `root`'s home is a fresh temp dir, and `tester` (uid 65534) exists too.
    pub async fn start() -> Envd {
        let dir =
            std::env::temp_dir().join(format!("envd-test-{}-{}", std::process::id(), free_port()));
        let home = dir.join("root");
        let tester_home = dir.join("home/tester");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&tester_home).unwrap();
        // Only root can hand the directory to another uid; unprivileged runs skip those tests.
        let _ = std::os::unix::fs::chown(&tester_home, Some(65534), Some(65534));
        // When not run as root, "root" in the private database is the current user,
        // so everything but the user-switching tests still works.
        let (uid, gid) = own_ids();
        std::fs::write(
            dir.join("passwd"),
            format!(
                "root:x:{uid}:{gid}:root:{}:/bin/bash\ntester:x:65534:65534::{}:/bin/sh\n",
                home.display(),
                tester_home.display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("group"),
            "root:x:0:\ntester:x:65534:\nextra:x:4242:tester\n",
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_envd"))
            .args([
                "--port",
                &port.to_string(),
                "--addr",
                "127.0.0.1",
                "--default-user",
                "root",
                "--log",
                "warn",
            ])
            .arg("--passwd-file")
            .arg(dir.join("passwd"))
            .arg("--group-file")
            .arg(dir.join("group"))
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn envd");
        let client = Client::builder(TokioExecutor::new()).build_http();
        let envd = Envd {
            child,
            port,
            dir,
            client,
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return envd;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("envd did not start listening");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn home(&self) -> PathBuf {
        self.dir.join("root")
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Resp {
        let mut req = http::Request::builder().method(method).uri(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .client
            .request(req.body(Full::new(body.into())).unwrap())
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        Resp {
            status,
            headers,
            body,
        }
    }

    /// A unary Connect call.
    pub async fn unary(&self, method: &str, msg: Value, headers: &[(&str, &str)]) -> Resp {
        let mut h = vec![("content-type", "application/json")];
        h.extend_from_slice(headers);
        self.request(
            "POST",
            &format!("/{method}"),
            &h,
            serde_json::to_vec(&msg).unwrap(),
        )
        .await
    }

    /// A server-streaming Connect call, read to the end: all frames as (flags, JSON).
    pub async fn stream(
        &self,
        method: &str,
        msg: Value,
        headers: &[(&str, &str)],
    ) -> Vec<(u8, Value)> {
        let mut h = vec![("content-type", "application/connect+json")];
        h.extend_from_slice(headers);
        let body = proto::encode_envelope(0, &serde_json::to_vec(&msg).unwrap());
        let resp = self.request("POST", &format!("/{method}"), &h, body).await;
        assert_eq!(resp.status, 200, "stream status, body {:?}", resp.body);
        frames(&resp.body)
    }
}

/// Splits a streaming body into its envelopes.
pub fn frames(body: &[u8]) -> Vec<(u8, Value)> {
    let mut buf = BytesMut::from(body);
    let mut out = Vec::new();
    while let Some(env) = proto::decode_envelope(&mut buf, 1 << 24).expect("valid envelope") {
        out.push((
            env.flags,
            serde_json::from_slice(&env.payload).expect("JSON frame"),
        ));
    }
    assert!(buf.is_empty(), "trailing bytes in stream");
    out
}

/// `Start` request for `bash -l -c <cmd>`, as the SDK sends it.
pub fn bash(cmd: &str) -> Value {
    json!({"process": {"cmd": "/bin/bash", "args": ["-l", "-c", cmd]}, "stdin": false})
}

pub fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Concatenated stdout (or stderr) of a list of events.
pub fn output(frames: &[(u8, Value)], stream: &str) -> String {
    let mut out = Vec::new();
    for (_, f) in frames {
        if let Some(s) = f
            .pointer(&format!("/event/data/{stream}"))
            .and_then(Value::as_str)
        {
            out.extend(proto::b64::decode(s).unwrap());
        }
    }
    String::from_utf8(out).unwrap()
}

/// The `end` event of a finished process stream.
pub fn end(frames: &[(u8, Value)]) -> Value {
    frames
        .iter()
        .find_map(|(_, f)| f.pointer("/event/end").cloned())
        .expect("end event")
}

pub fn basic(user: &str) -> String {
    format!("Basic {}", b64(format!("{user}:").as_bytes()))
}

/// A server stream read frame by frame, for processes that outlive one call.
pub struct Live {
    body: hyper::body::Incoming,
    buf: BytesMut,
}

impl Live {
    pub async fn next(&mut self) -> Option<(u8, Value)> {
        loop {
            if let Some(env) =
                proto::decode_envelope(&mut self.buf, 1 << 24).expect("valid envelope")
            {
                return Some((
                    env.flags,
                    serde_json::from_slice(&env.payload).expect("JSON frame"),
                ));
            }
            let frame = self.body.frame().await?.expect("body frame");
            if let Ok(data) = frame.into_data() {
                self.buf.extend_from_slice(&data);
            }
        }
    }

    /// Reads until the end-stream frame; returns every frame including it.
    pub async fn rest(&mut self) -> Vec<(u8, Value)> {
        let mut out = Vec::new();
        while let Some(f) = self.next().await {
            let last = f.0 & proto::FLAG_END_STREAM != 0;
            out.push(f);
            if last {
                break;
            }
        }
        out
    }
}

impl Envd {
    pub async fn open(&self, method: &str, msg: Value, headers: &[(&str, &str)]) -> Live {
        let mut req = http::Request::builder()
            .method("POST")
            .uri(self.url(&format!("/{method}")))
            .header("content-type", "application/connect+json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = proto::encode_envelope(0, &serde_json::to_vec(&msg).unwrap());
        let resp = self
            .client
            .request(req.body(Full::new(body)).unwrap())
            .await
            .expect("request");
        assert_eq!(resp.status(), 200);
        Live {
            body: resp.into_body(),
            buf: BytesMut::new(),
        }
    }
}
