//! User-defined file metadata (envd 0.6.2): `X-Metadata-<key>: <value>` headers
//! on an upload become `user.e2b.<key>` extended attributes, and every
//! `EntryInfo` reports them back (prefix stripped).
//!
//! Rules, as the SDKs validate them too: keys are lowercased, keys and values
//! are printable ASCII, at most 4096 bytes in total. An upload replaces the
//! whole set (a truncated file keeps its old xattrs, so stale keys are removed).

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use http::HeaderMap;

const HEADER_PREFIX: &str = "x-metadata-";
const XATTR_PREFIX: &str = "user.e2b.";
const MAX_TOTAL: usize = 4096;

/// Extracts and validates the metadata headers of a request.
pub fn from_headers(headers: &HeaderMap) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (name, value) in headers {
        let Some(key) = name.as_str().strip_prefix(HEADER_PREFIX) else {
            continue;
        };
        if key.is_empty() || out.contains_key(key) {
            continue;
        }
        let value = value
            .to_str()
            .map_err(|_| format!("metadata value of '{key}' is not printable ASCII"))?;
        if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(format!("metadata value of '{key}' is not printable ASCII"));
        }
        out.insert(key.to_ascii_lowercase(), value.to_string());
    }
    let total: usize = out.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > MAX_TOTAL {
        return Err(format!(
            "metadata is {total} bytes; the limit is {MAX_TOTAL}"
        ));
    }
    Ok(out)
}

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn names(path: &Path) -> io::Result<Vec<String>> {
    let p = cpath(path)?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: listxattr writes at most `buf.len()` bytes into our buffer.
        let n = unsafe { libc::listxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            break;
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) || buf.len() > 1 << 20 {
            return Err(err);
        }
        buf.resize(buf.len() * 4, 0);
    }
    Ok(buf
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect())
}

/// Reads the `user.e2b.*` attributes of `path` (empty when none or unsupported).
pub fn read(path: &Path) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let Ok(names) = names(path) else { return out };
    let Ok(p) = cpath(path) else { return out };
    for name in names {
        let Some(key) = name.strip_prefix(XATTR_PREFIX) else {
            continue;
        };
        let Ok(cname) = CString::new(name.as_bytes()) else {
            continue;
        };
        let mut buf = vec![0u8; MAX_TOTAL + 1];
        // SAFETY: getxattr writes at most `buf.len()` bytes into our buffer.
        let n = unsafe {
            libc::getxattr(
                p.as_ptr(),
                cname.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n >= 0 {
            buf.truncate(n as usize);
            out.insert(key.to_string(), String::from_utf8_lossy(&buf).into_owned());
        }
    }
    out
}

/// Replaces the `user.e2b.*` set of `path` with `metadata`. Filesystems without
/// user xattrs (tmpfs without `user_xattr`, /proc, …) are accepted silently when
/// there is nothing to store.
pub fn write(path: &Path, metadata: &HashMap<String, String>) -> io::Result<()> {
    let p = cpath(path)?;
    match names(path) {
        Ok(existing) => {
            for name in existing.iter().filter(|n| n.starts_with(XATTR_PREFIX)) {
                if metadata.contains_key(&name[XATTR_PREFIX.len()..]) {
                    continue;
                }
                let cname = CString::new(name.as_bytes())
                    .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
                // SAFETY: both strings are valid C strings.
                unsafe { libc::removexattr(p.as_ptr(), cname.as_ptr()) };
            }
        }
        Err(e) if unsupported(&e) && metadata.is_empty() => return Ok(()),
        Err(e) => return Err(e),
    }
    for (key, value) in metadata {
        let cname = CString::new(format!("{XATTR_PREFIX}{key}"))
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: valid C strings and a value buffer of the given length.
        let rc = unsafe {
            libc::setxattr(
                p.as_ptr(),
                cname.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

pub fn unsupported(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOTSUP) || e.raw_os_error() == Some(libc::EOPNOTSUPP)
}
