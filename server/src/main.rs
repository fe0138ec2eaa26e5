//! The `sandboxd` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sandboxd::config::{self, Config};

mod template_cli;

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
    /// Base domain of sandbox URLs, returned as `Sandbox.domain`: the SDKs then reach port P
    /// of a sandbox at `https://P-<sandboxID>.<domain>` (needs wildcard DNS and TLS in front
    /// of sandboxd, see docs/e2b-features.md). Unset: the SDK's E2B_DOMAIN decides.
    #[arg(long, env = "SANDBOXD_DOMAIN")]
    domain: Option<String>,
    /// Database: a PostgreSQL URL (postgres://user[:password]@host[:port]/dbname, also
    /// postgresql://), which several sandboxd nodes may share.
    /// [default: SQLite at <data-dir>/sandboxd.db]
    #[arg(long, env = "SANDBOXD_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database: Option<String>,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Cluster mode (docs/cluster.md): all three together, with a PostgreSQL --database.
#[derive(clap::Args)]
struct ClusterArgs {
    /// S3-compatible object storage for images, s3://bucket[/prefix]; endpoint and credentials
    /// from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION.
    #[arg(long, env = "SANDBOXD_OBJECT_STORE", value_name = "URL")]
    object_store: Option<String>,
    /// This node's unique name in the cluster. [default: the host name]
    #[arg(long, env = "SANDBOXD_NODE_ID")]
    node_id: Option<String>,
    /// Where the other nodes reach this node's API. [default: http://<listen>]
    #[arg(long, env = "SANDBOXD_ADVERTISE_URL", value_name = "URL")]
    advertise_url: Option<String>,
}

impl ClusterArgs {
    /// `None` on a single machine; an error for half a cluster configuration.
    fn resolve(self, database: Option<&str>, listen: SocketAddr) -> anyhow::Result<Option<sandboxd::cluster::ClusterConfig>> {
        let Some(object_store) = self.object_store else {
            if self.node_id.is_some() || self.advertise_url.is_some() {
                anyhow::bail!("--node-id and --advertise-url need --object-store (cluster mode, see docs/cluster.md)");
            }
            return Ok(None);
        };
        if database.is_none() {
            anyhow::bail!("--object-store (cluster mode) needs a shared PostgreSQL --database");
        }
        let node_id = match self.node_id {
            Some(id) => id,
            None => nix::unistd::gethostname()?.to_string_lossy().into_owned(),
        };
        let advertise_url = self.advertise_url.unwrap_or_else(|| format!("http://{listen}"));
        Ok(Some(sandboxd::cluster::ClusterConfig { node_id, advertise_url, object_store }))
    }
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
    /// Build a template: a local base image (NAME), or an e2b.Dockerfile on a running sandboxd (--name).
    ///
    /// `sandboxd template build NAME [--memory-mb N] [--force]` builds a local base image
    /// (Debian with envd) into the templates directory, without a server.
    ///
    /// `sandboxd template build --file e2b.Dockerfile --name NAME [--cpu-count N] [--memory-mb N]
    /// [--tag T]... [--skip-cache]` builds an E2B template from a Dockerfile on a running sandboxd
    /// (E2B's CLI form; the Dockerfile's directory is the build context), streaming its logs.
    #[command(verbatim_doc_comment)]
    Build {
        /// Local form: the base image's name (`base` is the default template: Debian with bash,
        /// coreutils and python3). Other names build the same image with another memory size,
        /// e.g. `sandboxd template build base-2g --memory-mb 2048`.
        #[arg(value_parser = template_name, conflicts_with_all = ["file", "build_name"], required_unless_present_any = ["file", "build_name"])]
        name: Option<String>,
        /// Server form: the Dockerfile to build. [default: ./e2b.Dockerfile]
        #[arg(long, short = 'f')]
        file: Option<PathBuf>,
        /// Server form: the template's name (`name` or `name:tag`).
        #[arg(long = "name", id = "build_name", value_name = "NAME")]
        build_name: Option<String>,
        /// Server form: more tags for the build (repeatable).
        #[arg(long = "tag", conflicts_with = "name")]
        tags: Vec<String>,
        /// vCPUs of the template's sandboxes (server form, or the local form with --from-image).
        #[arg(long)]
        cpu_count: Option<u32>,
        /// Guest memory of the template's sandboxes, in MiB (fixed at build time: sandboxes
        /// are restored from its memory image). [local default: 512]
        #[arg(long)]
        memory_mb: Option<u32>,
        /// Server form: rebuild every step, ignoring the layer cache.
        #[arg(long, conflicts_with = "name")]
        skip_cache: bool,
        /// Local form: rebuild even if a built image is already cached.
        #[arg(long, conflicts_with = "build_name")]
        force: bool,
        /// Build the template from an OCI image instead of the Debian base: a Docker-style
        /// reference (`ubuntu:22.04`, `e2bdev/base`, `host:port/name:tag`, `name@sha256:...`),
        /// pulled without a Docker daemon. Docker Hub references go to
        /// SANDBOXD_REGISTRY_MIRROR when it is set; loopback registries and those in
        /// SANDBOXD_INSECURE_REGISTRIES are spoken to over plain HTTP.
        #[arg(long, value_name = "REF", conflicts_with = "build_name")]
        from_image: Option<String>,
        /// Registry user name for --from-image (the password comes from
        /// SANDBOXD_REGISTRY_PASSWORD, never the command line).
        #[arg(long, env = "SANDBOXD_REGISTRY_USERNAME", requires = "from_image")]
        registry_username: Option<String>,
        #[command(flatten)]
        dirs: DirArgs,
        #[command(flatten)]
        remote: template_cli::RemoteArgs,
    },
    /// List the templates of a running sandboxd.
    List {
        #[command(flatten)]
        dirs: DirArgs,
        #[command(flatten)]
        remote: template_cli::RemoteArgs,
    },
    /// Delete a template (by name or ID) from a running sandboxd.
    Delete {
        /// Template name or ID.
        name: String,
        #[command(flatten)]
        dirs: DirArgs,
        #[command(flatten)]
        remote: template_cli::RemoteArgs,
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
            sandboxd::vm::check_restore_ram().map_err(anyhow::Error::msg)?;
            sandboxd::vm::check_spare_vms().map_err(anyhow::Error::msg)?;
            if let Some(url) = &args.database {
                sandboxd::store::check_database_url(url)?;
            }
            let (data_dir, templates_dir) = args.dirs.resolve();
            let cluster = args.cluster.resolve(args.database.as_deref(), args.listen)?;
            sandboxd::server::serve(Config {
                listen: args.listen,
                data_dir,
                templates_dir,
                max_sandboxes: args.max_sandboxes.max(1),
                max_memory_mb: args.max_memory_mb,
                domain: args.domain,
                telemetry: sandboxd::telemetry::Settings::from_env()?,
                pool: sandboxd::manager::PoolSettings::from_env()?,
                database: args.database,
                cluster,
            }).await
        }
        Command::Template { command } => template(command).await,
    }
}

async fn template(command: TemplateCommand) -> anyhow::Result<()> {
    match command {
        TemplateCommand::Build { name: Some(name), memory_mb, force, from_image, cpu_count, registry_username, dirs, .. } => {
            let (_, templates_dir) = dirs.resolve();
            let memory_mb = memory_mb.unwrap_or(sandboxd::template::BASE_MEMORY_MB);
            let dir = match from_image {
                Some(reference) => {
                    if name == "base" {
                        anyhow::bail!("'base' is the Debian template; give the image template another name");
                    }
                    let auth = match (registry_username, std::env::var("SANDBOXD_REGISTRY_PASSWORD").ok()) {
                        (Some(username), Some(password)) => Some(sandboxd::template::oci::RegistryAuth { username, password }),
                        (None, None) => None,
                        _ => anyhow::bail!("registry credentials need both --registry-username and SANDBOXD_REGISTRY_PASSWORD"),
                    };
                    let vcpus = cpu_count.unwrap_or(sandboxd::template::BASE_VCPUS);
                    sandboxd::template::oci::build_named(&templates_dir, &name, &reference, auth.as_ref(), memory_mb, vcpus, force)
                        .await?
                }
                None => {
                    if cpu_count.is_some() {
                        anyhow::bail!("--cpu-count applies to --from-image and to the --file form; the Debian base has {} vCPU", sandboxd::template::BASE_VCPUS);
                    }
                    sandboxd::template::build(&templates_dir, &name, memory_mb, force).await?
                }
            };
            println!("{}", dir.display());
            Ok(())
        }
        TemplateCommand::Build { name: None, file, build_name, tags, cpu_count, memory_mb, skip_cache, dirs, remote, .. } => {
            let Some(build_name) = build_name else { anyhow::bail!("--file needs --name NAME") };
            let conn = remote.connection(dirs.data_dir.as_deref())?;
            let req = template_cli::RemoteBuild {
                file: file.unwrap_or_else(|| PathBuf::from("e2b.Dockerfile")),
                name: build_name,
                tags,
                cpu_count,
                memory_mb,
                skip_cache,
            };
            template_cli::build(req, conn).await
        }
        TemplateCommand::List { dirs, remote } => template_cli::list(remote.connection(dirs.data_dir.as_deref())?).await,
        TemplateCommand::Delete { name, dirs, remote } => {
            template_cli::delete(&name, remote.connection(dirs.data_dir.as_deref())?).await
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::{Cli, Command, TemplateCommand};

    fn parse(args: &[&str]) -> Result<TemplateCommand, clap::Error> {
        let mut v = vec!["sandboxd", "template"];
        v.extend_from_slice(args);
        match Cli::try_parse_from(v)?.command {
            Command::Template { command } => Ok(command),
            _ => unreachable!(),
        }
    }

    #[test]
    fn template_build_has_two_clear_forms() {
        Cli::command().debug_assert();
        assert!(matches!(parse(&["build", "base"]), Ok(TemplateCommand::Build { name: Some(n), .. }) if n == "base"));
        let remote = parse(&["build", "--file", "e2b.Dockerfile", "--name", "app", "--tag", "v1", "--cpu-count", "2"]);
        assert!(matches!(remote, Ok(TemplateCommand::Build { name: None, build_name: Some(n), cpu_count: Some(2), .. }) if n == "app"));
        assert!(parse(&["build"]).is_err(), "a form must be chosen");
        assert!(parse(&["build", "base", "--name", "app"]).is_err(), "the forms do not mix");
        assert!(parse(&["build", "--name", "app", "--force"]).is_err(), "--force is the local form's");
        assert!(parse(&["build", "base", "--skip-cache"]).is_err(), "--skip-cache is the server form's");
        assert!(matches!(parse(&["delete", "app"]), Ok(TemplateCommand::Delete { .. })));
        assert!(matches!(parse(&["list"]), Ok(TemplateCommand::List { .. })));
    }
}
