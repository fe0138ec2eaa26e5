//! The domain half of egress filtering: a small TCP proxy per sandbox namespace that lets a
//! guest's HTTP (port 80) or TLS (port 443) connection through when its `Host` header / SNI
//! matches an allowed domain, like E2B's egress firewall.
//!
//! The namespace's nftables rules ([`super::firewall`]) redirect the guest's otherwise-denied
//! TCP to ports 80/443 to [`HTTP_PROXY_PORT`]/[`TLS_PROXY_PORT`] on the namespace's loopback,
//! where this proxy listens (its sockets are created on a thread that entered the namespace).
//! It reads the first bytes, matches the name, and connects to the connection's original
//! destination (`SO_ORIGINAL_DST`) from inside the namespace with [`PROXY_MARK`], which the
//! rules let through; the host's global rules still drop private ranges.
//!
//! Difference from E2B: E2B dials the *name* (resolved by the host) so a guest cannot pair an
//! allowed name with an arbitrary address; sandboxd keeps the address the guest connected to,
//! so a guest that controls its DNS can reach any public address on 80/443 by announcing an
//! allowed name. This keeps sandboxd free of DNS resolution (and testable without it).
//!
//! Invariants: one proxy per namespace, replaced rules take effect for new connections at
//! once (shared `RwLock`), and [`remove`] (called when a namespace is deleted) stops it.

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::Egress;
use super::firewall::{HTTP_PROXY_PORT, PROXY_MARK, TLS_PROXY_PORT};
use super::sni::{self, Peek};

/// How long a guest may take to send its request line / ClientHello.
const PEEK_TIMEOUT: Duration = Duration::from_secs(10);
const PEEK_MAX: usize = 16 << 10;

struct Running {
    rules: Arc<RwLock<Egress>>,
    tasks: Vec<tokio::task::AbortHandle>,
}

fn registry() -> &'static Mutex<HashMap<String, Running>> {
    static R: OnceLock<Mutex<HashMap<String, Running>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// Runs `f` on a thread that entered network namespace `netns` (sockets created there stay
/// in it); the calling thread's namespace is untouched.
fn in_netns<T: Send + 'static>(
    netns: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    let path = format!("/run/netns/{netns}");
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path)?;
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
        f()
    })
    .join()
    .map_err(|_| std::io::Error::other("namespace thread panicked"))?
}

/// Starts, updates or stops (no domains) the proxy of namespace `netns`. Needs a Tokio runtime.
pub fn install(netns: &str, egress: &Egress) -> Result<(), String> {
    let mut reg = registry().lock().unwrap_or_else(|p| p.into_inner());
    if !egress.needs_proxy() {
        if let Some(old) = reg.remove(netns) {
            old.tasks.iter().for_each(|t| t.abort());
        }
        return Ok(());
    }
    if let Some(running) = reg.get(netns) {
        *running.rules.write().unwrap_or_else(|p| p.into_inner()) = egress.clone();
        return Ok(());
    }
    let rules = Arc::new(RwLock::new(egress.clone()));
    let mut tasks = Vec::new();
    for (port, tls) in [(HTTP_PROXY_PORT, false), (TLS_PROXY_PORT, true)] {
        let listener = in_netns(netns, move || {
            let l = std::net::TcpListener::bind(("127.0.0.1", port))?;
            l.set_nonblocking(true)?;
            Ok(l)
        })
        .and_then(TcpListener::from_std)
        .map_err(|e| format!("domain proxy in {netns}: {e}"))?;
        let (ns, rules) = (netns.to_string(), rules.clone());
        tasks.push(tokio::spawn(serve(listener, tls, ns, rules)).abort_handle());
    }
    reg.insert(netns.to_string(), Running { rules, tasks });
    Ok(())
}

/// Stops the proxy of a namespace that is going away. Idempotent.
pub fn remove(netns: &str) {
    if let Some(old) = registry().lock().unwrap_or_else(|p| p.into_inner()).remove(netns) {
        old.tasks.iter().for_each(|t| t.abort());
    }
}

async fn serve(listener: TcpListener, tls: bool, netns: String, rules: Arc<RwLock<Egress>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let (netns, rules) = (netns.clone(), rules.clone());
        tokio::spawn(async move {
            if let Err(e) = relay(stream, tls, &netns, &rules).await {
                tracing::debug!(netns = %netns, "egress proxy: {e}");
            }
        });
    }
}

async fn relay(mut guest: TcpStream, tls: bool, netns: &str, rules: &RwLock<Egress>) -> std::io::Result<()> {
    let dst = socket2::SockRef::from(&guest)
        .original_dst_v4()?
        .as_socket_ipv4()
        .ok_or_else(|| std::io::Error::other("no IPv4 original destination"))?;
    // Reached directly (slirp maps the guest's 10.0.2.2 to this loopback), not redirected.
    if dst.ip().is_loopback() {
        return Err(std::io::Error::other("not a redirected connection"));
    }
    let mut buf = Vec::with_capacity(2048);
    let name = tokio::time::timeout(PEEK_TIMEOUT, async {
        loop {
            let mut chunk = [0u8; 2048];
            let n = guest.read(&mut chunk).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(None);
            }
            buf.extend_from_slice(&chunk[..n]);
            let peek = if tls { sni::tls_sni(&buf) } else { sni::http_host(&buf) };
            match peek {
                Peek::Name(name) => return Ok(name),
                Peek::More if buf.len() >= PEEK_MAX => return Ok(None),
                Peek::More => {}
            }
        }
    })
    .await
    .map_err(|_| std::io::Error::other("no request in time"))??;
    let (allowed, headers, workload) = {
        let e = rules.read().unwrap_or_else(|p| p.into_inner());
        let headers = super::rules::headers_for(&e.rules, name.as_deref(), *dst.ip());
        (e.allows(name.as_deref(), *dst.ip()), headers, e.workload.clone())
    };
    if !allowed {
        // E2B closes a denied connection without an answer.
        return Err(std::io::Error::other(format!("denied {name:?} to {dst}")));
    }
    if !headers.is_empty() {
        return super::intercept::serve(guest, buf, tls, name, dst, netns, headers, workload).await;
    }
    let mut upstream = connect_from(netns, dst).await?;
    upstream.write_all(&buf).await?;
    tokio::io::copy_bidirectional(&mut guest, &mut upstream).await?;
    Ok(())
}

/// Connects to `dst` from inside `netns`, marked so the namespace's rules let it pass.
pub(super) async fn connect_from(netns: &str, dst: SocketAddrV4) -> std::io::Result<TcpStream> {
    let std_stream = in_netns(netns, || {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        s.set_mark(PROXY_MARK)?;
        s.set_nonblocking(true)?;
        Ok(std::net::TcpStream::from(s))
    })?;
    let socket = tokio::net::TcpSocket::from_std_stream(std_stream);
    tokio::time::timeout(Duration::from_secs(30), socket.connect(SocketAddr::V4(dst)))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))?
}
