//! The HTTP surface: routes, the small informational endpoints, and serving.
//!
//! `axum::serve` on a plain TCP listener speaks HTTP/1.1 and h2c (prior
//! knowledge) on the same port, which is what the SDKs' clients use.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{StatusCode, header};

use crate::state::Shared;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/init", post(crate::init::init))
        .route("/envs", get(envs))
        .route("/metrics", get(metrics))
        .route("/sandboxd/volumes", get(crate::volumes::attach))
        .route(
            "/files",
            get(crate::files::download)
                .post(crate::files::upload)
                .layer(DefaultBodyLimit::disable()),
        )
        // Connect routes enforce their own size limit while reading (see `connect::handle`).
        .route("/{service}/{method}", post(crate::connect::handle))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require_token,
        ))
        .layer(axum::middleware::from_fn(cors))
        .with_state(state)
}

/// Browsers run the JS SDK too: allow any origin, answer preflights before auth
/// (a preflight never carries the access token), and expose the Connect headers.
async fn cors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use http::HeaderValue;
    let preflight = req.method() == http::Method::OPTIONS
        && req.headers().contains_key("access-control-request-method");
    let mut resp = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert(
        "access-control-expose-headers",
        HeaderValue::from_static("*"),
    );
    if preflight {
        h.insert(
            "access-control-allow-methods",
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        h.insert(
            "access-control-allow-headers",
            HeaderValue::from_static("*"),
        );
        h.insert("access-control-max-age", HeaderValue::from_static("7200"));
    }
    resp
}

pub async fn serve(state: Shared, addr: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(
        "envd {} listening on {}",
        crate::ENVD_VERSION,
        listener.local_addr()?
    );
    axum::serve(listener, router(state)).await?;
    Ok(())
}

/// 204 with no body, like upstream envd; the version rides along in a header for humans.
async fn health() -> Response {
    (
        StatusCode::NO_CONTENT,
        [("x-envd-version", crate::ENVD_VERSION)],
    )
        .into_response()
}

async fn not_found(uri: http::Uri) -> Response {
    let message = format!("no route for {}", uri.path());
    if uri.path().matches('/').count() == 2 && uri.path().contains('.') {
        // Looks like a Connect route: answer in Connect's shape.
        return crate::connect::RpcError::new(crate::proto::Code::Unimplemented, message)
            .into_unary();
    }
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"code": 404, "message": message})),
    )
        .into_response()
}

/// The variables set by `/init`.
async fn envs(State(state): State<Shared>) -> Response {
    axum::Json(state.runtime().env_vars).into_response()
}

/// Resource usage in the shape of upstream envd's `/metrics` (sandboxd samples it every few
/// seconds into the sandbox's metrics).
async fn metrics() -> Response {
    let m = tokio::task::spawn_blocking(collect_metrics)
        .await
        .unwrap_or_default();
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(m)).into_response()
}

/// `(total, idle)` jiffies of all CPUs from `/proc/stat`.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is
    // already counted in user/nice, so only the first eight add up to the total.
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((v.iter().take(8).sum(), idle))
}

/// CPU times at the previous `/metrics` call: usage is averaged over the time between two
/// samples (like upstream's `cpu.Percent(0)`), not over a short window that misses bursts.
static LAST_CPU: std::sync::Mutex<Option<(u64, u64)>> = std::sync::Mutex::new(None);

fn cpu_used_pct() -> f64 {
    let mut last = LAST_CPU.lock().unwrap_or_else(|p| p.into_inner());
    let mut prev = *last;
    let mut now = cpu_times();
    if prev.zip(now).is_none_or(|(p, n)| n.0 <= p.0) {
        // First call (or no time passed): measure over a short window instead.
        prev = now;
        std::thread::sleep(std::time::Duration::from_millis(100));
        now = cpu_times();
    }
    *last = now;
    match (prev, now) {
        (Some((t0, i0)), Some((t1, i1))) if t1 > t0 => {
            let busy = 1.0 - i1.saturating_sub(i0) as f64 / (t1 - t0) as f64;
            (100.0 * busy).clamp(0.0, 100.0)
        }
        _ => 0.0,
    }
}

fn collect_metrics() -> serde_json::Value {
    let cpu_used_pct = cpu_used_pct();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |key: &str| -> u64 {
        meminfo
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    // What upstream reports (gopsutil): cache is the page cache plus reclaimable slab, and
    // used is what is neither free nor buffers nor cache.
    let total = kib("MemTotal:") * 1024;
    let cache = (kib("Cached:") + kib("SReclaimable:")) * 1024;
    let used = total.saturating_sub((kib("MemFree:") + kib("Buffers:")) * 1024 + cache);
    // Upstream: used = total - available to unprivileged users (reserved blocks count as used).
    let (disk_total, disk_used) = nix::sys::statvfs::statvfs("/")
        .map(|s| {
            let f = s.fragment_size();
            (
                s.blocks() * f,
                s.blocks().saturating_sub(s.blocks_available()) * f,
            )
        })
        .unwrap_or((0, 0));
    serde_json::json!({
        "ts": chrono::Utc::now().timestamp(),
        "cpu_count": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "cpu_used_pct": (cpu_used_pct * 100.0).round() / 100.0,
        "mem_total": total,
        "mem_used": used,
        "mem_cache": cache,
        "mem_total_mib": total >> 20,
        "mem_used_mib": used >> 20,
        "disk_total": disk_total,
        "disk_used": disk_used,
    })
}
