//! Caps REST request bodies at [`MAX_BODY_BYTES`] and answers 413 so that the client reads it.
//!
//! A server that answers before reading an oversized body and then closes makes the kernel
//! reset the connection (unread data), and a client still writing sees a broken pipe instead
//! of the 413. Like nginx's lingering close, the excess is read and discarded (up to
//! [`DRAIN_BYTES`] or [`DRAIN_TIME`]) before the answer goes out with `Connection: close`.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use super::MAX_BODY_BYTES;
use crate::error::ApiError;

/// How much of an oversized body is read and dropped before answering.
const DRAIN_BYTES: usize = 64 << 20;
/// How long an oversized body may keep the connection before the answer goes out regardless.
const DRAIN_TIME: Duration = Duration::from_secs(10);

pub async fn cap_body(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (parts, mut body) = req.into_parts();
    let mut buf = Vec::new();
    let mut oversized = declared.is_some_and(|n| n > MAX_BODY_BYTES as u64);
    while !oversized {
        match body.frame().await {
            None => return next.run(Request::from_parts(parts, Body::from(Bytes::from(buf)))).await,
            Some(Err(e)) => return ApiError::bad_request(format!("failed to read the request body: {e}")).into_response(),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                    oversized = buf.len() > MAX_BODY_BYTES;
                }
            }
        }
    }
    drop(buf);
    drain(body).await;
    let mut resp = ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is larger than {MAX_BODY_BYTES} bytes"),
    )
    .into_response();
    resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Reads and drops what is left of a refused request's body (up to [`DRAIN_BYTES`], for at
/// most [`DRAIN_TIME`]) so that the client, still writing, reads the answer instead of a reset.
pub(crate) async fn drain(mut body: Body) {
    let drain = async {
        let mut read = 0usize;
        while read < DRAIN_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
}

/// Streams an upload's body into a new file at `path` and fsyncs it; returns the byte count.
/// More than `max` bytes is a 413 (`what` names the limit's setting); `before_write` runs before
/// each chunk is written (e.g. a free-space check). On error the partial file is left for the
/// caller to remove, and the rest of `body` is still unread.
pub(crate) async fn stream_to_file(
    body: &mut Body,
    path: &std::path::Path,
    max: u64,
    what: &str,
    mut before_write: impl FnMut(usize) -> crate::error::ApiResult<()>,
) -> crate::error::ApiResult<u64> {
    use tokio::io::AsyncWriteExt;
    let mut f = tokio::fs::File::create(path).await?;
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad_request(format!("upload broke off: {e}")))?;
        if let Ok(data) = frame.into_data() {
            n += data.len() as u64;
            if n > max {
                return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("upload larger than {} MiB ({what})", max >> 20)));
            }
            before_write(data.len())?;
            f.write_all(&data).await?;
        }
    }
    f.sync_all().await?;
    Ok(n)
}
