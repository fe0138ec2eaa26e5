//! `GET /files` (download) and `POST /files` (upload: multipart or octet-stream).
//!
//! Errors use envd's HTTP error body `{"code": <status>, "message": "..."}`; the
//! SDKs map 404 to `FileNotFoundException` and 507 to `NotEnoughSpaceException`.
//! Uploads stream to disk (no whole-file buffering), except gzip-encoded bodies,
//! which are decoded on a blocking thread while the body is fed to it.

use std::io::Write;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::connect::RpcError;
use crate::filesystem::create_dirs;
use crate::proto::Code;
use crate::state::Shared;
use crate::users::{User, resolve_path};

#[derive(Debug, Deserialize, Default)]
pub struct FilesQuery {
    path: Option<String>,
    username: Option<String>,
}

#[derive(Debug, Serialize)]
struct WriteInfo {
    path: String,
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
    /// What is persisted in `user.e2b.*` xattrs after the write (absent when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<std::collections::HashMap<String, String>>,
}

/// An HTTP error with envd's body shape.
pub struct HttpError(StatusCode, String);

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        // Logged like Connect errors (`RpcError::log`): the sandbox's logs show failed requests.
        let status = self.0.as_u16();
        if self.0.is_server_error() {
            tracing::error!(status, error = %self.1, "request failed");
        } else {
            tracing::warn!(status, error = %self.1, "request failed");
        }
        let body = serde_json::json!({"code": self.0.as_u16(), "message": self.1});
        (self.0, axum::Json(body)).into_response()
    }
}

impl From<RpcError> for HttpError {
    fn from(e: RpcError) -> Self {
        let status = match e.code {
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::InvalidArgument | Code::AlreadyExists => StatusCode::BAD_REQUEST,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::ResourceExhausted => StatusCode::INSUFFICIENT_STORAGE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        HttpError(status, e.message)
    }
}

fn io_error(e: &std::io::Error, what: impl std::fmt::Display) -> HttpError {
    if e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT) {
        return HttpError(
            StatusCode::INSUFFICIENT_STORAGE,
            format!("not enough disk space: {what}: {e}"),
        );
    }
    RpcError::io(e, what).into()
}

fn user_and_path(
    state: &Shared,
    headers: &HeaderMap,
    q: &FilesQuery,
    path: Option<&str>,
) -> Result<(User, PathBuf), HttpError> {
    let user = state.request_user(headers, q.username.as_deref())?;
    let path = path.or(q.path.as_deref()).filter(|p| !p.is_empty());
    let path = path.ok_or_else(|| HttpError(StatusCode::BAD_REQUEST, "path is required".into()))?;
    // The query is decoded lossily: bytes that are not UTF-8 become U+FFFD, which would
    // silently name another file, so such a path is refused.
    if path.contains('\u{FFFD}') {
        return Err(HttpError(
            StatusCode::BAD_REQUEST,
            "path is not valid UTF-8".into(),
        ));
    }
    let resolved = resolve_path(path, &user, state.runtime().default_workdir.as_deref());
    Ok((user, resolved))
}

pub async fn download(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<FilesQuery>,
) -> Result<Response, HttpError> {
    let (_user, path) = user_and_path(&state, &headers, &q, None)?;
    let meta = tokio::fs::metadata(&path)
        .await
        .map_err(|e| io_error(&e, format!("path '{}'", path.display())))?;
    if meta.is_dir() {
        return Err(HttpError(
            StatusCode::BAD_REQUEST,
            format!("path '{}' is a directory", path.display()),
        ));
    }
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| io_error(&e, format!("opening '{}'", path.display())))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().replace('"', ""))
        .unwrap_or_default();
    if accepts_gzip(&headers) {
        return Ok((
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (header::CONTENT_ENCODING, "gzip".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            gzip_body(file.into_std().await),
        )
            .into_response());
    }
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, meta.len().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 64 << 10)),
    )
        .into_response())
}

/// Whether `Accept-Encoding` lists gzip with a non-zero quality.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            coding.eq_ignore_ascii_case("gzip") && q > 0.0
        })
}

/// Compresses `file` on a blocking thread, streaming the output as the body.
fn gzip_body(mut file: std::fs::File) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        struct Sink(tokio::sync::mpsc::Sender<std::io::Result<Bytes>>);
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0
                    .blocking_send(Ok(Bytes::copy_from_slice(buf)))
                    .map_err(|_| std::io::Error::other("client went away"))?;
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = std::io::BufWriter::with_capacity(64 << 10, Sink(tx.clone()));
        let mut gz = flate2::write::GzEncoder::new(sink, flate2::Compression::fast());
        let res = std::io::copy(&mut file, &mut gz)
            .and_then(|_| gz.finish())
            .and_then(|mut w| w.flush());
        if let Err(e) = res {
            let _ = tx.blocking_send(Err(e));
        }
    });
    Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
}

pub async fn upload(
    State(state): State<Shared>,
    Query(q): Query<FilesQuery>,
    req: Request,
) -> Result<Response, HttpError> {
    let headers = req.headers().clone();
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let metadata = crate::metadata::from_headers(&headers)
        .map_err(|e| HttpError(StatusCode::BAD_REQUEST, format!("invalid metadata: {e}")))?;
    let mut written: Vec<WriteInfo> = Vec::new();
    if media == "multipart/form-data" {
        let mut multipart = Multipart::from_request(req, &state)
            .await
            .map_err(|e| HttpError(StatusCode::BAD_REQUEST, e.body_text()))?;
        while let Some(mut field) = multipart
            .next_field()
            .await
            .map_err(|e| HttpError(StatusCode::BAD_REQUEST, e.body_text()))?
        {
            if field.name() != Some("file") {
                continue;
            }
            // The `path` query names the destination of a single-file upload; otherwise the part's filename does.
            let dest = q
                .path
                .clone()
                .filter(|p| !p.is_empty())
                .or_else(|| field.file_name().map(str::to_string));
            let (user, path) = user_and_path(&state, &headers, &q, dest.as_deref())?;
            if written.iter().any(|w| Path::new(&w.path) == path) {
                return Err(HttpError(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "cannot upload multiple files to the same path '{}' in one request",
                        path.display()
                    ),
                ));
            }
            let mut file = open_for_write(&path, &user).await?;
            while let Some(chunk) = field
                .chunk()
                .await
                .map_err(|e| HttpError(StatusCode::BAD_REQUEST, e.body_text()))?
            {
                file.write_all(&chunk)
                    .await
                    .map_err(|e| io_error(&e, format!("writing '{}'", path.display())))?;
            }
            file.flush()
                .await
                .map_err(|e| io_error(&e, format!("writing '{}'", path.display())))?;
            written.push(finish(&path, &metadata)?);
        }
        if written.is_empty() {
            return Err(HttpError(
                StatusCode::BAD_REQUEST,
                "no part named 'file' in the multipart body".into(),
            ));
        }
    } else if media == "application/octet-stream" || media.is_empty() {
        let (user, path) = user_and_path(&state, &headers, &q, None)?;
        let encoding = headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("identity")
            .trim()
            .to_ascii_lowercase();
        let body = req
            .into_body()
            .into_data_stream()
            .map(|r| r.map_err(std::io::Error::other))
            .boxed();
        match encoding.as_str() {
            "" | "identity" => write_stream(&path, &user, body).await?,
            "gzip" => write_gzip(&path, &user, body).await?,
            other => {
                return Err(HttpError(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("unsupported content encoding {other:?}"),
                ));
            }
        }
        written.push(finish(&path, &metadata)?);
    } else {
        return Err(HttpError(
            StatusCode::BAD_REQUEST,
            format!("unsupported content type {media:?}"),
        ));
    }
    Ok((StatusCode::OK, axum::Json(written)).into_response())
}

/// Stores the upload's metadata on the written file and describes the result.
fn finish(
    path: &Path,
    metadata: &std::collections::HashMap<String, String>,
) -> Result<WriteInfo, HttpError> {
    if let Err(e) = crate::metadata::write(path, metadata) {
        if crate::metadata::unsupported(&e) {
            tracing::warn!("{}: no xattr support, metadata not stored", path.display());
        } else {
            return Err(io_error(
                &e,
                format!("storing metadata of '{}'", path.display()),
            ));
        }
    }
    let stored = crate::metadata::read(path);
    Ok(WriteInfo {
        path: path.display().to_string(),
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        kind: "file",
        metadata: (!stored.is_empty()).then_some(stored),
    })
}

type ByteStream = futures::stream::BoxStream<'static, std::io::Result<Bytes>>;

/// Creates parents (owned by `user`), truncates or creates the file, chowns it.
async fn open_for_write(path: &Path, user: &User) -> Result<tokio::fs::File, HttpError> {
    if tokio::fs::metadata(path).await.is_ok_and(|m| m.is_dir()) {
        return Err(HttpError(
            StatusCode::BAD_REQUEST,
            format!("path '{}' is a directory", path.display()),
        ));
    }
    if let Some(parent) = path.parent() {
        let (parent, u) = (parent.to_path_buf(), user.clone());
        tokio::task::spawn_blocking(move || create_dirs(&parent, &u))
            .await
            .map_err(|e| HttpError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| {
                io_error(
                    &e,
                    format!("creating parent directories of '{}'", path.display()),
                )
            })?;
    }
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(path)
        .await
        .map_err(|e| io_error(&e, format!("opening '{}'", path.display())))?;
    let _ = std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid));
    Ok(file)
}

async fn write_stream(path: &Path, user: &User, mut body: ByteStream) -> Result<(), HttpError> {
    let mut file = open_for_write(path, user).await?;
    while let Some(chunk) = body.next().await {
        let chunk = chunk
            .map_err(|e| HttpError(StatusCode::BAD_REQUEST, format!("reading the upload: {e}")))?;
        file.write_all(&chunk)
            .await
            .map_err(|e| io_error(&e, format!("writing '{}'", path.display())))?;
    }
    file.flush()
        .await
        .map_err(|e| io_error(&e, format!("writing '{}'", path.display())))?;
    Ok(())
}

/// Gzip bodies are decoded by `flate2` on a blocking thread fed through a channel.
async fn write_gzip(path: &Path, user: &User, mut body: ByteStream) -> Result<(), HttpError> {
    let file = open_for_write(path, user).await?.into_std().await;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    let dest = path.to_path_buf();
    let decoder = tokio::task::spawn_blocking(move || -> Result<(), HttpError> {
        let reader = ChannelReader {
            rx,
            current: Bytes::new(),
        };
        let mut gz = flate2::read::MultiGzDecoder::new(reader);
        let mut out = std::io::BufWriter::new(file);
        std::io::copy(&mut gz, &mut out).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData
            | std::io::ErrorKind::InvalidInput
            | std::io::ErrorKind::UnexpectedEof => {
                HttpError(StatusCode::BAD_REQUEST, format!("invalid gzip body: {e}"))
            }
            _ => io_error(&e, format!("writing '{}'", dest.display())),
        })?;
        out.flush()
            .map_err(|e| io_error(&e, format!("writing '{}'", dest.display())))
    });
    while let Some(chunk) = body.next().await {
        let failed = chunk.is_err();
        if tx.send(chunk).await.is_err() || failed {
            break; // the decoder stopped (and will report why), or the body failed
        }
    }
    drop(tx);
    decoder
        .await
        .map_err(|e| HttpError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// `Read` over chunks arriving on a channel.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
