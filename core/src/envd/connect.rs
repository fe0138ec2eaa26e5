//! Connect protocol over reqwest: unary calls (`application/json`) and server streams
//! (`application/connect+json`, 5-byte envelopes, a final frame with flag 0x02 that may carry an
//! error).

use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::proto::{self, EndStream, FLAG_END_STREAM};
use super::{Domain, EnvdClient, map_connect_error, map_http_error};
use crate::error::{Error, Result};

/// Largest message accepted from envd (64 MiB).
const MAX_MESSAGE: usize = 64 << 20;
/// Seconds between envd keepalive events on streams (E2B's `Keepalive-Ping-Interval`).
const KEEPALIVE_SECS: u64 = 50;

impl EnvdClient {
    /// One unary RPC, e.g. `("process.Process", "List")`.
    pub(crate) async fn unary<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        service: &str,
        method: &str,
        req: &Req,
        user: Option<&str>,
        domain: Domain,
    ) -> Result<Resp> {
        let r = self
            .request(reqwest::Method::POST, &format!("/{service}/{method}"), user, None)
            .header("Content-Type", "application/json")
            .header("Connect-Protocol-Version", "1")
            .json(req)
            .send()
            .await
            .map_err(Error::from_reqwest)?;
        let status = r.status().as_u16();
        let body = r.bytes().await.map_err(Error::from_reqwest)?;
        if !(200..300).contains(&status) {
            return Err(map_http_error(status, &body, domain));
        }
        let body: &[u8] = if body.is_empty() { b"{}" } else { &body };
        serde_json::from_slice(body)
            .map_err(|e| Error::sandbox(format!("invalid {service}/{method} response: {e}")))
    }

    /// Open a server stream. `timeout` bounds the whole stream (`None` = unlimited).
    pub(crate) async fn server_stream<Req: Serialize>(
        &self,
        service: &str,
        method: &str,
        req: &Req,
        user: Option<&str>,
        timeout: Option<Duration>,
        domain: Domain,
    ) -> Result<EnvdStream> {
        let payload = serde_json::to_vec(req).map_err(|e| Error::sandbox(e.to_string()))?;
        let mut b = self
            .request(reqwest::Method::POST, &format!("/{service}/{method}"), user, Some(timeout))
            .header("Content-Type", "application/connect+json")
            .header("Connect-Protocol-Version", "1")
            .header("Keepalive-Ping-Interval", KEEPALIVE_SECS.to_string());
        if let Some(t) = timeout {
            b = b.header("Connect-Timeout-Ms", t.as_millis().to_string());
        }
        let send = b.body(proto::encode_envelope(0, &payload)).send();
        // The request timeout bounds the start of a stream (until its response headers), as in
        // E2B's SDKs; the stream itself is bounded by `timeout`.
        let r = match self.request_timeout() {
            Some(t) => tokio::time::timeout(t, send).await.map_err(|_| {
                Error::Timeout(
                    "Request timed out: This error is likely due to exceeding 'request_timeout'. You \
                     can pass the request timeout value as an option when making the request."
                        .into(),
                )
            })?,
            None => send.await,
        }
        .map_err(Error::from_reqwest)?;
        let status = r.status().as_u16();
        if !(200..300).contains(&status) {
            let body = r.bytes().await.unwrap_or_default();
            return Err(map_http_error(status, &body, domain));
        }
        Ok(EnvdStream {
            body: r.bytes_stream().boxed(),
            buf: BytesMut::new(),
            done: false,
            domain,
        })
    }
}

/// The messages of one server stream.
pub(crate) struct EnvdStream {
    body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: BytesMut,
    done: bool,
    domain: Domain,
}

impl EnvdStream {
    /// The next message, `Ok(None)` after a clean end of stream.
    pub(crate) async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        loop {
            if self.done {
                return Ok(None);
            }
            let frame = proto::decode_envelope(&mut self.buf, MAX_MESSAGE)
                .map_err(|e| Error::sandbox(format!("envd stream: {e}")))?;
            if let Some(env) = frame {
                if env.flags & FLAG_END_STREAM != 0 {
                    self.done = true;
                    return match decode_end(&env.payload) {
                        Some(e) => Err(map_connect_error(&e.0, &e.1, self.domain)),
                        None => Ok(None),
                    };
                }
                let msg = serde_json::from_slice(&env.payload)
                    .map_err(|e| Error::sandbox(format!("invalid envd stream message: {e}")))?;
                return Ok(Some(msg));
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    self.done = true;
                    return Err(Error::from_reqwest(e));
                }
                None => {
                    self.done = true;
                    if self.buf.is_empty() {
                        return Ok(None);
                    }
                    return Err(Error::sandbox("envd stream ended inside a frame"));
                }
            }
        }
    }
}

/// `(code, message)` of the end frame's error, if any.
fn decode_end(payload: &[u8]) -> Option<(String, String)> {
    let end: EndStream = serde_json::from_slice(payload).ok()?;
    let e = end.error?;
    let code = serde_json::to_value(e.code).ok()?.as_str()?.to_string();
    Some((code, e.message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{ProcessEvent, ProcessEventResponse, encode_envelope};

    fn stream_of(chunks: Vec<Vec<u8>>) -> EnvdStream {
        let s = futures::stream::iter(chunks.into_iter().map(|c| Ok(bytes::Bytes::from(c))));
        EnvdStream { body: s.boxed(), buf: BytesMut::new(), done: false, domain: Domain::Process }
    }

    #[tokio::test]
    async fn frames_split_across_chunks() {
        let mut all = Vec::new();
        all.extend_from_slice(&encode_envelope(0, br#"{"event":{"start":{"pid":7}}}"#));
        all.extend_from_slice(&encode_envelope(0, br#"{"event":{"data":{"stdout":"aGk="}}}"#));
        all.extend_from_slice(&encode_envelope(FLAG_END_STREAM, b"{}"));
        // Deliver one byte at a time.
        let mut s = stream_of(all.iter().map(|b| vec![*b]).collect());
        let m: ProcessEventResponse = s.next().await.unwrap().unwrap();
        assert!(matches!(m.event, ProcessEvent::Start(ref e) if e.pid == 7));
        let m: ProcessEventResponse = s.next().await.unwrap().unwrap();
        match m.event {
            ProcessEvent::Data(proto::DataEvent::Stdout(b)) => assert_eq!(&b[..], b"hi"),
            other => panic!("{other:?}"),
        }
        assert!(s.next::<ProcessEventResponse>().await.unwrap().is_none());
        assert!(s.next::<ProcessEventResponse>().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn end_frame_error_is_mapped() {
        let end = encode_envelope(FLAG_END_STREAM, br#"{"error":{"code":"not_found","message":"no process"}}"#);
        let mut s = stream_of(vec![end.to_vec()]);
        let e = s.next::<ProcessEventResponse>().await.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::NotFound);
        assert_eq!(e.to_string(), "no process");
    }

    #[tokio::test]
    async fn truncated_stream_is_an_error() {
        let mut f = encode_envelope(0, b"{}").to_vec();
        f.pop();
        let mut s = stream_of(vec![f]);
        assert!(s.next::<serde_json::Value>().await.is_err());
    }
}
