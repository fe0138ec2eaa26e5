//! The REST client for E2B's control-plane API (`spec/openapi.yml`): one module per resource.
//!
//! [`ApiClient`] owns the resolved config; every request carries `X-API-KEY`. In embedded mode
//! the key is read from sandboxd's data dir after making sure it runs ([`crate::embedded`]).

pub mod models;
pub mod sandboxes;
pub mod snapshots;

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde::Serialize;

use crate::config::ConnectionConfig;
use crate::error::{Error, Result};

/// User-Agent sent on every request.
pub const USER_AGENT: &str = concat!("e2b-rust-sdk/", env!("CARGO_PKG_VERSION"));

/// The process-wide HTTP client (reqwest pools connections; the client is cheap to clone).
pub fn http_client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        // reqwest is built with `rustls-no-provider`: the provider must be installed first.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .build()
            .expect("reqwest client with the ring provider")
    })
}

/// Characters kept as-is in one path segment (JS `encodeURIComponent`, Python `quote(safe="")`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encode `value` as one URL path segment (`/` → `%2F`, `:` → `%3A`).
pub fn encode_path_segment(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// A finished HTTP exchange.
#[derive(Debug)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ApiResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::sandbox(format!("invalid response body ({e}): {}", String::from_utf8_lossy(&self.body)))
        })
    }

    /// E2B's generic mapping for a status ≥ 300.
    pub fn into_error(self) -> Error {
        Error::from_api_response(self.status, &self.body)
    }

    /// [`ApiResponse::into_error`] with a resource's own error kind in place of the generic one
    /// (E2B's `handle_api_exception(res, SecretException)`); 401/429/503 keep their kinds.
    pub fn into_error_as(self, kind: fn(String) -> Error) -> Error {
        match self.into_error() {
            Error::Sandbox { message, .. } => kind(message),
            other => other,
        }
    }

    /// Send `b` and read the whole answer.
    pub(crate) async fn fetch(b: RequestBuilder) -> Result<Self> {
        let r = b.send().await.map_err(Error::from_reqwest)?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await.map_err(Error::from_reqwest)?;
        Ok(ApiResponse { status, headers, body })
    }

    /// `X-Next-Token` (header names are case-insensitive; an empty value means none).
    pub fn next_token(&self) -> Option<String> {
        next_token(&self.headers)
    }
}

pub(crate) fn next_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-next-token")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Client for the REST API; cheap to clone.
#[derive(Debug, Clone)]
pub struct ApiClient {
    config: Arc<ConnectionConfig>,
}

impl ApiClient {
    pub fn new(config: ConnectionConfig) -> Self {
        ApiClient { config: Arc::new(config) }
    }

    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    /// The API key to send: the configured one, or the local sandboxd's (started if needed).
    pub async fn api_key(&self) -> Result<String> {
        if let Some(k) = &self.config.api_key {
            return Ok(k.clone());
        }
        if let Some(server) = &self.config.embedded {
            return crate::embedded::ensure_running(server).await;
        }
        Err(Error::Authentication(
            "API key is required, please visit the API Keys tab at https://e2b.dev/dashboard?tab=keys \
             to get your API key. You can either set the environment variable `E2B_API_KEY` or you \
             can pass it directly to the method like api_key=\"e2b_...\""
                .into(),
        ))
    }

    fn builder(&self, method: Method, path: &str, key: &str) -> RequestBuilder {
        let mut b = http_client()
            .request(method, format!("{}{}", self.config.api_url, path))
            .header("X-API-KEY", key);
        for (k, v) in &self.config.headers {
            b = b.header(k, v);
        }
        if let Some(t) = self.config.request_timeout {
            b = b.timeout(t);
        }
        b
    }

    /// Send one request. `query` pairs with `None` values are left out.
    pub async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, Option<String>)],
        body: Option<&B>,
    ) -> Result<ApiResponse> {
        self.send_with_headers(method, path, query, body, &[]).await
    }

    /// [`ApiClient::send`] with extra request headers (e.g. `Idempotency-Key`).
    pub async fn send_with_headers<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, Option<String>)],
        body: Option<&B>,
        headers: &[(&str, &str)],
    ) -> Result<ApiResponse> {
        let key = self.api_key().await?;
        let mut b = self.builder(method, path, &key);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let q: Vec<(&str, &str)> =
            query.iter().filter_map(|(k, v)| v.as_deref().map(|v| (*k, v))).collect();
        if !q.is_empty() {
            b = b.query(&q);
        }
        if let Some(body) = body {
            b = b.json(body);
        }
        ApiResponse::fetch(b).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_ids_are_one_segment() {
        assert_eq!(encode_path_segment("abc123:default"), "abc123%3Adefault");
        assert_eq!(encode_path_segment("team-x/my_snap:v1.2"), "team-x%2Fmy_snap%3Av1.2");
        assert_eq!(encode_path_segment("a b~"), "a%20b~");
    }

    #[test]
    fn next_token_header_is_case_insensitive() {
        let mut h = HeaderMap::new();
        assert_eq!(next_token(&h), None);
        h.insert("X-Next-Token", "tok".parse().unwrap());
        assert_eq!(next_token(&h).as_deref(), Some("tok"));
        let mut h = HeaderMap::new();
        h.insert("x-next-token", "".parse().unwrap());
        assert_eq!(next_token(&h), None);
    }
}
