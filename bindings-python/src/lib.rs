//! `e2b._native`: PyO3 glue over the `e2b` core crate. The Python package `e2b`
//! (bindings-python/python/e2b) builds E2B's public API (sync `Sandbox`, `AsyncSandbox`,
//! exceptions) on top of these classes. No HTTP or validation logic lives here.

mod commands;
mod config;
mod error;
mod files;
mod git;
mod models;
mod op;
mod paginator;
mod pty;
mod sandbox;
mod secret;
mod snapshots;
mod template;
mod volume;
mod watch;

use pyo3::prelude::*;

/// Offer a sandboxd launcher to the embedded default (e.g. a binary shipped in the package).
#[pyfunction]
#[pyo3(signature = (program, args=None))]
fn register_sandboxd_launcher(program: String, args: Option<Vec<String>>) {
    e2b::embedded::register_launcher(e2b::embedded::Launcher {
        program: program.into(),
        args: args.unwrap_or_default(),
    });
}

/// E2B's v1 file-URL signature and its expiration (Unix seconds), from the core.
#[pyfunction]
#[pyo3(signature = (path, operation, user, token, expiration_in_seconds=None))]
fn file_signature(
    py: Python<'_>,
    path: &str,
    operation: &str,
    user: Option<&str>,
    token: Option<&str>,
    expiration_in_seconds: Option<i64>,
) -> PyResult<(String, Option<i64>)> {
    e2b::file_urls::get_signature(path, operation, user, token, expiration_in_seconds).map_err(|e| error::to_py(py, e))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // One runtime for both paths: sync calls block on it, async calls are spawned on it.
    let _ = pyo3_async_runtimes::tokio::init_with_runtime(e2b::runtime());
    m.add_class::<op::Op>()?;
    m.add_class::<config::ConnectionOpts>()?;
    m.add_class::<config::ConnectionConfig>()?;
    m.add_class::<sandbox::PySandbox>()?;
    m.add_class::<paginator::SandboxPaginator>()?;
    m.add_class::<paginator::SnapshotPaginator>()?;
    m.add_class::<commands::Commands>()?;
    m.add_class::<commands::CommandHandle>()?;
    m.add_class::<commands::InputStream>()?;
    m.add_class::<files::Files>()?;
    m.add_class::<git::Git>()?;
    m.add_class::<pty::Pty>()?;
    m.add_class::<watch::FilesystemEvent>()?;
    m.add_class::<watch::WatchHandle>()?;
    m.add_class::<watch::PollingWatcher>()?;
    m.add_class::<models::SnapshotInfo>()?;
    m.add_class::<models::SandboxInfo>()?;
    m.add_class::<models::CommandResult>()?;
    m.add_class::<models::ProcessInfo>()?;
    m.add_class::<models::EntryInfo>()?;
    m.add_class::<models::WriteInfo>()?;
    m.add_class::<template::TemplateCore>()?;
    m.add_function(wrap_pyfunction!(template::wait_for_port, m)?)?;
    m.add_function(wrap_pyfunction!(template::wait_for_url, m)?)?;
    m.add_function(wrap_pyfunction!(template::wait_for_process, m)?)?;
    m.add_function(wrap_pyfunction!(template::wait_for_file, m)?)?;
    m.add_function(wrap_pyfunction!(template::wait_for_timeout, m)?)?;
    m.add_function(wrap_pyfunction!(template::strip_ansi, m)?)?;
    m.add_function(wrap_pyfunction!(register_sandboxd_launcher, m)?)?;
    m.add_function(wrap_pyfunction!(sandbox::unsupported_option, m)?)?;
    m.add_function(wrap_pyfunction!(file_signature, m)?)?;
    secret::register(m)?;
    volume::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
