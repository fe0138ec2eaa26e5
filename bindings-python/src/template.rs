//! `TemplateCore`: the core's `Template` (step recording, Dockerfile parsing, hashing) and the
//! template build API for `e2b.Template` / `e2b.AsyncTemplate`. Values cross as plain tuples
//! and dicts; the Python package wraps them in E2B's dataclasses.

use std::sync::Arc;

use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::config::ConnectionOpts;
use crate::error::to_py;
use crate::op::Op;

#[pyclass(module = "e2b._native")]
#[derive(Clone)]
pub struct TemplateCore(pub e2b::Template);

fn err(py: Python<'_>, r: e2b::Result<()>) -> PyResult<()> {
    r.map_err(|e| to_py(py, e))
}

#[pymethods]
#[allow(clippy::wrong_self_convention)]
impl TemplateCore {
    #[new]
    #[pyo3(signature = (file_context_path, file_ignore_patterns=None))]
    fn new(file_context_path: String, file_ignore_patterns: Option<Vec<String>>) -> Self {
        TemplateCore(e2b::Template::new(file_context_path, file_ignore_patterns.unwrap_or_default()))
    }

    fn clone_core(&self) -> Self {
        self.clone()
    }

    fn skip_cache(&mut self) {
        self.0.skip_cache();
    }

    #[pyo3(signature = (image, username=None, password=None))]
    fn from_image(&mut self, py: Python<'_>, image: &str, username: Option<&str>, password: Option<&str>) -> PyResult<()> {
        err(py, self.0.from_image(image, username, password))
    }

    fn from_template(&mut self, template: &str) {
        self.0.from_template(template);
    }

    fn from_aws_registry(&mut self, image: &str, access_key_id: &str, secret_access_key: &str, region: &str) {
        self.0.from_aws_registry(image, access_key_id, secret_access_key, region);
    }

    /// `service_account_json`: a path (str) or the JSON text of an object (`is_object`).
    fn from_gcp_registry(&mut self, py: Python<'_>, image: &str, service_account_json: &str, is_object: bool) -> PyResult<()> {
        let v = if is_object {
            serde_json::from_str(service_account_json).unwrap_or(serde_json::Value::Null)
        } else {
            serde_json::Value::String(service_account_json.into())
        };
        err(py, self.0.from_gcp_registry(image, &v))
    }

    fn from_dockerfile(&mut self, py: Python<'_>, content_or_path: &str) -> PyResult<()> {
        err(py, self.0.from_dockerfile(content_or_path))
    }

    #[pyo3(signature = (srcs, dest, force_upload=None, user=None, mode=None, resolve_symlinks=None, gzip=None))]
    #[allow(clippy::too_many_arguments)]
    fn copy(
        &mut self,
        py: Python<'_>,
        srcs: Vec<String>,
        dest: &str,
        force_upload: Option<bool>,
        user: Option<&str>,
        mode: Option<u32>,
        resolve_symlinks: Option<bool>,
        gzip: Option<bool>,
    ) -> PyResult<()> {
        err(py, self.0.copy(&srcs, dest, force_upload, user, mode, resolve_symlinks, gzip))
    }

    #[pyo3(signature = (commands, user=None))]
    fn run_cmd(&mut self, commands: Vec<String>, user: Option<&str>) {
        self.0.run_cmd(&commands, user);
    }

    #[pyo3(signature = (paths, force, recursive, user=None))]
    fn remove(&mut self, paths: Vec<String>, force: bool, recursive: bool, user: Option<&str>) {
        self.0.remove(&paths, force, recursive, user);
    }

    #[pyo3(signature = (src, dest, force, user=None))]
    fn rename(&mut self, src: &str, dest: &str, force: bool, user: Option<&str>) {
        self.0.rename(src, dest, force, user);
    }

    #[pyo3(signature = (paths, mode=None, user=None))]
    fn make_dir(&mut self, paths: Vec<String>, mode: Option<u32>, user: Option<&str>) {
        self.0.make_dir(&paths, mode, user);
    }

    #[pyo3(signature = (src, dest, user=None, force=false))]
    fn make_symlink(&mut self, src: &str, dest: &str, user: Option<&str>, force: bool) {
        self.0.make_symlink(src, dest, user, force);
    }

    fn set_workdir(&mut self, workdir: &str) {
        self.0.set_workdir(workdir);
    }

    fn set_user(&mut self, user: &str) {
        self.0.set_user(user);
    }

    #[pyo3(signature = (packages, g))]
    fn pip_install(&mut self, packages: Option<Vec<String>>, g: bool) {
        self.0.pip_install(packages.as_deref(), g);
    }

    #[pyo3(signature = (packages, g, dev))]
    fn npm_install(&mut self, packages: Option<Vec<String>>, g: bool, dev: bool) {
        self.0.npm_install(packages.as_deref(), g, dev);
    }

    #[pyo3(signature = (packages, g, dev))]
    fn bun_install(&mut self, packages: Option<Vec<String>>, g: bool, dev: bool) {
        self.0.bun_install(packages.as_deref(), g, dev);
    }

    fn apt_install(&mut self, packages: Vec<String>, no_install_recommends: bool, fix_missing: bool) {
        self.0.apt_install(&packages, no_install_recommends, fix_missing);
    }

    fn add_mcp_server(&mut self, py: Python<'_>, servers: Vec<String>) -> PyResult<()> {
        err(py, self.0.add_mcp_server(&servers))
    }

    #[pyo3(signature = (url, path=None, branch=None, depth=None, user=None))]
    fn git_clone(&mut self, url: &str, path: Option<&str>, branch: Option<&str>, depth: Option<u32>, user: Option<&str>) {
        self.0.git_clone(url, path, branch, depth, user);
    }

    fn beta_dev_container_prebuild(&mut self, py: Python<'_>, dir: &str) -> PyResult<()> {
        err(py, self.0.beta_dev_container_prebuild(dir))
    }

    fn beta_set_dev_container_start(&mut self, py: Python<'_>, dir: &str) -> PyResult<()> {
        err(py, self.0.beta_set_dev_container_start(dir))
    }

    fn set_envs(&mut self, envs: Vec<(String, String)>) {
        self.0.set_envs(&envs);
    }

    fn set_start_cmd(&mut self, start_cmd: &str, ready_cmd: &str) {
        self.0.set_start_cmd(start_cmd, ready_cmd);
    }

    fn set_ready_cmd(&mut self, ready_cmd: &str) {
        self.0.set_ready_cmd(ready_cmd);
    }

    fn base_template(&self) -> Option<String> {
        self.0.base_template().map(str::to_owned)
    }

    fn to_json(&self, py: Python<'_>) -> PyResult<String> {
        self.0.to_json().map_err(|e| to_py(py, e))
    }

    fn to_dockerfile(&self, py: Python<'_>) -> PyResult<String> {
        self.0.to_dockerfile().map_err(|e| to_py(py, e))
    }

    /// `Template.build` (`wait=True`) or `build_in_background`; resolves to a dict of BuildInfo.
    #[staticmethod]
    #[pyo3(signature = (template, name, tags, cpu_count, memory_mb, min_free_disk_mb, skip_cache, on_build_logs, opts, wait))]
    #[allow(clippy::too_many_arguments)]
    fn build(
        template: &TemplateCore,
        name: String,
        tags: Option<Vec<String>>,
        cpu_count: Option<u32>,
        memory_mb: Option<u32>,
        min_free_disk_mb: Option<u32>,
        skip_cache: bool,
        on_build_logs: Option<Py<PyAny>>,
        opts: Option<&ConnectionOpts>,
        wait: bool,
    ) -> Op {
        let t = template.0.clone();
        let o = crate::config::opts(opts);
        let b = e2b::template::BuildOptions {
            name,
            tags: tags.unwrap_or_default(),
            cpu_count,
            memory_mb,
            min_free_disk_mb,
            skip_cache,
        };
        let cb = on_build_logs.map(log_callback);
        Op::map(
            async move {
                if wait {
                    e2b::template::build::build(&t, &b, cb, &o).await
                } else {
                    e2b::template::build::build_in_background(&t, &b, cb, &o).await
                }
            },
            build_info,
        )
    }

    #[staticmethod]
    #[pyo3(signature = (template_id, build_id, logs_offset=None, opts=None))]
    fn get_build_status(template_id: String, build_id: String, logs_offset: Option<u64>, opts: Option<&ConnectionOpts>) -> Op {
        let o = crate::config::opts(opts);
        Op::map(
            async move { e2b::template::build::get_build_status(&template_id, &build_id, logs_offset, &o).await },
            |py, s| {
                let d = PyDict::new(py);
                d.set_item("build_id", s.build_id)?;
                d.set_item("template_id", s.template_id)?;
                d.set_item("status", s.status.as_str())?;
                d.set_item("log_entries", entries(py, s.log_entries)?)?;
                d.set_item("logs", s.logs)?;
                match s.reason {
                    Some(r) => {
                        let rd = PyDict::new(py);
                        rd.set_item("message", r.message)?;
                        rd.set_item("step", r.step)?;
                        rd.set_item("log_entries", entries(py, r.log_entries)?)?;
                        d.set_item("reason", rd)?;
                    }
                    None => d.set_item("reason", py.None())?,
                }
                d.into_py_any(py)
            },
        )
    }

    #[staticmethod]
    #[pyo3(signature = (name, opts=None))]
    fn exists(name: String, opts: Option<&ConnectionOpts>) -> Op {
        let o = crate::config::opts(opts);
        Op::new(async move { e2b::template::build::exists(&name, &o).await })
    }

    #[staticmethod]
    #[pyo3(signature = (target_name, tags, opts=None))]
    fn assign_tags(target_name: String, tags: Vec<String>, opts: Option<&ConnectionOpts>) -> Op {
        let o = crate::config::opts(opts);
        Op::map(async move { e2b::template::build::assign_tags(&target_name, &tags, &o).await }, |py, t| {
            (t.build_id, t.tags).into_py_any(py)
        })
    }

    #[staticmethod]
    #[pyo3(signature = (name, tags, opts=None))]
    fn remove_tags(name: String, tags: Vec<String>, opts: Option<&ConnectionOpts>) -> Op {
        let o = crate::config::opts(opts);
        Op::new(async move { e2b::template::build::remove_tags(&name, &tags, &o).await })
    }

    #[staticmethod]
    #[pyo3(signature = (template_id, opts=None))]
    fn get_tags(template_id: String, opts: Option<&ConnectionOpts>) -> Op {
        let o = crate::config::opts(opts);
        Op::map(async move { e2b::template::build::get_tags(&template_id, &o).await }, |py, tags| {
            tags.into_iter().map(|t| (t.tag, t.build_id, t.created_at)).collect::<Vec<_>>().into_py_any(py)
        })
    }
}

type EntryTuple = (String, chrono::DateTime<chrono::Utc>, &'static str, String);

fn entry(e: e2b::template::LogEntry) -> EntryTuple {
    let kind = match e.kind {
        e2b::template::LogEntryKind::Entry => "entry",
        e2b::template::LogEntryKind::Start => "start",
        e2b::template::LogEntryKind::End => "end",
    };
    (kind.to_string(), e.timestamp, e.level.as_str(), e.message)
}

fn entries(py: Python<'_>, v: Vec<e2b::template::LogEntry>) -> PyResult<Py<PyAny>> {
    v.into_iter().map(entry).collect::<Vec<_>>().into_py_any(py)
}

fn build_info(py: Python<'_>, i: e2b::template::BuildInfo) -> PyResult<Py<PyAny>> {
    let d = PyDict::new(py);
    d.set_item("template_id", i.template_id)?;
    d.set_item("build_id", i.build_id)?;
    d.set_item("name", i.name)?;
    d.set_item("alias", i.alias)?;
    d.set_item("tags", i.tags)?;
    d.into_py_any(py)
}

/// The Python callable gets `(kind, timestamp, level, message)`; errors it raises are printed.
fn log_callback(cb: Py<PyAny>) -> e2b::template::LogCallback {
    Arc::new(move |e: e2b::template::LogEntry| {
        Python::attach(|py| {
            if let Err(err) = cb.call1(py, entry(e)) {
                err.print(py);
            }
        })
    })
}

#[pyfunction]
pub fn wait_for_port(port: u32) -> String {
    e2b::template::readycmd::wait_for_port(port)
}
#[pyfunction]
#[pyo3(signature = (url, status_code=200))]
pub fn wait_for_url(url: &str, status_code: u32) -> String {
    e2b::template::readycmd::wait_for_url(url, status_code)
}
#[pyfunction]
pub fn wait_for_process(process_name: &str) -> String {
    e2b::template::readycmd::wait_for_process(process_name)
}
#[pyfunction]
pub fn wait_for_file(filename: &str) -> String {
    e2b::template::readycmd::wait_for_file(filename)
}
#[pyfunction]
pub fn wait_for_timeout(timeout: u64) -> String {
    e2b::template::readycmd::wait_for_timeout(timeout)
}
#[pyfunction]
pub fn strip_ansi(text: &str) -> String {
    e2b::template::build::strip_ansi(text)
}
