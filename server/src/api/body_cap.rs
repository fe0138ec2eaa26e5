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
