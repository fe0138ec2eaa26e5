//! `server/openapi.yaml` documents exactly the routes sandboxd serves, and what a running
//! server answers on each of them (without VMs: the error paths) is one of the documented
//! statuses, with E2B's `Error` body.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::TestServer;
use http::Method;

/// `(method, path) -> documented statuses`, read from the YAML by indentation (the file is
/// kept in that regular shape: paths at 2 spaces, methods at 4, status codes at 8).
fn documented() -> BTreeMap<(String, String), BTreeSet<u16>> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    let mut out = BTreeMap::new();
    let (mut in_paths, mut path, mut op): (bool, Option<String>, Option<(String, String)>) = (false, None, None);
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            in_paths = line.trim_end() == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        if indent == 2 && t.starts_with('/') && t.ends_with(':') {
            path = Some(t.trim_end_matches(':').to_string());
            op = None;
        } else if indent == 4 && ["get:", "post:", "put:", "delete:", "patch:"].contains(&t) {
            let key = (t.trim_end_matches(':').to_uppercase(), path.clone().unwrap());
            out.insert(key.clone(), BTreeSet::new());
            op = Some(key);
        } else if indent == 8
            && t.starts_with('"')
            && let (Some(key), Ok(code)) = (&op, t[1..4].parse::<u16>())
        {
            out.get_mut(key).unwrap().insert(code);
        }
    }
    out
}

#[test]
fn documented_routes_match_the_router() {
    let doc: BTreeSet<(String, String)> = documented().into_keys().collect();
    let mut served: BTreeSet<(String, String)> =
        sandboxd::api::ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    served.insert(("GET".into(), "/health".into()));
    assert_eq!(doc, served, "openapi.yaml and api::ROUTES differ");
    assert!(documented().values().all(|codes| !codes.is_empty()));
}

#[tokio::test]
async fn every_documented_route_answers_with_a_documented_status() {
    let s = TestServer::start().await;
    for ((method, path), codes) in documented() {
        let concrete = path.replace("{sandboxID}", "i00000000000000000000").replace("{templateID}", "abc%3Adefault")
            .replace("{buildID}", "00000000-0000-4000-8000-000000000000")
            .replace("{hash}", "0123456789abcdef")
            .replace("{alias}", "nope");
        let body = (method == "POST").then_some(r#"{"templateID": "nope", "timeout": 30}"#);
        let r = s.call(Method::from_bytes(method.as_bytes()).unwrap(), &concrete, body).await;
        assert!(
            codes.contains(&r.status.as_u16()),
            "{method} {path}: got {} (documented {codes:?}): {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        if r.status.is_client_error() || r.status.is_server_error() {
            r.assert_error(r.status.as_u16());
            assert_ne!(r.json()["message"], "route not found", "{method} {path} is not routed");
        } else {
            assert!(r.status == 204 || r.json().is_array() || r.json().is_object(), "{method} {path}");
        }
        // Without the key every route but /health is refused.
        let anon = s.request(Method::from_bytes(method.as_bytes()).unwrap(), &concrete, &[], None).await.unwrap();
        if path == "/health" {
            assert_eq!(anon.status, 200);
        } else {
            anon.assert_error(401);
        }
    }
}
