//! The Connect protocol (JSON codec) on top of axum: routing `POST /<pkg>.<Service>/<Method>`,
//! unary request/response, server streams with keepalives, and error encoding.
//!
//! Invariants:
//! - unary errors use the Connect HTTP status of their code and a `{code, message}` body;
//! - server streams always answer HTTP 200 and report errors in the end-stream frame,
//!   as connect-go does, so clients see the same error either way;
//! - a malformed request (bad envelope, bad JSON, wrong content type) is an error
//!   response, never a panic.

use std::pin::Pin;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::proto::{self, Code, EndStream, ErrorBody, FLAG_COMPRESSED, FLAG_END_STREAM};
use crate::state::Shared;
use crate::users::User;

/// Largest request message accepted (SendInput chunks, paths); bigger is `resource_exhausted`.
pub const MAX_MESSAGE: usize = 16 << 20;

/// A Connect error: a code and a human-readable message.
#[derive(Debug, Clone)]
pub struct RpcError {
    pub code: Code,
    pub message: String,
}

impl RpcError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }
    pub fn invalid(m: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(Code::NotFound, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(Code::Internal, m)
    }
    pub fn unauthenticated(m: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, m)
    }
    pub fn precondition(m: impl Into<String>) -> Self {
        Self::new(Code::FailedPrecondition, m)
    }

    /// Maps an OS error on `what` to the code the SDKs turn into the right exception.
    pub fn io(err: &std::io::Error, what: impl std::fmt::Display) -> Self {
        use std::io::ErrorKind as K;
        let code = match err.kind() {
            K::NotFound => Code::NotFound,
            K::PermissionDenied => Code::PermissionDenied,
            K::AlreadyExists => Code::AlreadyExists,
            K::InvalidInput | K::NotADirectory | K::IsADirectory | K::DirectoryNotEmpty => {
                Code::InvalidArgument
            }
            K::StorageFull | K::QuotaExceeded => Code::ResourceExhausted,
            _ => match err.raw_os_error() {
                Some(libc::ELOOP) | Some(libc::ENAMETOOLONG) | Some(libc::EXDEV) => {
                    Code::InvalidArgument
                }
                _ => Code::Internal,
            },
        };
        Self::new(code, format!("{what}: {err}"))
    }

    fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code,
            message: self.message.clone(),
        }
    }

    /// Records a failed request in envd's log (the sandbox's logs): server faults as errors,
    /// refusals of bad input as warnings.
    pub fn log(&self) {
        let code = serde_json::to_value(self.code).ok();
        let code = code.as_ref().and_then(|c| c.as_str()).unwrap_or("unknown");
        match self.code {
            Code::Internal | Code::Unknown | Code::DataLoss => {
                tracing::error!(code, error = %self.message, "request failed")
            }
            _ => tracing::warn!(code, error = %self.message, "request failed"),
        }
    }

    /// The unary error response.
    pub fn into_unary(self) -> Response {
        self.log();
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

/// A server stream: JSON-encoded messages, or an error that ends the stream.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<Bytes, RpcError>> + Send>>;

/// What a service returns for one call.
pub enum Reply {
    Unary(Result<Bytes, RpcError>),
    /// The stream, and the keepalive message to interleave when it is idle.
    Stream(Result<EventStream, RpcError>, Option<Bytes>),
}

/// Serializes a unary response message.
pub fn unary<T: Serialize>(r: Result<T, RpcError>) -> Reply {
    Reply::Unary(r.and_then(|m| {
        serde_json::to_vec(&m)
            .map(Bytes::from)
            .map_err(|e| RpcError::internal(e.to_string()))
    }))
}

/// JSON-encodes one stream message.
pub fn encode<T: Serialize>(m: &T) -> Result<Bytes, RpcError> {
    serde_json::to_vec(m)
        .map(Bytes::from)
        .map_err(|e| RpcError::internal(e.to_string()))
}

/// Everything a method needs about its request.
pub struct Call {
    pub state: Shared,
    pub headers: HeaderMap,
    pub user: User,
    pub body: Bytes,
}

impl Call {
    /// Decodes the request message (`{}` for an empty body).
    pub fn message<T: DeserializeOwned>(&self) -> Result<T, RpcError> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &self.body
        };
        serde_json::from_slice(body)
            .map_err(|e| RpcError::invalid(format!("invalid request message: {e}")))
    }

    /// `Connect-Timeout-Ms`, when the client set a deadline.
    pub fn timeout(&self) -> Option<Duration> {
        let v = self.headers.get("connect-timeout-ms")?.to_str().ok()?;
        v.trim()
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
    }
}

/// Which methods are server streams (they use the enveloped `application/connect+json` body).
fn is_stream(service: &str, method: &str) -> bool {
    matches!(
        (service, method),
        ("process.Process", "Start" | "Connect") | ("filesystem.Filesystem", "WatchDir")
    )
}

/// Axum handler for every `POST /<pkg>.<Service>/<Method>`.
pub async fn handle(
    State(state): State<Shared>,
    Path((service, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let streaming = is_stream(&service, &method);
    tracing::debug!(%service, %method, streaming, "rpc");
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();

    if !crate::process::service::knows(&service, &method)
        && !crate::filesystem::knows(&service, &method)
    {
        return RpcError::new(
            Code::Unimplemented,
            format!("{service}/{method} is not implemented"),
        )
        .into_unary();
    }
    let client_stream = (service.as_str(), method.as_str()) == ("process.Process", "StreamInput");
    let want = if streaming || client_stream {
        "application/connect+json"
    } else {
        "application/json"
    };
    if media != want {
        return unsupported_media(&content_type, want);
    }
    if client_stream {
        return stream_input(state, headers, body).await;
    }

    let body = match axum::body::to_bytes(body, MAX_MESSAGE + proto::ENVELOPE_HEADER).await {
        Ok(b) => b,
        Err(e) => {
            let err = RpcError::new(Code::ResourceExhausted, format!("reading the request: {e}"));
            return if streaming {
                stream_error(err)
            } else {
                err.into_unary()
            };
        }
    };
    if streaming {
        server_stream(state, &service, &method, headers, body).await
    } else {
        unary_call(state, &service, &method, headers, body).await
    }
}

async fn unary_call(
    state: Shared,
    service: &str,
    method: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes() != b"identity")
    {
        return RpcError::new(Code::Unimplemented, "compressed requests are not supported")
            .into_unary();
    }
    let user = match state.request_user(&headers, None) {
        Ok(u) => u,
        Err(e) => return e.into_unary(),
    };
    match dispatch(
        service,
        method,
        Call {
            state,
            headers,
            user,
            body,
        },
    )
    .await
    {
        Reply::Unary(Ok(bytes)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            bytes,
        )
            .into_response(),
        Reply::Unary(Err(e)) => e.into_unary(),
        Reply::Stream(..) => RpcError::internal("streaming reply to a unary call").into_unary(),
    }
}

async fn server_stream(
    state: Shared,
    service: &str,
    method: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let message = match proto::decode_single_envelope(&body, MAX_MESSAGE) {
        Ok(env) => match check_request_flags(env.flags) {
            Ok(()) => env.payload,
            Err(e) => return stream_error(e),
        },
        Err(e @ proto::EnvelopeError::TooLarge { .. }) => return stream_error(too_large(e)),
        Err(e) => {
            return stream_error(RpcError::invalid(format!(
                "malformed request envelope: {e}"
            )));
        }
    };
    let user = match state.request_user(&headers, None) {
        Ok(u) => u,
        Err(e) => return stream_error(e),
    };
    let interval = keepalive_interval(&headers);
    match dispatch(
        service,
        method,
        Call {
            state,
            headers,
            user,
            body: message,
        },
    )
    .await
    {
        Reply::Stream(Ok(stream), keepalive) => stream_response(stream, interval.zip(keepalive)),
        Reply::Stream(Err(e), _) | Reply::Unary(Err(e)) => stream_error(e),
        Reply::Unary(Ok(_)) => stream_error(RpcError::internal("unary reply to a streaming call")),
    }
}

/// A request envelope may only be flagged `compressed` (end-stream is for responses); as no
/// compression is negotiated, that is refused too.
pub fn check_request_flags(flags: u8) -> Result<(), RpcError> {
    if flags & !FLAG_COMPRESSED != 0 {
        return Err(RpcError::invalid(format!(
            "invalid request envelope flags {flags:#04x}"
        )));
    }
    if flags & FLAG_COMPRESSED != 0 {
        return Err(RpcError::new(
            Code::Unimplemented,
            "compressed request messages are not supported",
        ));
    }
    Ok(())
}

/// A request envelope over [`MAX_MESSAGE`]: `resource_exhausted`, as connect-go answers.
pub fn too_large(e: proto::EnvelopeError) -> RpcError {
    RpcError::new(
        Code::ResourceExhausted,
        format!("request message too large: {e}"),
    )
}

/// The one client stream (`StreamInput`): messages are applied as they arrive;
/// the reply is one message and the end-stream frame.
async fn stream_input(state: Shared, headers: HeaderMap, body: Body) -> Response {
    if let Err(e) = state.request_user(&headers, None) {
        return stream_error(e);
    }
    match crate::process::service::stream_input(&state, body).await {
        Ok(reply) => {
            let mut frames =
                proto::encode_envelope(0, &encode(&reply).unwrap_or_default()).to_vec();
            frames.extend_from_slice(&end_frame(None));
            (StatusCode::OK, stream_headers(), frames).into_response()
        }
        Err(e) => stream_error(e),
    }
}

async fn dispatch(service: &str, method: &str, call: Call) -> Reply {
    match service {
        "process.Process" => crate::process::service::dispatch(method, call).await,
        _ => crate::filesystem::dispatch(method, call).await,
    }
}

/// Connect answers an unknown codec with 415 and tells which one it speaks.
fn unsupported_media(got: &str, want: &str) -> Response {
    (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        [(
            header::HeaderName::from_static("accept-post"),
            want.to_string(),
        )],
        format!("unsupported content type {got:?}; expected {want}"),
    )
        .into_response()
}

/// `Keepalive-Ping-Interval` (seconds) asks for keepalive events on idle streams.
fn keepalive_interval(headers: &HeaderMap) -> Option<Duration> {
    let secs: f64 = headers
        .get("keepalive-ping-interval")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (secs > 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs.max(0.05)))
}

fn stream_headers() -> [(header::HeaderName, &'static str); 1] {
    [(header::CONTENT_TYPE, "application/connect+json")]
}

fn end_frame(error: Option<RpcError>) -> Bytes {
    if let Some(e) = &error {
        e.log();
    }
    let end = EndStream {
        error: error.map(|e| e.body()),
        metadata: None,
    };
    proto::encode_envelope(
        FLAG_END_STREAM,
        &serde_json::to_vec(&end).unwrap_or_else(|_| b"{}".to_vec()),
    )
}

/// A stream that failed before its first message: just the end-stream frame.
pub fn stream_error(e: RpcError) -> Response {
    (StatusCode::OK, stream_headers(), end_frame(Some(e))).into_response()
}

/// Frames `stream` as Connect envelopes, adding keepalives when idle for `keepalive.0`.
///
/// A task pumps the stream into a small channel feeding the body; when the client
/// goes away the body (and so the channel) is dropped, the task's send fails and
/// it drops the source stream, which releases whatever it subscribed to.
fn stream_response(mut stream: EventStream, keepalive: Option<(Duration, Bytes)>) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        loop {
            let next = match &keepalive {
                // `None` means the stream was idle for the interval: send a keepalive below.
                Some((every, _)) => tokio::time::timeout(*every, stream.next()).await.ok(),
                None => Some(stream.next().await),
            };
            let frame = match next {
                None => proto::encode_envelope(
                    0,
                    &keepalive.as_ref().map(|k| k.1.clone()).unwrap_or_default(),
                ),
                Some(Some(Ok(msg))) => proto::encode_envelope(0, &msg),
                Some(Some(Err(e))) => {
                    let _ = tx.send(Ok(end_frame(Some(e)))).await;
                    return;
                }
                Some(None) => {
                    let _ = tx.send(Ok(end_frame(None))).await;
                    return;
                }
            };
            if tx.send(Ok(frame)).await.is_err() {
                return;
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    (StatusCode::OK, stream_headers(), body).into_response()
}
