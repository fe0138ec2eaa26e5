//! `sandbox.files()`: the sandbox filesystem through envd's `filesystem.Filesystem` service and
//! its `/files` HTTP endpoint (multipart upload: field `file`, filename = destination path).

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::envd::proto::{self, EntryResponse, ListDirResponse, MoveRequest, PathRequest};
use crate::envd::{Domain, EnvdClient, map_http_error};
use crate::error::{Error, Result};
use crate::models::{EntryInfo, FileType, WriteInfo};

const SERVICE: &str = "filesystem.Filesystem";

/// Filesystem operations of one sandbox; cheap to clone.
#[derive(Debug, Clone)]
pub struct Files {
    envd: EnvdClient,
}

impl Files {
    pub(crate) fn new(envd: EnvdClient) -> Self {
        Files { envd }
    }

    pub(crate) fn envd(&self) -> &EnvdClient {
        &self.envd
    }

    /// These operations with a per-call request timeout (`None` keeps the configured one, zero
    /// disables it).
    pub fn with_request_timeout(&self, timeout: Option<std::time::Duration>) -> Files {
        Files { envd: self.envd.with_request_timeout(timeout) }
    }

    /// File content as bytes.
    pub async fn read_bytes(&self, path: &str, user: Option<&str>) -> Result<Bytes> {
        let mut q = vec![("path", path)];
        if let Some(u) = user {
            q.push(("username", u));
        }
        let r = self
            .envd
            .request(reqwest::Method::GET, "/files", user, None)
            .query(&q)
            .send()
            .await
            .map_err(Error::from_reqwest)?;
        let status = r.status().as_u16();
        let body = r.bytes().await.map_err(Error::from_reqwest)?;
        if !(200..300).contains(&status) {
            return Err(map_http_error(status, &body, Domain::Filesystem));
        }
        Ok(body)
    }

    /// File content decoded as UTF-8 (invalid sequences replaced).
    pub async fn read_text(&self, path: &str, user: Option<&str>) -> Result<String> {
        let b = self.read_bytes(path, user).await?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    /// Write (create or overwrite) a file; parent directories are created.
    pub async fn write(&self, path: &str, data: impl Into<Bytes>, user: Option<&str>) -> Result<WriteInfo> {
        let part = reqwest::multipart::Part::bytes(Vec::from(data.into()))
            .file_name(path.to_string())
            .mime_str("application/octet-stream")
            .map_err(|e| Error::sandbox(e.to_string()))?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let mut q = vec![("path", path)];
        if let Some(u) = user {
            q.push(("username", u));
        }
        let r = self
            .envd
            .request(reqwest::Method::POST, "/files", user, None)
            .query(&q)
            .multipart(form)
            .send()
            .await
            .map_err(Error::from_reqwest)?;
        let status = r.status().as_u16();
        let body = r.bytes().await.map_err(Error::from_reqwest)?;
        if !(200..300).contains(&status) {
            return Err(map_http_error(status, &body, Domain::Filesystem));
        }
        let list: Vec<serde_json::Value> = serde_json::from_slice(&body)
            .map_err(|e| Error::sandbox(format!("invalid /files response: {e}")))?;
        let w = list.first().ok_or_else(|| Error::sandbox("/files returned no entry"))?;
        WriteInfo::from_json(w).map_err(|e| Error::sandbox(format!("invalid /files response: {e}")))
    }

    /// Write several files, in order; stops at the first failure.
    pub async fn write_files(&self, files: Vec<(String, Bytes)>, user: Option<&str>) -> Result<Vec<WriteInfo>> {
        let mut out = Vec::with_capacity(files.len());
        for (path, data) in files {
            out.push(self.write(&path, data, user).await?);
        }
        Ok(out)
    }

    /// Entries of a directory, `depth` levels deep (≥ 1).
    pub async fn list(&self, path: &str, depth: u32, user: Option<&str>) -> Result<Vec<EntryInfo>> {
        if depth < 1 {
            return Err(Error::InvalidArgument("depth should be at least 1".into()));
        }
        let req = PathRequest { path: path.into(), depth };
        let r: ListDirResponse = self.envd.unary(SERVICE, "ListDir", &req, user, Domain::Filesystem).await?;
        Ok(r.entries.into_iter().map(entry).collect())
    }

    pub async fn exists(&self, path: &str, user: Option<&str>) -> Result<bool> {
        match self.get_info(path, user).await {
            Ok(_) => Ok(true),
            Err(Error::FileNotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn get_info(&self, path: &str, user: Option<&str>) -> Result<EntryInfo> {
        let req = PathRequest { path: path.into(), depth: 0 };
        let r: EntryResponse = self.envd.unary(SERVICE, "Stat", &req, user, Domain::Filesystem).await?;
        r.entry.map(entry).ok_or_else(|| Error::sandbox("Stat returned no entry"))
    }

    pub async fn remove(&self, path: &str, user: Option<&str>) -> Result<()> {
        let req = PathRequest { path: path.into(), depth: 0 };
        self.envd.unary::<_, proto::Empty>(SERVICE, "Remove", &req, user, Domain::Filesystem).await?;
        Ok(())
    }

    pub async fn rename(&self, old_path: &str, new_path: &str, user: Option<&str>) -> Result<EntryInfo> {
        let req = MoveRequest { source: old_path.into(), destination: new_path.into() };
        let r: EntryResponse = self.envd.unary(SERVICE, "Move", &req, user, Domain::Filesystem).await?;
        r.entry.map(entry).ok_or_else(|| Error::sandbox("Move returned no entry"))
    }

    /// Create a directory (and parents); false when it already existed.
    pub async fn make_dir(&self, path: &str, user: Option<&str>) -> Result<bool> {
        let req = PathRequest { path: path.into(), depth: 0 };
        match self.envd.unary::<_, EntryResponse>(SERVICE, "MakeDir", &req, user, Domain::Filesystem).await {
            Ok(_) => Ok(true),
            Err(Error::Sandbox { message, .. }) if message.starts_with("already_exists") => Ok(false),
            Err(e) => Err(e),
        }
    }
}

pub(crate) fn entry(e: proto::EntryInfo) -> EntryInfo {
    EntryInfo {
        name: e.name,
        r#type: match e.file_type {
            proto::FileType::File => Some(FileType::File),
            proto::FileType::Directory => Some(FileType::Dir),
            proto::FileType::Symlink => Some(FileType::Symlink),
            proto::FileType::Unspecified => None,
        },
        path: e.path,
        size: e.size,
        mode: e.mode,
        permissions: e.permissions,
        owner: e.owner,
        group: e.group,
        modified_time: e
            .modified_time
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc)),
        symlink_target: e.symlink_target,
        metadata: e.metadata,
    }
}
