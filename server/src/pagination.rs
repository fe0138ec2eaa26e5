//! Keyset pagination shared by `GET /v2/sandboxes` and `GET /snapshots` (spec §2.4).
//!
//! Invariants: a token is `base64url("<RFC3339Nano ts>__<id>")`, with `__asc` appended for
//! ascending order, and names the last row of the previous page; the next page holds rows
//! strictly after `(ts, id)` in the requested order. A token minted for the other order, or
//! one that does not decode, is a 400. Callers fetch `limit + 1` rows and emit `X-Next-Token`
//! only when the extra row exists.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{ApiError, ApiResult};
use crate::ids;

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 100;
pub const NEXT_TOKEN_HEADER: &str = "x-next-token";

/// Where a page starts: strictly after `(ts, id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub ts: i64,
    pub id: String,
}

pub fn encode(cursor: &Cursor, ascending: bool) -> String {
    let mut raw = format!("{}__{}", ids::ns_to_rfc3339(cursor.ts), cursor.id);
    if ascending {
        raw.push_str("__asc");
    }
    URL_SAFE_NO_PAD.encode(raw)
}

pub fn decode(token: &str, ascending: bool) -> ApiResult<Cursor> {
    let bad = || ApiError::bad_request(format!("invalid next token: {token:?}"));
    let bytes = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).map_err(|_| bad())?;
    let raw = String::from_utf8(bytes).map_err(|_| bad())?;
    let (raw, is_asc) = match raw.strip_suffix("__asc") {
        Some(rest) => (rest, true),
        None => (raw.as_str(), false),
    };
    if is_asc != ascending {
        return Err(ApiError::bad_request("next token was issued for the other sort order"));
    }
    let (ts, id) = raw.split_once("__").ok_or_else(bad)?;
    let ts = ids::rfc3339_to_ns(ts).ok_or_else(bad)?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(bad());
    }
    Ok(Cursor { ts, id: id.to_string() })
}

/// `limit` query parameter: 1..=100, default 100.
pub fn parse_limit(raw: Option<&str>) -> ApiResult<usize> {
    let Some(raw) = raw else { return Ok(DEFAULT_LIMIT) };
    match raw.trim().parse::<i64>() {
        Ok(n) if (1..=MAX_LIMIT as i64).contains(&n) => Ok(n as usize),
        _ => Err(ApiError::bad_request(format!("limit must be an integer between 1 and {MAX_LIMIT}, got {raw:?}"))),
    }
}

/// Splits a fetched `limit + 1` page: returns the token for the next page when the extra
/// row exists (and drops it).
pub fn finish_page<T>(rows: &mut Vec<T>, limit: usize, ascending: bool, key: impl Fn(&T) -> Cursor) -> Option<String> {
    if rows.len() <= limit {
        return None;
    }
    rows.truncate(limit);
    rows.last().map(|last| encode(&key(last), ascending))
}

/// `limit` and `nextToken` of a newest-first list (`GET /snapshots`, `GET /secrets`).
pub fn parse_page(limit: Option<&str>, next_token: Option<&str>) -> ApiResult<(usize, Option<Cursor>)> {
    let limit = parse_limit(limit)?;
    let cursor = next_token.filter(|t| !t.is_empty()).map(|t| decode(t, false)).transpose()?;
    Ok((limit, cursor))
}

/// The response headers of a page: `X-Next-Token` when there is a next page.
pub fn page_headers(token: Option<String>) -> ApiResult<axum::http::HeaderMap> {
    let mut headers = axum::http::HeaderMap::new();
    if let Some(token) = token {
        let value = axum::http::HeaderValue::from_str(&token).map_err(|e| ApiError::internal(e.to_string()))?;
        headers.insert(NEXT_TOKEN_HEADER, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip_and_order_check() {
        let c = Cursor { ts: 1_700_000_000_123_456_789, id: "iabc123".into() };
        assert_eq!(decode(&encode(&c, false), false).unwrap(), c);
        assert_eq!(decode(&encode(&c, true), true).unwrap(), c);
        assert!(decode(&encode(&c, true), false).is_err());
        assert!(decode("not a token!", false).is_err());
        assert!(decode(&URL_SAFE_NO_PAD.encode("garbage"), false).is_err());
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit(None).unwrap(), 100);
        assert_eq!(parse_limit(Some("1")).unwrap(), 1);
        assert!(parse_limit(Some("0")).is_err());
        assert!(parse_limit(Some("101")).is_err());
        assert!(parse_limit(Some("x")).is_err());
    }
}
