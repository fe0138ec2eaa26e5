//! Sandbox routes, with E2B's status → result mapping (spec §2.5).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;

use super::models::{
    ConnectRequest, ForkRequest, ForkResult, NewSandbox, PauseRequest, SandboxDetail,
    SandboxResponse, TimeoutRequest,
};
use super::{ApiClient, ApiResponse, encode_path_segment};
use crate::error::{Error, Result};
use crate::models::{SandboxInfo, SandboxQuery};

/// Python's `urllib.parse.quote` default: alphanumerics and `_.-~/` stay as they are.
const QUOTE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// Sandbox lifetime E2B's SDKs use (and the v2 routes default to), in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 300;

/// A route that is simply absent (not an API error about the resource): 404/405 without an
/// `Error` JSON body. Used to fall back from E2B's v2 routes to the v1 ones.
fn route_missing(r: &ApiResponse) -> bool {
    (r.status == 404 || r.status == 405)
        && serde_json::from_slice::<super::models::ApiError>(&r.body).map_or(true, |e| e.message.is_empty())
}

/// `POST /v2/sandboxes` (what E2B's SDK 2.6x sends), falling back to `POST /sandboxes` for
/// servers that only have the v1 route. `secure` travels on v1 only (v2 is always secured), and
/// v1 gets an explicit timeout since its server-side default is 15 s, not 300 s.
pub async fn create(api: &ApiClient, body: &NewSandbox, idempotency_key: Option<&str>) -> Result<SandboxResponse> {
    let headers: Vec<(&str, &str)> = idempotency_key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
    let v2 = NewSandbox { secure: None, ..body.clone() };
    let mut r = api.send_with_headers(Method::POST, "/v2/sandboxes", &[], Some(&v2), &headers).await?;
    if route_missing(&r) {
        let v1 = NewSandbox { timeout: Some(body.timeout.unwrap_or(DEFAULT_TIMEOUT_SECS)), ..body.clone() };
        r = api.send_with_headers(Method::POST, "/sandboxes", &[], Some(&v1), &headers).await?;
    }
    if !r.is_success() {
        return Err(r.into_error());
    }
    r.json()
}

pub async fn get(api: &ApiClient, id: &str) -> Result<SandboxInfo> {
    let r = api.send::<()>(Method::GET, &format!("/sandboxes/{}", encode_path_segment(id)), &[], None).await?;
    if r.status == 404 {
        return Err(Error::SandboxNotFound(format!("Sandbox {id} not found")));
    }
    if !r.is_success() {
        return Err(r.into_error());
    }
    Ok(r.json::<SandboxDetail>()?.into())
}

/// Raw detail (carries the envd access token, which `SandboxInfo` does not expose).
pub async fn get_detail(api: &ApiClient, id: &str) -> Result<SandboxDetail> {
    let r = api.send::<()>(Method::GET, &format!("/sandboxes/{}", encode_path_segment(id)), &[], None).await?;
    if r.status == 404 {
        return Err(Error::SandboxNotFound(format!("Sandbox {id} not found")));
    }
    if !r.is_success() {
        return Err(r.into_error());
    }
    r.json()
}

/// `DELETE /sandboxes/{id}`: false when it did not exist.
pub async fn kill(api: &ApiClient, id: &str) -> Result<bool> {
    let r = api.send::<()>(Method::DELETE, &format!("/sandboxes/{}", encode_path_segment(id)), &[], None).await?;
    match r.status {
        404 => Ok(false),
        s if s >= 300 => Err(r.into_error()),
        _ => Ok(true),
    }
}

pub async fn set_timeout(api: &ApiClient, id: &str, timeout_secs: u64) -> Result<()> {
    let path = format!("/sandboxes/{}/timeout", encode_path_segment(id));
    let r = api.send(Method::POST, &path, &[], Some(&TimeoutRequest { timeout: timeout_secs })).await?;
    if r.status == 404 {
        return Err(Error::SandboxNotFound(format!("Sandbox {id} not found")));
    }
    if !r.is_success() {
        return Err(r.into_error());
    }
    Ok(())
}

/// `POST /v2/sandboxes/{id}/connect` (falls back to the v1 route): resumes a paused sandbox.
pub async fn connect(api: &ApiClient, id: &str, timeout_secs: Option<u64>, memory: Option<bool>) -> Result<SandboxResponse> {
    let seg = encode_path_segment(id);
    let body = ConnectRequest { timeout: timeout_secs, memory };
    let mut r = api.send(Method::POST, &format!("/v2/sandboxes/{seg}/connect"), &[], Some(&body)).await?;
    if route_missing(&r) {
        let v1 = ConnectRequest { timeout: Some(timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS)), memory };
        r = api.send(Method::POST, &format!("/sandboxes/{seg}/connect"), &[], Some(&v1)).await?;
    }
    if r.status == 404 {
        return Err(Error::SandboxNotFound(format!("Paused sandbox {id} not found")));
    }
    if !r.is_success() {
        return Err(r.into_error());
    }
    r.json()
}

/// `POST /sandboxes/{id}/pause`: false when already paused (409).
pub async fn pause(api: &ApiClient, id: &str, body: &PauseRequest) -> Result<bool> {
    let path = format!("/sandboxes/{}/pause", encode_path_segment(id));
    let r = api.send(Method::POST, &path, &[], Some(body)).await?;
    match r.status {
        404 => Err(Error::SandboxNotFound(format!("Sandbox {id} not found"))),
        409 => Ok(false),
        s if s >= 300 => Err(r.into_error()),
        _ => Ok(true),
    }
}

/// `POST /sandboxes/{id}/fork`: one entry per fork, each a sandbox or an error.
pub async fn fork(api: &ApiClient, id: &str, body: &ForkRequest) -> Result<Vec<Result<SandboxResponse>>> {
    let path = format!("/sandboxes/{}/fork", encode_path_segment(id));
    let r = api.send(Method::POST, &path, &[], Some(body)).await?;
    if r.status == 404 {
        return Err(Error::SandboxNotFound(format!("Sandbox {id} not found")));
    }
    if !r.is_success() {
        return Err(r.into_error());
    }
    let items: Vec<ForkResult> = r.json()?;
    Ok(items
        .into_iter()
        .map(|f| match (f.sandbox, f.error) {
            (Some(s), _) => Ok(s),
            (None, Some(e)) => {
                let body = serde_json::json!({"code": e.code, "message": e.message});
                Err(Error::from_api_response(e.code, body.to_string().as_bytes()))
            }
            (None, None) => Err(Error::sandbox("fork result has neither sandbox nor error")),
        })
        .collect())
}

/// Query string of `GET /v2/sandboxes` for one page.
pub fn list_query(
    query: &SandboxQuery,
    order: Option<&str>,
    limit: Option<u32>,
    next_token: Option<&str>,
) -> Vec<(&'static str, Option<String>)> {
    let metadata = if query.metadata.is_empty() {
        None
    } else {
        // E2B's SDK: `urlencode({quote(k): quote(v)})`, i.e. each key and value quoted (keeping
        // `/`) then quoted again as a form field; the query string encodes the result once more.
        let enc = |s: &str| encode_path_segment(&utf8_percent_encode(s, QUOTE).to_string());
        let mut pairs: Vec<_> = query.metadata.iter().collect();
        pairs.sort();
        Some(pairs.into_iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&"))
    };
    vec![
        ("metadata", metadata),
        ("state", (!query.state.is_empty()).then(|| query.state.join(","))),
        ("startedAfter", query.started_after.map(|t| t.to_rfc3339())),
        ("template", query.template.clone()),
        ("order", order.map(str::to_owned)),
        ("limit", limit.map(|l| l.to_string())),
        ("nextToken", next_token.map(str::to_owned)),
    ]
}

/// One page of `GET /v2/sandboxes`, with the next token.
pub async fn list_page(
    api: &ApiClient,
    query: &[(&str, Option<String>)],
) -> Result<(Vec<SandboxInfo>, Option<String>)> {
    let r = api.send::<()>(Method::GET, "/v2/sandboxes", query, None).await?;
    if !r.is_success() {
        return Err(r.into_error());
    }
    let items: Vec<SandboxDetail> = r.json()?;
    Ok((items.into_iter().map(Into::into).collect(), r.next_token()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_filter_is_encoded_as_e2b_does() {
        let mut q = SandboxQuery::default();
        q.metadata.insert("user id".into(), "a/b c".into());
        q.metadata.insert("k".into(), "v".into());
        let items = list_query(&q, None, None, None);
        // What Python's urlencode({quote(k): quote(v)}) gives, in sorted key order.
        assert_eq!(items[0].1.as_deref(), Some("k=v&user%2520id=a%2Fb%2520c"));
    }
}
