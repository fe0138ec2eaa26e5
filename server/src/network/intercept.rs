//! The intercepting half of the egress proxy: HTTP(S) connections to a host with transform
//! rules ([`super::rules`]) are terminated here, every request gets the rule's headers (with
//! secrets resolved at that moment) and goes on to the address the guest dialled.
//!
//! - TLS: the guest gets a certificate for its SNI signed by the egress CA ([`super::ca`],
//!   which such sandboxes trust); the upstream's certificate is verified against the host's
//!   roots (`SSL_CERT_FILE` / the system store) for the same name. ALPN offers HTTP/1.1 only,
//!   so clients speak HTTP/1.1 through it.
//! - A request whose placeholder no longer resolves (the secret was deleted) is answered 502
//!   by the proxy and never sent upstream without its header.
//! - One upstream connection per guest connection; requests on it are forwarded in order.

use std::net::SocketAddrV4;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;

type Body = BoxBody<Bytes, hyper::Error>;

fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS settings towards upstreams: the host's trusted roots, HTTP/1.1.
fn upstream_tls() -> Result<Arc<rustls::ClientConfig>, String> {
    static CFG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CFG.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(format!("no trusted root certificates on this host ({:?})", found.errors.first()));
        }
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    })
    .clone()
}

/// Serves one intercepted guest connection (`peeked`: what was read to find its name).
pub async fn serve(
    guest: TcpStream,
    peeked: Vec<u8>,
    tls: bool,
    name: Option<String>,
    dst: SocketAddrV4,
    netns: &str,
    headers: Vec<(String, String)>,
    workload: super::identity::Workload,
) -> std::io::Result<()> {
    let (rd, wr) = tokio::io::split(guest);
    let guest = tokio::io::join(std::io::Cursor::new(peeked).chain(rd), wr);
    let upstream = super::egress::connect_from(netns, dst).await?;
    if !tls {
        return forward(guest, upstream, headers, workload).await;
    }
    let name = name.ok_or_else(|| io_err("a TLS connection to a host with rules must name it (SNI)"))?;
    let leaf = super::ca::get().and_then(|ca| ca.leaf(&name)).map_err(io_err)?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(io_err)?
        .with_no_client_auth()
        .with_single_cert(leaf.chain.clone(), leaf.key())
        .map_err(io_err)?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    let guest = tokio_rustls::TlsAcceptor::from(Arc::new(server)).accept(guest).await?;
    let server_name = rustls::pki_types::ServerName::try_from(name.clone()).map_err(io_err)?;
    let upstream = tokio_rustls::TlsConnector::from(upstream_tls().map_err(io_err)?).connect(server_name, upstream).await?;
    forward(guest, upstream, headers, workload).await
}

fn answer(status: StatusCode, message: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(message + "\n")).map_err(|never| match never {}).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain"));
    r
}

/// Applies `headers` (placeholders resolved now: secrets read, tokens minted) to a request;
/// `Err` says why it cannot go.
fn transform(req: &mut Request<Incoming>, headers: &[(String, String)], workload: &super::identity::Workload) -> Result<(), String> {
    let mint = |name: &str| super::identity::get().map_err(|e| format!("{e:#}"))?.mint(workload, name);
    for (name, template) in headers {
        let value = super::rules::resolve(template, &super::rules::lookup_secret, &mint)?;
        let name = hyper::header::HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
        let value = hyper::header::HeaderValue::from_str(&value).map_err(|e| e.to_string())?;
        req.headers_mut().insert(name, value);
    }
    Ok(())
}

/// HTTP/1.1 from the guest to the upstream, request by request.
async fn forward<G, U>(
    guest: G,
    upstream: U,
    headers: Vec<(String, String)>,
    workload: super::identity::Workload,
) -> std::io::Result<()>
where
    G: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    U: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake::<_, Incoming>(TokioIo::new(upstream)).await.map_err(io_err)?;
    let upstream_conn = tokio::spawn(conn);
    let sender = Arc::new(tokio::sync::Mutex::new(sender));
    let (headers, workload) = (Arc::new(headers), Arc::new(workload));
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let (sender, headers, workload) = (sender.clone(), headers.clone(), workload.clone());
        async move {
            if let Err(why) = transform(&mut req, &headers, &workload) {
                return Ok::<_, std::convert::Infallible>(answer(
                    StatusCode::BAD_GATEWAY,
                    format!("sandboxd egress proxy: cannot apply the network rule: {why}"),
                ));
            }
            let mut sender = sender.lock().await;
            Ok(match sender.send_request(req).await {
                Ok(resp) => resp.map(|b| b.boxed()),
                Err(e) => answer(StatusCode::BAD_GATEWAY, format!("sandboxd egress proxy: upstream: {e}")),
            })
        }
    });
    let served = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(guest), service).await;
    upstream_conn.abort();
    served.map_err(io_err)
}
