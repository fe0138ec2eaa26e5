//! Traffic to any other guest port (`<port>-<id>.<domain>` or `E2b-Sandbox-Port`), as E2B's
//! proxy serves it: HTTP/1.1, WebSocket and other `Upgrade`s (both sides upgraded, then bytes
//! copied both ways), and prior-knowledge HTTP/2 (h2c), which reaches the guest as HTTP/2 so
//! trailers (gRPC) survive (one upstream connection per request: its `:authority` is the
//! public host).
//!
//! Invariants:
//! - a sandbox created with `allowPublicTraffic: false` answers 403 unless the request
//!   carries its traffic access token in `e2b-traffic-access-token` (checked before anything
//!   else, auto-resume included); envd's port never needs it;
//! - the guest sees the client's `Host`, or `maskRequestHost` (`${PORT}` replaced) with the
//!   client's host in `X-Forwarded-Host`;
//! - QEMU forwards a guest port the first time it is asked for (QMP `hostfwd_add`); forwards
//!   are remembered per QEMU process, so a resumed/restored sandbox (a new process) gets
//!   them again on demand;
//! - a port nothing listens on is a 502 with E2B's "port is not open" message.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, Uri, Version, header};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use subtle::ConstantTimeEq;

use super::{ProxyError, strip_hop_by_hop};
use crate::manager::Manager;
use crate::network::TRAFFIC_TOKEN_HEADER;
use crate::store::SandboxState;

/// Sandbox ID → (QEMU pid, guest port → where its forward listens).
type Forwards = HashMap<String, (u32, HashMap<u16, SocketAddr>)>;

/// One HTTP/2 (prior knowledge) request on its own connection to `addr`, so the request's
/// authority can be the public host while the socket goes to the forward. The connection
/// ends with the response.
async fn send_h2(addr: SocketAddr, req: Request) -> Result<hyper::Response<hyper::body::Incoming>, String> {
    let connect = tokio::net::TcpStream::connect(addr);
    let stream = tokio::time::timeout(std::time::Duration::from_secs(5), connect)
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("h2c connection to a guest: {e}");
        }
    });
    sender.send_request(req).await.map_err(|e| e.to_string())
}

#[derive(Clone)]
pub struct PortProxy {
    http1: Client<HttpConnector, Body>,
    forwards: Arc<tokio::sync::Mutex<Forwards>>,
}

fn connector() -> HttpConnector {
    let mut c = HttpConnector::new();
    c.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
    c.set_nodelay(true);
    c
}

impl PortProxy {
    pub fn new() -> Self {
        Self { http1: Client::builder(TokioExecutor::new()).build(connector()), forwards: Default::default() }
    }

    /// Where guest `port` of a running sandbox is reached, adding QEMU's forward if needed.
    async fn upstream(&self, manager: &Manager, id: &str, port: u16) -> Result<SocketAddr, String> {
        let row = manager.store().sandbox(id).ok().flatten().ok_or("gone")?;
        let vm = row.vm.filter(|_| row.state != SandboxState::Paused).ok_or("not running")?;
        let mut forwards = self.forwards.lock().await;
        forwards.retain(|sid, _| manager.envd_addr(sid).is_some());
        let entry = forwards.entry(id.to_string()).or_default();
        if entry.0 != vm.pid {
            *entry = (vm.pid, HashMap::new());
        }
        if let Some(addr) = entry.1.get(&port) {
            return Ok(*addr);
        }
        let started = std::time::Instant::now();
        let addr = manager.forward_port(&vm, port).await.map_err(|e| e.to_string())?;
        tracing::debug!(sandbox = %id, port, us = started.elapsed().as_micros() as u64, "guest port forwarded");
        entry.1.insert(port, addr);
        Ok(addr)
    }

    pub async fn forward(&self, manager: &Manager, id: String, port: u16, mut req: Request) -> Response {
        let Some(row) = manager.store().sandbox(&id).ok().flatten() else {
            return ProxyError::not_found(&id).into_response();
        };
        let network = row.network.clone().unwrap_or_default();
        if network.private() {
            let expected = row.traffic_access_token.as_deref().unwrap_or_default();
            match req.headers().get(TRAFFIC_TOKEN_HEADER).map(|v| v.as_bytes()) {
                None => return ProxyError::token(&id, false).into_response(),
                Some(got) if expected.is_empty() || !bool::from(got.ct_eq(expected.as_bytes())) => {
                    return ProxyError::token(&id, true).into_response();
                }
                Some(_) => {}
            }
        }
        if manager.envd_addr(&id).is_none() && manager.auto_resume(&id).await.is_none() {
            return ProxyError::not_found(&id).into_response();
        }
        let addr = match self.upstream(manager, &id, port).await {
            Ok(addr) => addr,
            Err(e) => {
                tracing::debug!(sandbox = %id, port, "no forward: {e}");
                return ProxyError::port_closed(&id, port).into_response();
            }
        };

        let h2 = req.version() == Version::HTTP_2;
        let upgrade = (!h2 && req.headers().contains_key(header::UPGRADE))
            .then(|| req.headers().get(header::UPGRADE).cloned())
            .flatten();
        let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
        let te_trailers = req.headers().get(header::TE).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
        let original_host = req
            .headers()
            .get(header::HOST)
            .cloned()
            .or_else(|| req.uri().authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()));
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        // HTTP/2 names the host in the URI (`:authority`); HTTP/1.1 connects to the URI's.
        let authority = match (h2, network.masked_host(port), &original_host) {
            (true, Some(mask), _) => mask,
            (true, None, Some(host)) => host.to_str().unwrap_or_default().to_string(),
            _ => addr.to_string(),
        };
        let uri: Uri = match format!("http://{authority}{path}").parse() {
            Ok(uri) => uri,
            Err(e) => return crate::error::ApiError::bad_request(format!("bad request path: {e}")).into_response(),
        };
        *req.uri_mut() = uri;
        *req.version_mut() = if h2 { Version::HTTP_2 } else { Version::HTTP_11 };
        let headers = req.headers_mut();
        strip_hop_by_hop(headers);
        if let Some(up) = &upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, up.clone());
        }
        if h2 && te_trailers {
            headers.insert(header::TE, HeaderValue::from_static("trailers"));
        }
        match network.masked_host(port).and_then(|h| HeaderValue::from_str(&h).ok()) {
            Some(mask) => {
                if let Some(orig) = original_host {
                    headers.insert("x-forwarded-host", orig);
                }
                headers.insert(header::HOST, mask);
            }
            None => {
                if let Some(orig) = original_host {
                    headers.insert(header::HOST, orig);
                }
            }
        }
        if h2 {
            // Carried as `:authority` (above); a `Host` field would be sent as a plain header.
            headers.remove(header::HOST);
        }

        let sent = if h2 { send_h2(addr, req).await } else { self.http1.request(req).await.map_err(|e| e.to_string()) };
        match sent {
            Ok(mut resp) => {
                if resp.status() == StatusCode::SWITCHING_PROTOCOLS
                    && let Some(client_upgrade) = client_upgrade
                {
                    let server_upgrade = hyper::upgrade::on(&mut resp);
                    tokio::spawn(async move {
                        match tokio::try_join!(client_upgrade, server_upgrade) {
                            Ok((c, s)) => {
                                let (mut c, mut s) = (TokioIo::new(c), TokioIo::new(s));
                                let _ = tokio::io::copy_bidirectional(&mut c, &mut s).await;
                            }
                            Err(e) => tracing::debug!("upgrade failed: {e}"),
                        }
                    });
                    let (parts, body) = resp.into_parts();
                    return Response::from_parts(parts, Body::new(body));
                }
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, Body::new(body))
            }
            Err(e) => {
                tracing::debug!(sandbox = %id, port, error = %e, "guest port unreachable");
                if manager.envd_addr(&id).is_none() || manager.reap_if_dead(&id).await {
                    ProxyError::not_found(&id).into_response()
                } else {
                    ProxyError::port_closed(&id, port).into_response()
                }
            }
        }
    }
}
