//! Wiring: opens the store, the key file and the runtime, recovers sandboxes, starts the
//! reaper, and serves REST + envd proxy on one listener (HTTP/1.1 and h2c).
//!
//! Invariant: shutting sandboxd down never kills VMs; they are picked up on the next start.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use tower::ServiceExt;
use tracing::{info, warn};

use crate::api::{self, AppState};
use crate::auth::Keys;
use crate::cluster::front::{self, Routed};
use crate::config::Config;
use crate::manager::Manager;
use crate::proxy::{self, EnvdProxy};
use crate::signed_url;
use crate::store::Store;
use crate::vm::Runtime;

/// The whole HTTP surface: envd traffic to the proxy, the rest to the REST router.
pub fn app(state: AppState) -> Router {
    let rest = api::router(state.clone());
    let envd = EnvdProxy::new(state.manager.clone());
    let manager = state.manager.clone();
    Router::new().fallback_service(tower::service_fn(move |req: Request| {
        let (rest, envd, manager) = (rest.clone(), envd.clone(), manager.clone());
        async move {
            // In a cluster, requests about a sandbox on another node go there (see `cluster::front`).
            if let Some((id, port)) = proxy::target(&req) {
                let req = match front::to_owner(&manager, &id, req).await {
                    Routed::Done(resp) => return Ok::<_, Infallible>(resp),
                    Routed::Local(req) => req,
                };
                return Ok(envd.forward(id, port, req).await);
            }
            match signed_url::route(&req, manager.store()) {
                Some(Ok(id)) => match front::to_owner(&manager, &id, req).await {
                    Routed::Done(resp) => Ok(resp),
                    Routed::Local(req) => Ok(envd.forward(id, proxy::ENVD_PORT, req).await),
                },
                Some(Err(refused)) => Ok(refused),
                None if manager.cluster().is_none() => rest.oneshot(req).await,
                None => {
                    let req = match crate::cluster::route::rest_sandbox_id(req.uri().path()).map(str::to_string) {
                        Some(id) => front::to_owner(&manager, &id, req).await,
                        None if front::is_create(&req) => {
                            let local = |req: Request| {
                                let rest = rest.clone();
                                async move { rest.oneshot(req).await.unwrap_or_else(|never| match never {}) }
                            };
                            front::place_create(&manager, req, local).await
                        }
                        None => Routed::Local(req),
                    };
                    match req {
                        Routed::Done(resp) => Ok(resp),
                        Routed::Local(req) => rest.oneshot(req).await,
                    }
                }
            }
        }
    }))
}

pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)?;
    crate::config::set_sandbox_domain(cfg.domain.clone());
    // The runtime first: it may mount the store (which must still be empty) under the data dir.
    let runtime = Runtime::new(&cfg.data_dir).await?;
    std::fs::create_dir_all(cfg.snapshots_dir())?;
    let mut store = Store::open_url(cfg.database.as_deref(), &cfg.db_path())?;
    let cluster = match &cfg.cluster {
        Some(c) => {
            store = store.with_node_id(&c.node_id);
            let cluster = crate::cluster::Cluster::new(c.clone(), runtime.accel(), store.peer_key()?)?;
            info!(node = %c.node_id, advertise = %c.advertise_url, object_store = %c.object_store, "cluster mode");
            Some(Arc::new(cluster))
        }
        None => None,
    };
    let store = Arc::new(store);
    info!(backend = store.backend(), "store open");
    let keys = Keys::ensure(&store, &cfg.api_key_path())?;
    let volumes = crate::volumes::Volumes::open(&cfg.data_dir, &store)?;
    // The egress proxy resolves `${e2b.secrets.<name>}` per request, and signs with this CA.
    crate::network::ca::init(&cfg.data_dir);
    // Workload identity tokens name this issuer; relying parties fetch its key from it.
    let issuer = std::env::var("SANDBOXD_IDENTITY_ISSUER").unwrap_or_else(|_| format!("http://{}", cfg.listen));
    crate::network::identity::init(&cfg.data_dir, issuer);
    let secrets = store.clone();
    crate::network::rules::set_secret_lookup(Arc::new(move |name| secrets.secret_value(name).ok().flatten()));
    info!(accelerator = runtime.accel(), data_dir = %cfg.data_dir.display(), templates_dir = %cfg.templates_dir.display(), "runtime ready");
    // Build the base template in the background when it is missing or was built with another
    // envd; requests for it fail with 404 until it is ready.
    let templates_dir = cfg.templates_dir.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::template::ensure_base(&templates_dir).await {
            warn!("the base template is not available: {e:#} (build it with `sandboxd template build base`)");
        }
    });
    let manager = Manager::new(cfg.clone(), store, runtime, cluster);
    manager.recover().await?;
    manager.spawn_heartbeat()?;
    manager.spawn_reaper();
    manager.spawn_space_watch();
    manager.telemetry().spawn();
    manager.spawn_pool();
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    info!(listen = %listener.local_addr()?, "sandboxd listening");
    let builds = crate::template::build::Builds::new(manager.clone());
    let app = app(AppState { manager: manager.clone(), keys, builds, volumes });
    crate::shutdown::serve_until_signal(|stop| axum::serve(listener, app).with_graceful_shutdown(stop).into_future())
        .await?;
    manager.drain_pools().await;
    info!("sandboxd stopped (running sandboxes keep running)");
    Ok(())
}
