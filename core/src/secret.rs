//! E2B's secrets (`Secret.create/update/get_info/list/exists/destroy/fill`): named, versioned,
//! write-only values, over `/secrets` (spec: E2B's OpenAPI `Secret`, `NewSecret`, `SecretUpdate`).
//!
//! As in E2B's SDKs: a failed call is a [`Error::Secret`] (`SecretException` / `SecretError`)
//! except 401/429/503, which keep their own kinds; `get_info` and `update` of an unknown secret
//! are [`Error::SecretNotFound`] ("Secret <x> not found"); `destroy` and `exists` answer false.
//! [`fill`] only formats the `${e2b.secrets.<name>}` placeholder (no request).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::api::{ApiClient, ApiResponse, encode_path_segment};
use crate::config::ConnectionOpts;
use crate::error::{Error, Result};
use crate::paginator::Cursor;
use crate::sandbox::api_for;

/// Metadata of a secret; the value is never returned.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretInfo {
    pub secret_id: String,
    pub name: String,
    /// Version served to readers that do not name one.
    pub version: i64,
    pub metadata: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretWire {
    #[serde(rename = "secretID")]
    secret_id: String,
    name: String,
    current_version: i64,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<SecretWire> for SecretInfo {
    fn from(w: SecretWire) -> Self {
        SecretInfo {
            secret_id: w.secret_id,
            name: w.name,
            version: w.current_version,
            metadata: w.metadata,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

#[derive(Serialize)]
struct NewSecret<'a> {
    name: &'a str,
    value: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a BTreeMap<String, String>>,
}

#[derive(Serialize)]
struct SecretUpdate<'a> {
    value: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a BTreeMap<String, String>>,
}

/// A failed response as E2B's SDKs raise it for secrets (`handle_api_exception(res, SecretException)`).
fn secret_error(r: ApiResponse) -> Error {
    r.into_error_as(Error::Secret)
}

fn path(secret: &str) -> String {
    format!("/secrets/{}", encode_path_segment(secret))
}

fn not_found(secret: &str) -> Error {
    Error::SecretNotFound(format!("Secret {secret} not found"))
}

/// Create a secret whose first version is `value`.
pub async fn create(
    name: &str,
    value: &str,
    metadata: Option<&BTreeMap<String, String>>,
    opts: &ConnectionOpts,
) -> Result<SecretInfo> {
    let body = NewSecret { name, value, metadata };
    let r = api_for(opts).send(Method::POST, "/secrets", &[], Some(&body)).await?;
    if !r.is_success() {
        return Err(secret_error(r));
    }
    Ok(r.json::<SecretWire>()?.into())
}

/// Store `value` as the next version of `secret` (ID or name); `metadata`, when given, replaces
/// the stored metadata.
pub async fn update(
    secret: &str,
    value: &str,
    metadata: Option<&BTreeMap<String, String>>,
    opts: &ConnectionOpts,
) -> Result<SecretInfo> {
    let body = SecretUpdate { value, metadata };
    let r = api_for(opts).send(Method::POST, &path(secret), &[], Some(&body)).await?;
    if r.status == 404 {
        return Err(not_found(secret));
    }
    if !r.is_success() {
        return Err(secret_error(r));
    }
    Ok(r.json::<SecretWire>()?.into())
}

/// A secret's metadata, by ID or name.
pub async fn get_info(secret: &str, opts: &ConnectionOpts) -> Result<SecretInfo> {
    let r = api_for(opts).send::<()>(Method::GET, &path(secret), &[], None).await?;
    if r.status == 404 {
        return Err(not_found(secret));
    }
    if !r.is_success() {
        return Err(secret_error(r));
    }
    Ok(r.json::<SecretWire>()?.into())
}

/// Whether the secret exists.
pub async fn exists(secret: &str, opts: &ConnectionOpts) -> Result<bool> {
    match get_info(secret, opts).await {
        Ok(_) => Ok(true),
        Err(Error::SecretNotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Delete a secret and all its versions: true when deleted, false when it was not found.
pub async fn destroy(secret: &str, opts: &ConnectionOpts) -> Result<bool> {
    let r = api_for(opts).send::<()>(Method::DELETE, &path(secret), &[], None).await?;
    match r.status {
        404 => Ok(false),
        s if s >= 300 => Err(secret_error(r)),
        _ => Ok(true),
    }
}

/// The placeholder the runtime resolves to the secret's current value. No request is made, so
/// an unknown name is not detected here.
pub fn fill(name: &str) -> Result<String> {
    if name.is_empty() || name.chars().any(|c| c == '{' || c == '}' || c.is_control()) {
        return Err(unusable_name(&format!("{name:?}")));
    }
    Ok(format!("${{e2b.secrets.{name}}}"))
}

/// The error of [`fill`] for a name shown as `shown` (bindings pass the repr of a non-string).
pub fn unusable_name(shown: &str) -> Error {
    Error::InvalidArgument(format!(
        "secret name {shown} is not usable: a secret name must be a non-empty string and cannot \
         contain '{{', '}}' or control characters, because it is interpolated into the \
         '${{e2b.secrets.<name>}}' placeholder the runtime resolves."
    ))
}

/// Options of [`list`].
#[derive(Debug, Clone, Default)]
pub struct SecretListOptions {
    /// Page size (1..=100; the server defaults to 100).
    pub limit: Option<u32>,
    pub next_token: Option<String>,
}

/// Pages through `GET /secrets`, newest first.
#[derive(Debug, Clone)]
pub struct SecretPaginator(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    conn: ConnectionOpts,
    api: ApiClient,
    limit: Option<u32>,
    cursor: Cursor,
}

/// A paginator over the secrets (no request until `next_items`).
pub fn list(opts: SecretListOptions, conn: &ConnectionOpts) -> SecretPaginator {
    let inner = Inner { conn: conn.clone(), api: api_for(conn), limit: opts.limit, cursor: Cursor::new(opts.next_token) };
    SecretPaginator(Arc::new(inner))
}

impl SecretPaginator {
    pub fn has_next(&self) -> bool {
        self.0.cursor.has_next()
    }

    pub fn next_token(&self) -> Option<String> {
        self.0.cursor.next_token()
    }

    /// Fetch the next page.
    pub async fn next_items(&self) -> Result<Vec<SecretInfo>> {
        self.next_items_with(None).await
    }

    /// Fetch the next page; `over`, when given, overrides the paginator's connection options for
    /// this call only (E2B's `next_items(**opts)`).
    pub async fn next_items_with(&self, over: Option<&ConnectionOpts>) -> Result<Vec<SecretInfo>> {
        let token = self.0.cursor.begin()?;
        let q = [("limit", self.0.limit.map(|l| l.to_string())), ("nextToken", token)];
        let api = match over {
            Some(o) => api_for(&self.0.conn.merged(o)),
            None => self.0.api.clone(),
        };
        let r = api.send::<()>(Method::GET, "/secrets", &q, None).await?;
        if !r.is_success() {
            return Err(secret_error(r));
        }
        let items: Vec<SecretWire> = r.json()?;
        self.0.cursor.update(r.next_token());
        Ok(items.into_iter().map(SecretInfo::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_formats_and_refuses_unusable_names() {
        assert_eq!(fill("openai-api-key").unwrap(), "${e2b.secrets.openai-api-key}");
        for bad in ["", "a{", "b}", "c\n"] {
            let e = fill(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{bad:?}");
            assert!(e.to_string().contains("'${e2b.secrets.<name>}'"), "{e}");
        }
    }

    #[test]
    fn errors_are_secret_errors_except_the_shared_kinds() {
        let r = |status, body: &str| ApiResponse { status, headers: Default::default(), body: body.to_owned().into() };
        let e = secret_error(r(409, r#"{"code":409,"message":"a secret named \"x\" already exists"}"#));
        assert!(matches!(&e, Error::Secret(m) if m == "409: a secret named \"x\" already exists"), "{e:?}");
        assert!(matches!(secret_error(r(401, "{}")), Error::Authentication(_)));
        assert!(matches!(secret_error(r(503, "{}")), Error::ServiceBusy(_)));
    }

    #[test]
    fn wire_form_parses() {
        let w: SecretWire = serde_json::from_str(
            r#"{"secretID":"sec_1","name":"n","currentVersion":3,"metadata":{"a":"b"},
                "createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-02T00:00:00.5Z"}"#,
        )
        .unwrap();
        let i = SecretInfo::from(w);
        assert_eq!((i.secret_id.as_str(), i.version, i.metadata["a"].as_str()), ("sec_1", 3, "b"));
    }
}
