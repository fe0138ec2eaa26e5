//! `sandboxd template build --file e2b.Dockerfile --name NAME`, `template list` and
//! `template delete NAME`: E2B's CLI commands, as a client of a running sandboxd's REST API
//! through the `e2b` core crate (the same code path as `Template.build` in our SDKs).
//!
//! Server and key, first match: `--api-url` / `--api-key` (or `E2B_API_URL` / `E2B_API_KEY`);
//! `--data-dir` (its `api_key`, at `SANDBOXD_URL` or the default address); otherwise the SDK's
//! embedded default (`SANDBOXD_URL`, the key in sandboxd's data dir, the server started from
//! this binary when none answers). The Dockerfile's directory is the build context.
//!
//! Logs stream as plain lines (`HH:MM:SS LEVEL message`) on stderr; on a terminal a spinner with
//! the elapsed time runs under them.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use e2b::template::{BuildOptions, LogEntry, LogEntryKind, LogLevel};

/// Where the server is and how to authenticate.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RemoteArgs {
    /// REST URL of the sandboxd (or E2B API) to talk to. [default: the SDK's embedded default,
    /// SANDBOXD_URL or http://127.0.0.1:49982]
    #[arg(long, env = "E2B_API_URL")]
    pub api_url: Option<String>,
    /// API key. [default: <data dir>/api_key of the local sandboxd]
    #[arg(long, env = "E2B_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

impl RemoteArgs {
    /// Connection options for the core; `data_dir`: read the key from there.
    pub fn connection(&self, data_dir: Option<&Path>) -> anyhow::Result<e2b::ConnectionOpts> {
        // A server the SDK's embedded default starts is this very binary.
        if let Ok(exe) = std::env::current_exe() {
            e2b::embedded::register_launcher(e2b::embedded::Launcher { program: exe, args: vec![] });
        }
        let mut o = e2b::ConnectionOpts { api_url: self.api_url.clone(), api_key: self.api_key.clone(), ..Default::default() };
        if o.api_key.is_none()
            && let Some(d) = data_dir
        {
            let key = std::fs::read_to_string(d.join("api_key"))
                .with_context(|| format!("reading the API key from {}", d.join("api_key").display()))?;
            o.api_key = Some(key.trim().to_string());
            if o.api_url.is_none() {
                o.api_url =
                    Some(std::env::var("SANDBOXD_URL").unwrap_or_else(|_| e2b::config::DEFAULT_SANDBOXD_URL.to_string()));
            }
        }
        if o.api_url.is_some() && o.api_key.is_none() {
            bail!("--api-url needs an API key: pass --api-key (E2B_API_KEY) or --data-dir");
        }
        Ok(o)
    }
}

/// What `template build --file/--name` was asked for.
pub struct RemoteBuild {
    pub file: PathBuf,
    pub name: String,
    pub tags: Vec<String>,
    pub cpu_count: Option<u32>,
    pub memory_mb: Option<u32>,
    pub skip_cache: bool,
}

fn level_label(l: LogLevel) -> &'static str {
    match l {
        LogLevel::Debug => "DEBUG",
        LogLevel::Info => "INFO ",
        LogLevel::Warn => "WARN ",
        LogLevel::Error => "ERROR",
    }
}

/// Plain log lines, plus a spinner on a terminal.
fn logger() -> (e2b::template::LogCallback, Option<indicatif::ProgressBar>) {
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_style(indicatif::ProgressStyle::with_template("{spinner} Building [{elapsed_precise}] {msg}").expect("template"));
        b.enable_steady_tick(Duration::from_millis(120));
        b
    });
    let b2 = bar.clone();
    let cb: e2b::template::LogCallback = Arc::new(move |e: LogEntry| {
        if e.kind != LogEntryKind::Entry || e.level == LogLevel::Debug {
            return;
        }
        let line = format!(
            "{} {} {}",
            e.timestamp.with_timezone(&chrono::Local).format("%H:%M:%S"),
            level_label(e.level),
            e.message
        );
        match &b2 {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    });
    (cb, bar)
}

pub async fn build(req: RemoteBuild, conn: e2b::ConnectionOpts) -> anyhow::Result<()> {
    let file = std::path::absolute(&req.file).with_context(|| format!("resolving {}", req.file.display()))?;
    if !file.is_file() {
        bail!("{}: no such Dockerfile", file.display());
    }
    let context = file.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let mut t = e2b::Template::new(&context, vec![]);
    let content = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    t.from_dockerfile(&content)?;
    let opts = BuildOptions {
        name: req.name.clone(),
        tags: req.tags,
        cpu_count: req.cpu_count,
        memory_mb: req.memory_mb,
        min_free_disk_mb: None,
        skip_cache: req.skip_cache,
    };
    let (cb, bar) = logger();
    let started = std::time::Instant::now();
    let r = e2b::template::build::build(&t, &opts, Some(cb), &conn).await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let info = r.with_context(|| format!("building template {}", req.name))?;
    eprintln!(
        "Built {} in {:.1} s (template {}, build {})",
        req.name,
        started.elapsed().as_secs_f64(),
        info.template_id,
        info.build_id
    );
    println!("{}", info.template_id);
    Ok(())
}

fn field<'a>(v: &'a serde_json::Value, k: &str) -> &'a serde_json::Value {
    v.get(k).unwrap_or(&serde_json::Value::Null)
}

pub async fn list(conn: e2b::ConnectionOpts) -> anyhow::Result<()> {
    let items = e2b::template::build::list(&conn).await?;
    println!("{:<24} {:<32} {:>4} {:>7} {:<10} CREATED", "TEMPLATE ID", "NAMES", "CPU", "MEM MB", "STATUS");
    for t in items {
        let names = field(&t, "names")
            .as_array()
            .filter(|a| !a.is_empty())
            .or_else(|| field(&t, "aliases").as_array())
            .map(|a| a.iter().filter_map(|s| s.as_str()).collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        let num = |k: &str| field(&t, k).as_u64().map(|n| n.to_string()).unwrap_or_else(|| "-".into());
        println!(
            "{:<24} {:<32} {:>4} {:>7} {:<10} {}",
            field(&t, "templateID").as_str().unwrap_or("-"),
            if names.is_empty() { "-".into() } else { names },
            num("cpuCount"),
            num("memoryMB"),
            field(&t, "buildStatus").as_str().unwrap_or("-"),
            field(&t, "createdAt").as_str().unwrap_or("-"),
        );
    }
    Ok(())
}

pub async fn delete(name: &str, conn: e2b::ConnectionOpts) -> anyhow::Result<()> {
    if !e2b::template::build::delete(name, &conn).await? {
        bail!("template {name} not found");
    }
    eprintln!("Deleted template {name}");
    Ok(())
}
