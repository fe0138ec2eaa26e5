//! The one mapping from core errors to the Python exceptions of `e2b.exceptions`.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use e2b::{Error, ErrorKind};

fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Sandbox => "SandboxException",
        ErrorKind::Timeout => "TimeoutException",
        ErrorKind::InvalidArgument => "InvalidArgumentException",
        ErrorKind::NotEnoughSpace => "NotEnoughSpaceException",
        ErrorKind::NotFound => "NotFoundException",
        ErrorKind::SandboxNotFound => "SandboxNotFoundException",
        ErrorKind::FileNotFound => "FileNotFoundException",
        ErrorKind::Authentication => "AuthenticationException",
        ErrorKind::RateLimit => "RateLimitException",
        ErrorKind::ServiceBusy => "ServiceBusyException",
        ErrorKind::Template => "TemplateException",
        ErrorKind::Build => "BuildException",
        ErrorKind::FileUpload => "FileUploadException",
        ErrorKind::CommandExit => "CommandExitException",
        ErrorKind::GitAuth => "GitAuthException",
        ErrorKind::GitUpstream => "GitUpstreamException",
        ErrorKind::NoMoreItems => "Exception",
        ErrorKind::Secret => "SecretException",
        ErrorKind::SecretNotFound => "SecretNotFoundException",
        ErrorKind::Volume => "VolumeException",
        ErrorKind::VolumeNotFound => "VolumeNotFoundException",
        ErrorKind::VolumePathNotFound => "VolumePathNotFoundException",
    }
}

/// Build the matching exception instance (a plain `Exception` for "No more items to fetch").
pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    match build(py, &e) {
        Ok(err) => err,
        Err(fail) => fail,
    }
}

fn build(py: Python<'_>, e: &Error) -> PyResult<PyErr> {
    if e.kind() == ErrorKind::NoMoreItems {
        return Ok(PyException::new_err(e.to_string()));
    }
    let module = py.import("e2b.exceptions")?;
    let cls = module.getattr(class_name(e.kind()))?;
    let value = match e {
        Error::CommandExit { stdout, stderr, exit_code, error } => {
            let kw = PyDict::new(py);
            kw.set_item("stdout", stdout)?;
            kw.set_item("stderr", stderr)?;
            kw.set_item("exit_code", exit_code)?;
            kw.set_item("error", error)?;
            cls.call((), Some(&kw))?
        }
        _ => {
            let kw = PyDict::new(py);
            if let (Some(status), ErrorKind::Sandbox) = (e.status(), e.kind()) {
                kw.set_item("status_code", status)?;
            }
            cls.call((e.to_string(),), Some(&kw))?
        }
    };
    Ok(PyErr::from_value(value))
}
