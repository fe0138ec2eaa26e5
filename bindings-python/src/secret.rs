//! `Secret` calls (E2B's secrets API) as module functions returning `Op`s; a secret's metadata
//! travels as a tuple that `e2b.secret.SecretInfo` (a dataclass, as upstream) is built from.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use pyo3::prelude::*;

use crate::config::{ConnectionOpts, opts};
use crate::error::to_py;
use crate::op::Op;

type Info = (String, String, i64, HashMap<String, String>, DateTime<Utc>, DateTime<Utc>);

fn info(s: e2b::SecretInfo) -> Info {
    (s.secret_id, s.name, s.version, s.metadata.into_iter().collect(), s.created_at, s.updated_at)
}

fn sorted(m: Option<HashMap<String, String>>) -> Option<BTreeMap<String, String>> {
    m.map(|m| m.into_iter().collect())
}

#[pyfunction]
#[pyo3(signature = (name, value, metadata=None, conn=None))]
pub fn secret_create(name: String, value: String, metadata: Option<HashMap<String, String>>, conn: Option<&ConnectionOpts>) -> Op {
    let o = opts(conn);
    let m = sorted(metadata);
    Op::new(async move { e2b::secret::create(&name, &value, m.as_ref(), &o).await.map(info) })
}

#[pyfunction]
#[pyo3(signature = (secret, value, metadata=None, conn=None))]
pub fn secret_update(secret: String, value: String, metadata: Option<HashMap<String, String>>, conn: Option<&ConnectionOpts>) -> Op {
    let o = opts(conn);
    let m = sorted(metadata);
    Op::new(async move { e2b::secret::update(&secret, &value, m.as_ref(), &o).await.map(info) })
}

#[pyfunction]
#[pyo3(signature = (secret, conn=None))]
pub fn secret_get_info(secret: String, conn: Option<&ConnectionOpts>) -> Op {
    let o = opts(conn);
    Op::new(async move { e2b::secret::get_info(&secret, &o).await.map(info) })
}

#[pyfunction]
#[pyo3(signature = (secret, conn=None))]
pub fn secret_exists(secret: String, conn: Option<&ConnectionOpts>) -> Op {
    let o = opts(conn);
    Op::new(async move { e2b::secret::exists(&secret, &o).await })
}

#[pyfunction]
#[pyo3(signature = (secret, conn=None))]
pub fn secret_destroy(secret: String, conn: Option<&ConnectionOpts>) -> Op {
    let o = opts(conn);
    Op::new(async move { e2b::secret::destroy(&secret, &o).await })
}

/// `Secret.fill`: a non-string name is the same `InvalidArgumentException` (showing its repr).
#[pyfunction]
pub fn secret_fill(py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<String> {
    let r = match name.extract::<String>() {
        Ok(s) => e2b::secret::fill(&s),
        Err(_) => Err(e2b::secret::unusable_name(&name.repr()?.to_string())),
    };
    r.map_err(|e| to_py(py, e))
}

/// A paginator over the secrets (no request is made until `next_items`).
#[pyfunction]
#[pyo3(signature = (limit=None, next_token=None, conn=None))]
pub fn secret_list(limit: Option<u32>, next_token: Option<String>, conn: Option<&ConnectionOpts>) -> SecretPaginator {
    SecretPaginator(e2b::secret::list(e2b::SecretListOptions { limit, next_token }, &opts(conn)))
}

#[pyclass(module = "e2b._native", frozen)]
pub struct SecretPaginator(pub e2b::SecretPaginator);

#[pymethods]
impl SecretPaginator {
    #[getter]
    fn has_next(&self) -> bool {
        self.0.has_next()
    }

    #[getter]
    fn next_token(&self) -> Option<String> {
        self.0.next_token()
    }

    #[pyo3(signature = (conn=None))]
    fn next_items(&self, conn: Option<&ConnectionOpts>) -> Op {
        let p = self.0.clone();
        let over = conn.map(|c| c.0.clone());
        Op::new(async move { Ok(p.next_items_with(over.as_ref()).await?.into_iter().map(info).collect::<Vec<_>>()) })
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SecretPaginator>()?;
    m.add_function(wrap_pyfunction!(secret_create, m)?)?;
    m.add_function(wrap_pyfunction!(secret_update, m)?)?;
    m.add_function(wrap_pyfunction!(secret_get_info, m)?)?;
    m.add_function(wrap_pyfunction!(secret_exists, m)?)?;
    m.add_function(wrap_pyfunction!(secret_destroy, m)?)?;
    m.add_function(wrap_pyfunction!(secret_fill, m)?)?;
    m.add_function(wrap_pyfunction!(secret_list, m)?)?;
    Ok(())
}
