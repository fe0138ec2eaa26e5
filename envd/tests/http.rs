//! HTTP routes (`/health`, `/files`, `/init`, `/envs`, `/metrics`), auth, and
//! Connect protocol error handling, against the real binary.

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn health_is_204() {
    let envd = Envd::start().await;
    let r = envd.request("GET", "/health", &[], "").await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
}

fn blob() -> Vec<u8> {
    (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect()
}

#[tokio::test]
async fn multipart_upload_and_download_round_trip() {
    let envd = Envd::start().await;
    let data = blob();
    // Two parts, no `path` query: each part's filename is its destination.
    let second = envd.dir.join("second.txt");
    let mut multipart = Vec::new();
    multipart.extend_from_slice(
        b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"up/one.bin\"\r\n\r\n",
    );
    multipart.extend_from_slice(&data);
    multipart.extend_from_slice(format!("\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\r\nsecond\r\n--XyZ--\r\n", second.display()).as_bytes());
    let r = envd
        .request(
            "POST",
            "/files",
            &[("content-type", "multipart/form-data; boundary=XyZ")],
            multipart,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let written = r.json();
    let one = envd.home().join("up/one.bin");
    assert_eq!(
        written[0],
        json!({"path": one.display().to_string(), "name": "one.bin", "type": "file"})
    );
    assert_eq!(written[1]["path"], second.display().to_string());
    assert_eq!(std::fs::read(&second).unwrap(), b"second");

    let r = envd
        .request("GET", "/files?path=up%2Fone.bin", &[], "")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.as_ref(), data.as_slice());
}

#[tokio::test]
async fn octet_stream_upload_with_path_and_user() {
    if !is_root() {
        eprintln!("skipping: switching users needs root");
        return;
    }
    let envd = Envd::start().await;
    let data = blob();
    let r = envd
        .request(
            "POST",
            "/files?path=deep/dir/x.bin&username=tester",
            &[("content-type", "application/octet-stream")],
            data.clone(),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let path = envd.dir.join("home/tester/deep/dir/x.bin");
    assert_eq!(r.json()[0]["path"], path.display().to_string());
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&path).unwrap().uid(), 65534);
    assert_eq!(
        std::fs::metadata(path.parent().unwrap()).unwrap().uid(),
        65534
    );

    // Overwrite with shorter content.
    envd.request(
        "POST",
        "/files?path=deep/dir/x.bin&username=tester",
        &[("content-type", "application/octet-stream")],
        "short",
    )
    .await;
    let auth = basic("tester");
    let r = envd
        .request(
            "GET",
            "/files?path=deep/dir/x.bin",
            &[("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!(r.body.as_ref(), b"short");
}

#[tokio::test]
async fn download_errors() {
    let envd = Envd::start().await;
    let r = envd
        .request("GET", "/files?path=/no/such/file", &[], "")
        .await;
    assert_eq!(r.status, 404);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("/no/such/file")
    );
    let r = envd.request("GET", "/files?path=/tmp", &[], "").await;
    assert_eq!(r.status, 400);
    let r = envd
        .request(
            "POST",
            "/files",
            &[("content-type", "application/octet-stream")],
            "x",
        )
        .await;
    assert_eq!(r.status, 400, "octet-stream needs a path");
}

#[tokio::test]
async fn access_token_is_enforced_after_init() {
    let envd = Envd::start().await;
    let r = envd
        .request(
            "POST",
            "/init",
            &[("content-type", "application/json")],
            r#"{"accessToken":"s3cret","envVars":{"FROM_INIT":"yes"}}"#,
        )
        .await;
    assert_eq!(r.status, 204);

    let r = envd.unary("process.Process/List", json!({}), &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "unauthenticated");
    // The refused request's body was never read: the connection must not be pooled.
    assert_eq!(r.headers.get("connection").map(|v| v.as_bytes()), Some(&b"close"[..]));
    let r = envd
        .unary(
            "process.Process/List",
            json!({}),
            &[("x-access-token", "wrong")],
        )
        .await;
    assert_eq!(r.status, 401);
    let signed = envd.home().join("signed.txt");
    std::fs::write(&signed, "signed").unwrap();
    let signed = signed.display().to_string();
    let r = envd
        .request("GET", &format!("/files?path={signed}"), &[], "")
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(envd.request("GET", "/health", &[], "").await.status, 204);

    let r = envd
        .unary(
            "process.Process/List",
            json!({}),
            &[("x-access-token", "s3cret")],
        )
        .await;
    assert_eq!(r.status, 200);

    // Env vars from /init reach later processes; request envs override them.
    let frames = envd
        .stream(
            "process.Process/Start",
            json!({"process": {"cmd": "/bin/sh", "args": ["-c", "echo $FROM_INIT $OTHER"], "envs": {"OTHER": "req"}}}),
            &[("x-access-token", "s3cret")],
        )
        .await;
    assert_eq!(output(&frames, "stdout"), "yes req\n");
    let r = envd
        .request("GET", "/envs", &[("x-access-token", "s3cret")], "")
        .await;
    assert_eq!(r.json()["FROM_INIT"], "yes");

    // A signed download URL works without the header (v1 signature, no expiry).
    use base64::Engine;
    use sha2_free::sha256;
    let sig = format!(
        "v1_{}",
        base64::engine::general_purpose::STANDARD_NO_PAD
            .encode(sha256(format!("{signed}:read::s3cret").as_bytes()))
    );
    let sig = sig.replace('+', "%2B").replace('/', "%2F");
    let r = envd
        .request(
            "GET",
            &format!("/files?path={signed}&signature={sig}"),
            &[],
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body.as_ref(), b"signed");
    let r = envd
        .request(
            "GET",
            &format!("/files?path={signed}&signature=v1_bogus"),
            &[],
            "",
        )
        .await;
    assert_eq!(r.status, 401);

    // A null token turns enforcement off again.
    envd.request(
        "POST",
        "/init",
        &[("content-type", "application/json")],
        r#"{"accessToken":null}"#,
    )
    .await;
    assert_eq!(
        envd.unary("process.Process/List", json!({}), &[])
            .await
            .status,
        200
    );
}

/// SHA-256 via the `sha256sum` tool, to keep the test's dependencies small.
mod sha2_free {
    pub fn sha256(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut child = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(data).unwrap();
        let out = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
        let hex = out.split_whitespace().next().unwrap();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }
}

#[tokio::test]
async fn init_rejects_bad_bodies_and_sets_default_user() {
    if !is_root() {
        eprintln!("skipping: switching users needs root");
        return;
    }
    let envd = Envd::start().await;
    let r = envd
        .request(
            "POST",
            "/init",
            &[("content-type", "application/json")],
            "{not json",
        )
        .await;
    assert_eq!(r.status, 400);
    let r = envd
        .request(
            "POST",
            "/init",
            &[("content-type", "application/json")],
            r#"{"entropy":"!!"}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    let r = envd
        .request(
            "POST",
            "/init",
            &[("content-type", "application/json")],
            r#"{"defaultUser":"tester","entropy":"AAECAwQFBgc="}"#,
        )
        .await;
    assert_eq!(r.status, 204);
    let frames = envd
        .stream(
            "process.Process/Start",
            json!({"process": {"cmd": "/usr/bin/id", "args": ["-u"]}}),
            &[],
        )
        .await;
    assert_eq!(output(&frames, "stdout"), "65534\n");
}

#[tokio::test]
async fn protocol_errors() {
    let envd = Envd::start().await;
    // Unknown method: Connect `unimplemented`, 404.
    let r = envd.unary("process.Process/Teleport", json!({}), &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], "unimplemented");
    let r = envd.unary("nope.Service/Method", json!({}), &[]).await;
    assert_eq!(r.json()["code"], "unimplemented");

    // Bad JSON in a unary call.
    let r = envd
        .request(
            "POST",
            "/process.Process/List",
            &[("content-type", "application/json")],
            "{oops",
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "invalid_argument");

    // Wrong codec.
    let r = envd
        .request(
            "POST",
            "/process.Process/List",
            &[("content-type", "application/proto")],
            "",
        )
        .await;
    assert_eq!(r.status, 415);

    // Truncated envelope, oversized envelope, bad JSON inside an envelope: error in the end frame.
    let ct = [("content-type", "application/connect+json")];
    for (body, code) in [
        (vec![0u8, 0, 0], "invalid_argument"),
        (vec![0u8, 0, 0, 0, 10, b'{'], "invalid_argument"),
        (vec![0u8, 0xff, 0xff, 0xff, 0xff], "resource_exhausted"),
        (
            proto::encode_envelope(0, b"{bad json").to_vec(),
            "invalid_argument",
        ),
    ] {
        let r = envd
            .request("POST", "/process.Process/Start", &ct, body)
            .await;
        assert_eq!(r.status, 200);
        let frames = frames(&r.body);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0, proto::FLAG_END_STREAM);
        assert_eq!(frames[0].1["error"]["code"], code, "{frames:?}");
    }

    // Snake-case field names and numeric enums are accepted.
    let r = envd
        .unary(
            "process.Process/SendSignal",
            json!({"process": {"pid": 999999}, "signal": 9}),
            &[],
        )
        .await;
    assert_eq!(r.json()["code"], "not_found");
}

#[tokio::test]
async fn metrics_best_effort() {
    let envd = Envd::start().await;
    let m: Value = envd.request("GET", "/metrics", &[], "").await.json();
    assert!(m["mem_total"].as_u64().unwrap() > 0);
    assert!(m["cpu_count"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn h2c_prior_knowledge() {
    let envd = Envd::start().await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let body = proto::encode_envelope(0, br#"{"process":{"cmd":"/bin/echo","args":["h2"]}}"#);
    let req = http::Request::post(envd.url("/process.Process/Start"))
        .header("content-type", "application/connect+json")
        .body(http_body_util::Full::new(body))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    use http_body_util::BodyExt;
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(output(&frames(&bytes), "stdout"), "h2\n");
}

#[tokio::test]
async fn upload_metadata_becomes_xattrs() {
    let envd = Envd::start().await;
    let ct = ("content-type", "application/octet-stream");
    let r = envd
        .request(
            "POST",
            "/files?path=meta.txt",
            &[
                ct,
                ("x-metadata-Owner", "alice"),
                ("x-metadata-stage", "raw data"),
            ],
            "x",
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let written = r.json();
    if written[0].get("metadata").is_none() {
        eprintln!("skipping: the test directory's filesystem has no user xattrs");
        return;
    }
    assert_eq!(
        written[0]["metadata"],
        json!({"owner": "alice", "stage": "raw data"})
    );
    let stat = envd
        .unary(
            "filesystem.Filesystem/Stat",
            json!({"path": "meta.txt"}),
            &[],
        )
        .await
        .json();
    assert_eq!(
        stat["entry"]["metadata"],
        json!({"owner": "alice", "stage": "raw data"})
    );

    // An overwrite replaces the whole set.
    let r = envd
        .request(
            "POST",
            "/files?path=meta.txt",
            &[ct, ("x-metadata-stage", "clean")],
            "y",
        )
        .await;
    assert_eq!(r.json()[0]["metadata"], json!({"stage": "clean"}));
    let r = envd
        .request("POST", "/files?path=meta.txt", &[ct], "z")
        .await;
    assert!(r.json()[0].get("metadata").is_none());

    let r = envd
        .request(
            "POST",
            "/files?path=meta.txt",
            &[ct, ("x-metadata-big", &"v".repeat(5000))],
            "z",
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn gzip_download_and_upload() {
    let envd = Envd::start().await;
    let data = blob();
    std::fs::write(envd.home().join("z.bin"), &data).unwrap();
    let r = envd
        .request(
            "GET",
            "/files?path=z.bin",
            &[("accept-encoding", "gzip")],
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-encoding"], "gzip");
    let mut gunzip = std::process::Command::new("gzip")
        .args(["-dc"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    gunzip.stdin.take().unwrap().write_all(&r.body).unwrap();
    assert_eq!(gunzip.wait_with_output().unwrap().stdout, data);

    // And the other direction: a gzip-encoded octet-stream upload.
    let gz = std::process::Command::new("sh")
        .args(["-c", "printf 'packed' | gzip -c"])
        .output()
        .unwrap()
        .stdout;
    let r = envd
        .request(
            "POST",
            "/files?path=unz.txt",
            &[
                ("content-type", "application/octet-stream"),
                ("content-encoding", "gzip"),
            ],
            gz,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        std::fs::read(envd.home().join("unz.txt")).unwrap(),
        b"packed"
    );
    let r = envd
        .request(
            "POST",
            "/files?path=bad.txt",
            &[
                ("content-type", "application/octet-stream"),
                ("content-encoding", "gzip"),
            ],
            "not gzip",
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn cors_preflight_skips_auth() {
    let envd = Envd::start().await;
    envd.request(
        "POST",
        "/init",
        &[("content-type", "application/json")],
        r#"{"accessToken":"t"}"#,
    )
    .await;
    let r = envd
        .request(
            "OPTIONS",
            "/process.Process/Start",
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "POST"),
            ],
            "",
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    let r = envd
        .request("GET", "/health", &[("origin", "https://app.example")], "")
        .await;
    assert_eq!(r.headers["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn disk_full_is_507() {
    if !is_root() {
        eprintln!("skipping: switching users needs root");
        return;
    }
    let envd = Envd::start().await;
    // /dev/full fails every write with ENOSPC, like a full disk.
    let r = envd
        .request(
            "POST",
            "/files?path=/dev/full",
            &[("content-type", "application/octet-stream")],
            vec![7u8; 4096],
        )
        .await;
    assert_eq!(r.status, 507, "{:?}", r.body);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("not enough disk space")
    );
}

#[tokio::test]
async fn init_without_access_token_keeps_it_and_null_clears_it() {
    let envd = Envd::start().await;
    let init = |body: &'static str| {
        let envd = &envd;
        async move { envd.request("POST", "/init", &[("content-type", "application/json")], body).await.status }
    };
    assert_eq!(init(r#"{"accessToken":"s3cret"}"#).await, 204);
    // A partial /init (what sandboxd sends to resync a clock) must not drop the token.
    assert_eq!(init(r#"{"envVars":{"A":"1"}}"#).await, 204);
    let r = envd.unary("process.Process/List", json!({}), &[]).await;
    assert_eq!(r.status, 401, "the token must still be required");
    assert_eq!(init(r#"{"accessToken":null}"#).await, 204);
    let r = envd.unary("process.Process/List", json!({}), &[]).await;
    assert_eq!(r.status, 200, "null clears the token");
}
