//! envd: the agent inside every sandbox. It speaks E2B's envd protocol (Connect
//! RPC with the JSON codec for `process.Process` and `filesystem.Filesystem`,
//! plus the `/files`, `/health`, `/init`, `/envs` and `/metrics` HTTP routes) so
//! the official E2B SDKs work against it unchanged.

mod auth;
mod connect;
mod files;
mod filesystem;
mod init;
mod metadata;
mod pid1;
mod process;
mod proto;
mod server;
mod state;
mod users;
mod volumes;
mod watch;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use clap::Parser;

/// The envd protocol version we report (`envdVersion`, `envd --version`).
///
/// The SDKs gate features on this number, so it must not promise more than we
/// serve. 0.6.4 is the highest version whose every gate in the official SDK
/// (Python 2.63.0, `e2b/envd/versions.py`) is implemented here:
/// - 0.1.4 recursive watch, 0.3.0 `stdin` on Start, 0.4.0 default user when
///   no `Authorization` is sent, 0.5.2 `CloseStdin`, 0.5.7 octet-stream (and
///   gzip) uploads;
/// - 0.6.2 file metadata (`X-Metadata-*` headers stored as `user.e2b.*` xattrs);
/// - 0.6.3 `entry` in filesystem watch events;
/// - 0.6.4 `allowNetworkMounts` (network filesystems are refused otherwise).
///
/// It is also at least 0.5.0, which the control plane requires for snapshots.
/// Not implemented, because no SDK call depends on it: the orchestrator-only
/// routes of upstream 0.6.x (`/freeze`, `/collapse`, `/fsfreeze`, `/upgrade`).
pub const ENVD_VERSION: &str = "0.6.4";

#[derive(Debug, Parser)]
#[command(
    name = "envd",
    about = "E2B-compatible sandbox agent",
    disable_version_flag = true
)]
struct Cli {
    /// Print the envd protocol version (just the number, like upstream `envd -version`) and exit.
    #[arg(long)]
    version: bool,
    /// TCP port to listen on (all interfaces).
    #[arg(long, env = "ENVD_PORT", default_value_t = 49983)]
    port: u16,
    /// Address to bind.
    #[arg(long, env = "ENVD_ADDR", default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    addr: IpAddr,
    /// Run as PID 1 of the VM: mount /proc, /sys, /dev, …, set the hostname, reap zombies.
    #[arg(long)]
    init: bool,
    /// User for requests that name none; falls back to root when it does not exist.
    #[arg(long, env = "ENVD_DEFAULT_USER", default_value = "user")]
    default_user: String,
    /// Account database to read users from (tests and chroots point it elsewhere).
    #[arg(long, env = "ENVD_PASSWD_FILE", default_value = "/etc/passwd")]
    passwd_file: std::path::PathBuf,
    /// Group database for supplementary groups and `EntryInfo.group`.
    #[arg(long, env = "ENVD_GROUP_FILE", default_value = "/etc/group")]
    group_file: std::path::PathBuf,
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `envd=debug`.
    #[arg(long, env = "ENVD_LOG", default_value = "info")]
    log: String,
    /// Log line format: `json` (one object per line, what sandboxd reads from the serial
    /// console into the sandbox's logs) or `text`. Default: json with `--init`, else text.
    #[arg(long, env = "ENVD_LOG_FORMAT", value_parser = ["json", "text"])]
    log_format: Option<String>,
}

fn main() -> anyhow::Result<()> {
    // Upstream's Go flag spelling, which build tooling runs to read the version.
    if std::env::args().nth(1).as_deref() == Some("-version") {
        println!("{ENVD_VERSION}");
        return Ok(());
    }
    let cli = Cli::parse();
    if cli.version {
        println!("{ENVD_VERSION}");
        return Ok(());
    }
    if cli.init {
        // Before the runtime exists: forking is only sound while single-threaded.
        pid1::become_init();
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "info".into());
    let json = cli.log_format.as_deref().map_or(cli.init, |f| f == "json");
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        // The console is a serial line: no colours, one JSON object per line.
        logs.json().with_ansi(false).with_current_span(false).init();
    } else {
        logs.init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let users = users::UserDb::new(cli.passwd_file, cli.group_file);
    let state = state::AppState::new(cli.default_user, users);
    runtime.block_on(server::serve(state, SocketAddr::new(cli.addr, cli.port)))
}
