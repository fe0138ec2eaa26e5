//! `e2b._native`: PyO3 glue over the `e2b` core crate. The Python package `e2b`
//! (bindings-python/python/e2b) builds E2B's public API (sync `Sandbox`, `AsyncSandbox`,
//! exceptions) on top of these classes. No HTTP or validation logic lives here.

mod commands;
mod config;
mod error;
mod files;
mod models;
mod op;
mod paginator;
mod sandbox;
mod snapshots;

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

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // One runtime for both paths: sync calls block on it, async calls are spawned on it.
    let _ = pyo3_async_runtimes::tokio::init_with_runtime(e2b::runtime());
    m.add_class::<op::Op>()?;
    m.add_class::<config::ConnectionOpts>()?;
    m.add_class::<sandbox::PySandbox>()?;
    m.add_class::<paginator::SandboxPaginator>()?;
    m.add_class::<paginator::SnapshotPaginator>()?;
    m.add_class::<commands::Commands>()?;
    m.add_class::<commands::CommandHandle>()?;
    m.add_class::<files::Files>()?;
    m.add_class::<models::SnapshotInfo>()?;
    m.add_class::<models::SandboxInfo>()?;
    m.add_class::<models::CommandResult>()?;
    m.add_class::<models::ProcessInfo>()?;
    m.add_class::<models::EntryInfo>()?;
    m.add_class::<models::WriteInfo>()?;
    m.add_function(wrap_pyfunction!(register_sandboxd_launcher, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
