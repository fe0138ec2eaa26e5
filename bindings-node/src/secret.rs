//! `Secret` (E2B's secrets API: named, versioned, write-only values) and `SecretPaginator`.
//! Every call and error lives in the core (`e2b::secret`); these are its JS shapes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use napi::bindgen_prelude::Result;
use napi_derive::napi;

use crate::config::{self, ConnectionOpts, with_connection_opts};
use crate::error::JsResult;

/// Metadata of a secret. Secret values are write-only and never returned.
#[napi(object, object_from_js = false)]
pub struct SecretInfo {
    /// Secret ID.
    pub secret_id: String,
    /// Secret name, unique within the project.
    pub name: String,
    /// Version served to readers that do not name one.
    pub version: i64,
    /// Customer metadata of the secret.
    pub metadata: HashMap<String, String>,
    /// Time when the secret was created.
    pub created_at: DateTime<Utc>,
    /// Time when the secret was last updated.
    pub updated_at: DateTime<Utc>,
}

impl From<e2b::SecretInfo> for SecretInfo {
    fn from(s: e2b::SecretInfo) -> Self {
        SecretInfo {
            secret_id: s.secret_id,
            name: s.name,
            version: s.version,
            metadata: s.metadata.into_iter().collect(),
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// Workload token definition for sandbox workload identity (`Secret.iamToken`).
#[napi(object)]
pub struct SandboxIamToken {
    /// Audience of the workload token, stored exactly as provided.
    pub audience: String,
    /// Workload token type (`'JWT-SVID'`).
    pub token_type: String,
}

with_connection_opts! {
    #[doc = " Options of `Secret.create`."]
    pub struct SecretCreateOpts {
        #[doc = " Customer metadata to store with the secret."]
        pub metadata: Option<HashMap<String, String>>,
    }
}

with_connection_opts! {
    #[doc = " Options of `Secret.update`."]
    pub struct SecretUpdateOpts {
        #[doc = " Customer metadata; when provided, replaces the stored metadata."]
        pub metadata: Option<HashMap<String, String>>,
    }
}

with_connection_opts! {
    #[doc = " Options of `Secret.list`."]
    pub struct SecretListOpts {
        #[doc = " Number of secrets per page (default 100)."]
        pub limit: Option<u32>,
        #[doc = " Token of the page to start from."]
        pub next_token: Option<String>,
    }
}

fn sorted(m: Option<HashMap<String, String>>) -> Option<std::collections::BTreeMap<String, String>> {
    m.map(|m| m.into_iter().collect())
}

/// Secrets of the project. Values are write-only: accepted by `create` and `update`, never
/// returned.
#[napi]
pub struct Secret {}

#[napi]
impl Secret {
    /// Create a secret; `value` becomes its version 1.
    #[napi(configurable)]
    pub async fn create(name: String, value: String, opts: Option<SecretCreateOpts>) -> Result<SecretInfo> {
        let opts = opts.unwrap_or_default();
        let m = sorted(opts.metadata.clone());
        e2b::secret::create(&name, &value, m.as_ref(), &opts.connection()).await.js().map(SecretInfo::from)
    }

    /// Store `value` as the next version of `secret` (ID or name); `SecretNotFoundError` if none.
    #[napi(configurable)]
    pub async fn update(secret: String, value: String, opts: Option<SecretUpdateOpts>) -> Result<SecretInfo> {
        let opts = opts.unwrap_or_default();
        let m = sorted(opts.metadata.clone());
        e2b::secret::update(&secret, &value, m.as_ref(), &opts.connection()).await.js().map(SecretInfo::from)
    }

    /// A secret's metadata; `SecretNotFoundError` if there is none.
    #[napi(configurable)]
    pub async fn get_info(secret: String, opts: Option<ConnectionOpts>) -> Result<SecretInfo> {
        e2b::secret::get_info(&secret, &config::connection(&opts)).await.js().map(SecretInfo::from)
    }

    /// Whether the secret exists.
    #[napi(configurable)]
    pub async fn exists(secret: String, opts: Option<ConnectionOpts>) -> Result<bool> {
        e2b::secret::exists(&secret, &config::connection(&opts)).await.js()
    }

    /// Delete the secret and all its versions: `true` if deleted, `false` if not found.
    #[napi(configurable)]
    pub async fn destroy(secret: String, opts: Option<ConnectionOpts>) -> Result<bool> {
        e2b::secret::destroy(&secret, &config::connection(&opts)).await.js()
    }

    /// A paginator over the secrets, newest first (no request until `nextItems`). Synchronous.
    #[napi(configurable)]
    pub fn list(opts: Option<SecretListOpts>) -> SecretPaginator {
        let opts = opts.unwrap_or_default();
        let list = e2b::SecretListOptions { limit: opts.limit, next_token: opts.next_token.clone() };
        SecretPaginator { inner: e2b::secret::list(list, &opts.connection()) }
    }

    /// The placeholder the runtime resolves to the secret's value: `${e2b.secrets.<name>}`.
    #[napi(configurable)]
    pub fn fill(secret: String) -> Result<String> {
        e2b::secret::fill(&secret).js()
    }

    /// A workload identity token definition for `iam.tokens` (no request).
    #[napi(configurable)]
    pub fn iam_token(token: SandboxIamToken) -> SandboxIamToken {
        token
    }
}

/// Pages of `Secret.list`.
#[napi]
pub struct SecretPaginator {
    inner: e2b::SecretPaginator,
}

#[napi]
impl SecretPaginator {
    /// Whether another page can be fetched (true before the first page).
    #[napi(getter)]
    pub fn has_next(&self) -> bool {
        self.inner.has_next()
    }

    /// Token of the next page.
    #[napi(getter)]
    pub fn next_token(&self) -> Option<String> {
        self.inner.next_token()
    }

    /// Fetch the next page; `opts` override the paginator's connection options for this call.
    #[napi]
    pub async fn next_items(&self, opts: Option<ConnectionOpts>) -> Result<Vec<SecretInfo>> {
        let over = opts.as_ref().map(ConnectionOpts::connection);
        let items = self.inner.next_items_with(over.as_ref()).await.js()?;
        Ok(items.into_iter().map(SecretInfo::from).collect())
    }
}
