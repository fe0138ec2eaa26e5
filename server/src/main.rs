//! The `sandboxd` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sandboxd::config::{self, Config};

#[derive(Parser)]
#[command(name = "sandboxd", version, about = "Self-hostable server speaking E2B's API; every sandbox is a QEMU microVM")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the REST API and the envd proxy in the foreground (logs via RUST_LOG).
    Serve(ServeArgs),
    /// Manage templates (the images sandboxes are restored from).
    Template {
        #[command(subcommand)]
        command: TemplateCommand,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on. Non-loopback addresses need --allow-remote.
    #[arg(long, env = "SANDBOXD_LISTEN", default_value = config::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Allow listening on a non-loopback address (anyone with the API key can run code).
    #[arg(long)]
    allow_remote: bool,
    #[command(flatten)]
    dirs: DirArgs,
    /// Maximum number of sandboxes running at once; more get 503 sandbox_capacity_unavailable.
    #[arg(long, env = "SANDBOXD_MAX_SANDBOXES", default_value_t = config::DEFAULT_MAX_SANDBOXES)]
    max_sandboxes: usize,
    /// Maximum sum of guest memory (MiB) of running sandboxes; more get 503
    /// sandbox_capacity_unavailable. [default: 90% of the host's MemAvailable at start]
    #[arg(long, env = "SANDBOXD_MAX_MEMORY_MB")]
    max_memory_mb: Option<u64>,
}

#[derive(clap::Args)]
struct DirArgs {
    /// Data directory: database, API key, snapshots, VM state.
    /// [default: $XDG_DATA_HOME/sandboxd or ~/.local/share/sandboxd]
    #[arg(long, env = "SANDBOXD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Directory of built templates (shareable between data directories).
    /// [default: <data-dir>/templates]
    #[arg(long, env = "SANDBOXD_TEMPLATES_DIR")]
    templates_dir: Option<PathBuf>,
}

impl DirArgs {
    fn resolve(self) -> (PathBuf, PathBuf) {
        let data = self.data_dir.unwrap_or_else(config::default_data_dir);
        let templates = self.templates_dir.unwrap_or_else(|| data.join("templates"));
        (data, templates)
    }
}

#[derive(Subcommand)]
enum TemplateCommand {
    /// Build a template image.
    Build {
        /// Template name (`base` is the default template: Debian with bash, coreutils and
        /// python3). Other names build the same image with another memory size, e.g.
        /// `sandboxd template build base-2g --memory-mb 2048`.
        #[arg(value_parser = template_name)]
        name: String,
        /// Guest memory of the template's sandboxes, in MiB (fixed at build time: sandboxes
        /// are restored from its memory image).
        #[arg(long, default_value_t = sandboxd::template::BASE_MEMORY_MB)]
        memory_mb: u32,
        /// Rebuild even if a built image is already cached.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        dirs: DirArgs,
    },
}

fn template_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok { Ok(s.to_string()) } else { Err("template names use a-z, 0-9 and '-' (at most 64)".into()) }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "sandboxd=info,warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve(args) => {
            if !args.listen.ip().is_loopback() {
                if !args.allow_remote {
                    anyhow::bail!("refusing to listen on non-loopback {} without --allow-remote", args.listen);
                }
                tracing::warn!(listen = %args.listen, "listening on a non-loopback address: anyone who can reach it and holds the API key can run code");
            }
            let (data_dir, templates_dir) = args.dirs.resolve();
            sandboxd::server::serve(Config {
                listen: args.listen,
                data_dir,
                templates_dir,
                max_sandboxes: args.max_sandboxes.max(1),
                max_memory_mb: args.max_memory_mb,
            }).await
        }
        Command::Template { command: TemplateCommand::Build { name, memory_mb, force, dirs } } => {
            let (_, templates_dir) = dirs.resolve();
            let dir = sandboxd::template::build(&templates_dir, &name, memory_mb, force).await?;
            println!("{}", dir.display());
            Ok(())
        }
    }
}
