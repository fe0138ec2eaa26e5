//! Pulling an image over the OCI distribution API (`oci-client`): Docker's reference rules
//! (`ubuntu:22.04` is `docker.io/library/ubuntu:22.04`), Docker Hub's bearer-token flow, basic
//! auth with the build's registry credentials, anonymous otherwise; the linux/amd64 manifest of
//! an index; Docker v2 schema 2 and OCI media types.
//!
//! Blobs are kept by digest in `<cache>/blobs/<algorithm>/<hex>` once their digest was checked
//! (`oci-client` hashes the stream against the manifest's digest), written to a temporary name
//! first, so the cache only ever holds verified blobs and a second build downloads nothing.
//!
//! Where a reference is fetched from:
//! - `SANDBOXD_REGISTRY_MIRROR=http(s)://host[:port]` serves every Docker Hub reference, as
//!   Docker's `registry-mirrors` does (no fallback to Docker Hub: hosts that set it usually
//!   cannot reach it, and a silent fallback would hide a mirror that lacks the image);
//! - loopback registries (`localhost`, `127.0.0.0/8`, `[::1]`) and those listed in
//!   `SANDBOXD_INSECURE_REGISTRIES` (comma-separated `host[:port]`) are spoken to over plain
//!   HTTP, as Docker treats loopback and `insecure-registries`; everything else over HTTPS.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use oci_client::client::{ClientConfig, ClientProtocol, linux_amd64_resolver};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;
use oci_client::{Client, Reference, RegistryOperation};
use tokio::io::AsyncWrite;

use super::RegistryAuth;

/// What the image config asks of the processes it runs.
#[derive(Debug, Clone, Default)]
pub struct ImageConfig {
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub user: Option<String>,
}

/// A pulled image: its platform manifest digest, config and layer blobs in order.
pub struct Pulled {
    pub digest: String,
    pub config: ImageConfig,
    pub layers: Vec<PathBuf>,
}

/// Where `reference` is fetched from, and how.
struct Source {
    reference: Reference,
    /// `scheme://host` for messages.
    registry_url: String,
    protocol: ClientProtocol,
}

fn is_loopback(host_port: &str) -> bool {
    let host = match host_port.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn source(reference: &str) -> anyhow::Result<Source> {
    let mirror = std::env::var("SANDBOXD_REGISTRY_MIRROR").ok();
    source_with(reference, mirror.as_deref(), &std::env::var("SANDBOXD_INSECURE_REGISTRIES").unwrap_or_default())
}

fn source_with(reference: &str, mirror: Option<&str>, insecure: &str) -> anyhow::Result<Source> {
    let mut r: Reference = reference
        .parse()
        .map_err(|e| anyhow::anyhow!("invalid image reference '{reference}': {e}"))?;
    let insecure: Vec<String> = insecure
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let mut http_hosts = Vec::new();
    if r.registry() == "docker.io"
        && let Some(mirror) = mirror
        && !mirror.trim().is_empty()
    {
        let mirror = mirror.trim().trim_end_matches('/');
        let (scheme, host) = mirror
            .split_once("://")
            .filter(|(s, h)| matches!(*s, "http" | "https") && !h.is_empty() && !h.contains('/'))
            .with_context(|| format!("SANDBOXD_REGISTRY_MIRROR={mirror}: expected http(s)://host[:port]"))?;
        if scheme == "http" {
            http_hosts.push(host.to_string());
        }
        r.set_mirror_registry(host.to_string());
    }
    let host = r.resolve_registry().to_string();
    if is_loopback(&host) || insecure.contains(&host) {
        http_hosts.push(host.clone());
    }
    let scheme = if http_hosts.contains(&host) { "http" } else { "https" };
    Ok(Source { registry_url: format!("{scheme}://{host}"), reference: r, protocol: ClientProtocol::HttpsExcept(http_hosts) })
}

/// A registry failure as a user reads it: which image, which registry, what it answered.
fn explain(e: OciDistributionError, reference: &str, registry: &str, anonymous: bool) -> anyhow::Error {
    use OciDistributionError as E;
    let mut source_chain = String::new();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = cur {
        source_chain.push_str(&format!(": {s}"));
        cur = s.source();
    }
    match e {
        E::UnauthorizedError { .. } | E::AuthenticationFailure(_) if anonymous => anyhow::anyhow!(
            "registry {registry} refused anonymous access to {reference} ({e}): the image is private or missing; pass registry credentials"
        ),
        E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => {
            anyhow::anyhow!("registry {registry} refused the credentials for {reference}: {e}")
        }
        E::RegistryError { ref envelope, .. } => {
            let codes: Vec<String> = envelope.errors.iter().map(|x| format!("{:?}: {}", x.code, x.message)).collect();
            if envelope.errors.iter().any(|x| format!("{:?}", x.code).contains("Unknown")) {
                anyhow::anyhow!("image {reference} not found in registry {registry}: {}", codes.join("; "))
            } else {
                anyhow::anyhow!("registry {registry} refused {reference}: {}", codes.join("; "))
            }
        }
        E::ServerError { code: 404, ref message, .. } => {
            anyhow::anyhow!("image {reference} not found in registry {registry}: {}", message.trim())
        }
        E::ImageManifestNotFoundError(_) => {
            anyhow::anyhow!("image {reference} has no linux/amd64 variant (sandboxes are x86_64 VMs): {e}")
        }
        E::RequestError(_) => anyhow::anyhow!("cannot reach registry {registry} for {reference}: {e}{source_chain}"),
        other => anyhow::anyhow!("pulling {reference} from {registry} failed: {other}{source_chain}"),
    }
}

/// Resolves `reference` to its linux/amd64 manifest and downloads what is not cached yet.
pub async fn pull(
    cache: &Path,
    reference: &str,
    auth: Option<&RegistryAuth>,
    log: &(dyn Fn(String) + Send + Sync),
) -> anyhow::Result<Pulled> {
    let src = source(reference)?;
    // reqwest is built without a bundled TLS provider: ring, as everywhere in the workspace.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::new(ClientConfig {
        protocol: src.protocol.clone(),
        platform_resolver: Some(Box::new(linux_amd64_resolver)),
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        user_agent: concat!("sandboxd/", env!("CARGO_PKG_VERSION")),
        ..Default::default()
    });
    let creds = match auth {
        Some(a) => oci_client::secrets::RegistryAuth::Basic(a.username.clone(), a.password.clone()),
        None => oci_client::secrets::RegistryAuth::Anonymous,
    };
    let explain = |e| explain(e, reference, &src.registry_url, auth.is_none());
    log(format!("resolving {reference} at {}", src.registry_url));
    if auth.is_some() {
        // Up front, so a token service's refusal is reported with its answer (a failed token
        // request inside a pull only shows as the registry's bare 401).
        client.auth(&src.reference, &creds, RegistryOperation::Pull).await.map_err(explain)?;
    }
    let (manifest, digest, config) =
        client.pull_manifest_and_config(&src.reference, &creds).await.map_err(explain)?;
    let config: serde_json::Value =
        serde_json::from_str(&config).with_context(|| format!("{reference}: the image config is not JSON"))?;
    let (os, arch) = (config["os"].as_str().unwrap_or("linux"), config["architecture"].as_str().unwrap_or("amd64"));
    if os != "linux" || arch != "amd64" {
        bail!("image {reference} is built for {os}/{arch}; sandboxes run linux/amd64 images only");
    }
    let total: u64 = manifest.layers.iter().map(|l| l.size.max(0) as u64).sum();
    log(format!("{reference}: manifest {digest}, {} layers, {:.1} MiB compressed", manifest.layers.len(), mib(total)));

    let mut layers = Vec::with_capacity(manifest.layers.len());
    for (i, layer) in manifest.layers.iter().enumerate() {
        let label = format!("layer {}/{} {}", i + 1, manifest.layers.len(), short(&layer.digest));
        let path = blob_path(cache, &layer.digest)?;
        if path.is_file() {
            log(format!("{label}: cached ({:.1} MiB)", mib(layer.size.max(0) as u64)));
        } else {
            download(&client, &src.reference, layer, &path, &label, log).await.map_err(|e| match e.downcast::<OciDistributionError>() {
                Ok(oci) => explain(oci),
                Err(e) => e,
            })?;
        }
        layers.push(path);
    }
    let cfg = &config["config"];
    let env = cfg["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let nonempty = |v: &serde_json::Value| v.as_str().filter(|s| !s.is_empty()).map(String::from);
    Ok(Pulled {
        digest,
        config: ImageConfig { env, workdir: nonempty(&cfg["WorkingDir"]), user: nonempty(&cfg["User"]) },
        layers,
    })
}

/// `<cache>/blobs/<algorithm>/<hex>`, refusing digests that are not `alg:hex` (a manifest
/// is registry input: its digests must not name paths).
pub fn blob_path(cache: &Path, digest: &str) -> anyhow::Result<PathBuf> {
    let (alg, hex) = digest.split_once(':').with_context(|| format!("malformed digest {digest}"))?;
    let ok_alg = !alg.is_empty() && alg.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let ok_hex = hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if !ok_alg || !ok_hex {
        bail!("malformed digest {digest}");
    }
    Ok(cache.join("blobs").join(alg).join(hex))
}

async fn download(
    client: &Client,
    reference: &Reference,
    layer: &OciDescriptor,
    dest: &Path,
    label: &str,
    log: &(dyn Fn(String) + Send + Sync),
) -> anyhow::Result<()> {
    let dir = dest.parent().expect("blob dir");
    std::fs::create_dir_all(dir)?;
    sweep_stale_downloads(dir);
    let tmp = dir.join(format!(".tmp-{}", crate::vm::random_id()));
    let started = Instant::now();
    let result = async {
        let file = tokio::fs::File::create(&tmp).await?;
        let mut out = Counting { inner: file, written: 0, total: layer.size.max(0) as u64, last: Instant::now(), label, log };
        client.pull_blob(reference, layer, &mut out).await?;
        out.inner.sync_all().await?;
        Ok::<_, anyhow::Error>(out.written)
    }
    .await;
    match result {
        Ok(bytes) => {
            std::fs::rename(&tmp, dest)?;
            let secs = started.elapsed().as_secs_f64();
            log(format!("{label}: downloaded {:.1} MiB in {secs:.1} s, digest verified", mib(bytes)));
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Removes partial downloads a killed build left (an hour old: a running download of another
/// build writes its file continuously).
fn sweep_stale_downloads(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let stale = e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(3600));
        if e.file_name().to_string_lossy().starts_with(".tmp-") && stale {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min(19)]
}

/// Counts what a download wrote, with a progress line every few seconds for big layers.
struct Counting<'a, W> {
    inner: W,
    written: u64,
    total: u64,
    last: Instant,
    label: &'a str,
    log: &'a (dyn Fn(String) + Send + Sync),
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Counting<'_, W> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            this.written += n as u64;
            if this.last.elapsed() >= Duration::from_secs(5) {
                this.last = Instant::now();
                let pct = (this.written * 100).checked_div(this.total).unwrap_or(0);
                (this.log)(format!("{}: {:.1}/{:.1} MiB ({pct}%)", this.label, mib(this.written), mib(this.total)));
            }
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_like_docker() {
        let source = |r: &str| source_with(r, None, "");
        let s = source("ubuntu:22.04").unwrap();
        assert_eq!(s.reference.registry(), "docker.io");
        assert_eq!(s.reference.repository(), "library/ubuntu");
        assert_eq!(s.reference.tag(), Some("22.04"));
        assert_eq!(s.registry_url, "https://index.docker.io");
        let s = source("e2bdev/base").unwrap();
        assert_eq!(s.reference.repository(), "e2bdev/base");
        assert_eq!(s.reference.tag(), Some("latest"));
        let s = source("127.0.0.1:5000/team/app:v1").unwrap();
        assert_eq!(s.registry_url, "http://127.0.0.1:5000");
        assert_eq!(s.reference.repository(), "team/app");
        let d = format!("sha256:{}", "a".repeat(64));
        let s = source(&format!("ghcr.io/org/img@{d}")).unwrap();
        assert_eq!(s.reference.digest(), Some(d.as_str()));
        assert_eq!(s.registry_url, "https://ghcr.io");
        assert!(source("UPPER/Case:tag").is_err());
    }

    #[test]
    fn mirror_serves_docker_hub_only() {
        let s = source_with("ubuntu:22.04", Some("http://127.0.0.1:5001/"), "").unwrap();
        assert_eq!(s.registry_url, "http://127.0.0.1:5001");
        assert_eq!(s.reference.repository(), "library/ubuntu");
        let s = source_with("quay.io/org/img:1", Some("http://127.0.0.1:5001"), "").unwrap();
        assert_eq!(s.registry_url, "https://quay.io");
        let s = source_with("reg.lan:5000/img", None, "other:1, reg.lan:5000").unwrap();
        assert_eq!(s.registry_url, "http://reg.lan:5000");
        assert!(source_with("ubuntu", Some("127.0.0.1:5001"), "").is_err());
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry.example.com:5000"));
        assert!(!is_loopback("10.0.0.1"));
    }

    #[test]
    fn blob_paths_cannot_escape() {
        let c = Path::new("/cache");
        let d = format!("sha256:{}", "0f".repeat(32));
        assert_eq!(blob_path(c, &d).unwrap(), c.join("blobs/sha256").join("0f".repeat(32)));
        for bad in ["sha256:../../etc/passwd", "../x:abc", "sha256", &format!("SHA256:{}", "0".repeat(64))] {
            assert!(blob_path(c, bad).is_err(), "{bad}");
        }
    }
}
