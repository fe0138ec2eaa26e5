//! Native `Git`: one entry point, `call(method, args_json)`, over the core's `Git::call`;
//! `e2b/git.py` gives it E2B's methods and signatures (sync and async).

use pyo3::prelude::*;

use crate::error::to_py;
use crate::models::CommandResult;
use crate::op::Op;

#[pyclass(module = "e2b._native", frozen)]
pub struct Git(pub e2b::Git);

#[pymethods]
impl Git {
    /// Runs git method `method` with `args` (JSON: positional parameters by name, options under
    /// `opts`). Yields a `CommandResult`, a JSON string (`status`, `branches`) or `str | None`.
    fn call(&self, py: Python<'_>, method: String, args: &str) -> PyResult<Op> {
        let args: serde_json::Value = serde_json::from_str(args)
            .map_err(|e| to_py(py, e2b::Error::InvalidArgument(format!("invalid git arguments: {e}"))))?;
        let git = Clone::clone(&self.0);
        Ok(Op::map(async move { git.call(&method, args).await }, |py, v| {
            use pyo3::IntoPyObjectExt;
            match v {
                e2b::git::GitValue::Command(r) => Ok(Py::new(py, CommandResult::from(r))?.into_any()),
                e2b::git::GitValue::Status(s) => serde_json::to_string(&s).expect("json").into_py_any(py),
                e2b::git::GitValue::Branches(b) => serde_json::to_string(&b).expect("json").into_py_any(py),
                e2b::git::GitValue::Text(t) => t.into_py_any(py),
            }
        }))
    }
}
