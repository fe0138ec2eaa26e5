//! The S3-compatible bucket images live in: `--object-store s3://bucket/prefix` (env
//! `SANDBOXD_OBJECT_STORE`), endpoint and credentials from the standard `AWS_ENDPOINT_URL`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_REGION` variables (`object_store`'s
//! S3 client; plain `http://` endpoints are allowed for on-premises servers).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

/// Multipart part size for large objects (disk layers).
pub const PART_SIZE: usize = 8 << 20;

#[derive(Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    url: String,
    /// Keys known to exist (objects are immutable), so repeated uploads skip the HEAD request.
    known: Arc<Mutex<std::collections::HashSet<String>>>,
    /// Plaintext hashes of disk layers (immutable) by file name, so a layer is hashed once per
    /// process and not at every snapshot that sits on it.
    layer_hashes: Arc<Mutex<std::collections::HashMap<String, (u64, String)>>>,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("url", &self.url).finish()
    }
}

impl Bucket {
    /// Opens `s3://bucket[/prefix]` with the `AWS_*` environment.
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        Self::open(url, std::env::vars().filter(|(k, _)| k.starts_with("AWS_")))
    }

    /// Opens `s3://bucket[/prefix]` with settings named as the `AWS_*` variables
    /// (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, …).
    pub fn open(url: &str, settings: impl IntoIterator<Item = (String, String)>) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| anyhow::anyhow!("object store {url:?}: only s3://bucket/prefix URLs are supported"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        anyhow::ensure!(!bucket.is_empty(), "object store {url:?}: no bucket name");
        let settings: std::collections::HashMap<String, String> = settings.into_iter().collect();
        let mut builder = AmazonS3Builder::new().with_bucket_name(bucket).with_region("us-east-1");
        for (key, value) in &settings {
            if let Ok(config_key) = key.to_ascii_lowercase().parse() {
                builder = builder.with_config(config_key, value);
            }
        }
        let endpoint = settings.get("AWS_ENDPOINT_URL").or(settings.get("AWS_ENDPOINT"));
        if endpoint.is_some_and(|e| e.starts_with("http://")) {
            builder = builder.with_allow_http(true);
        }
        // TLS endpoints use rustls with ring, as the rest of sandboxd.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let store = builder.build().map_err(|e| anyhow::anyhow!("object store {url:?}: {e}"))?;
        Ok(Self {
            store: Arc::new(store),
            prefix: prefix.trim_matches('/').to_string(),
            url: url.to_string(),
            known: Default::default(),
            layer_hashes: Default::default(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() { ObjectPath::from(key) } else { ObjectPath::from(format!("{}/{key}", self.prefix)) }
    }

    pub async fn exists(&self, key: &str) -> object_store::Result<bool> {
        if self.known.lock().unwrap().contains(key) {
            return Ok(true);
        }
        match self.store.head(&self.path(key)).await {
            Ok(_) => {
                self.mark_known(key);
                Ok(true)
            }
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn mark_known(&self, key: &str) {
        self.known.lock().unwrap().insert(key.to_string());
    }

    pub async fn put(&self, key: &str, data: Bytes) -> object_store::Result<()> {
        self.store.put(&self.path(key), PutPayload::from_bytes(data)).await?;
        self.mark_known(key);
        Ok(())
    }

    /// `None` when the object does not exist.
    pub async fn get(&self, key: &str) -> object_store::Result<Option<Bytes>> {
        match self.store.get(&self.path(key)).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The object as a stream of byte chunks (large objects).
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> object_store::Result<impl futures::Stream<Item = object_store::Result<Bytes>> + use<>> {
        Ok(self.store.get(&self.path(key)).await?.into_stream())
    }

    /// A multipart upload of a large object; parts are sent as they fill.
    pub async fn writer(&self, key: &str) -> object_store::Result<WriteMultipart> {
        let upload = self.store.put_multipart(&self.path(key)).await?;
        Ok(WriteMultipart::new_with_chunk_size(upload, PART_SIZE))
    }

    /// Forgets which keys exist: a garbage collection on any node may have deleted some.
    pub fn forget_known(&self) {
        self.known.lock().unwrap().clear();
    }

    pub(crate) fn layer_hash(&self, name: &str) -> Option<(u64, String)> {
        self.layer_hashes.lock().unwrap().get(name).cloned()
    }

    pub(crate) fn set_layer_hash(&self, name: &str, size: u64, hash: &str) {
        self.layer_hashes.lock().unwrap().insert(name.to_string(), (size, hash.to_string()));
    }

    pub(crate) fn uploaded(&self, key: &str) {
        self.mark_known(key);
    }

    pub async fn delete(&self, key: &str) -> object_store::Result<()> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        self.known.lock().unwrap().remove(key);
        Ok(())
    }

    /// Keys (relative to the prefix) under `dir`.
    pub async fn list(&self, dir: &str) -> object_store::Result<Vec<String>> {
        let base = self.path(dir);
        let strip = if self.prefix.is_empty() { String::new() } else { format!("{}/", self.prefix) };
        let metas: Vec<_> = self.store.list(Some(&base)).try_collect().await?;
        Ok(metas.into_iter().map(|m| m.location.as_ref().strip_prefix(strip.as_str()).unwrap_or(m.location.as_ref()).to_string()).collect())
    }

    /// Objects under `dir` with their size and last-modified time, as the listing pages arrive
    /// (a bucket may hold millions of chunks).
    pub fn list_meta(&self, dir: &str) -> impl futures::Stream<Item = object_store::Result<Listed>> + use<> {
        let strip = if self.prefix.is_empty() { String::new() } else { format!("{}/", self.prefix) };
        self.store.list(Some(&self.path(dir))).map_ok(move |m| Listed {
            key: m.location.as_ref().strip_prefix(strip.as_str()).unwrap_or(m.location.as_ref()).to_string(),
            size: m.size,
            last_modified: m.last_modified,
        })
    }
}

/// One object of a [`Bucket::list_meta`] listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Relative to the bucket's prefix, as the other methods take it (`chunks/<hash>`).
    pub key: String,
    /// Bytes stored (compressed).
    pub size: u64,
    pub last_modified: chrono::DateTime<chrono::Utc>,
}
