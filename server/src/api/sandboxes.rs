//! Sandbox routes: create, list, get, kill, timeouts, pause, connect and resume.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;

use super::AppState;
use super::extract::{JsonBody, OptJsonBody, PathId, parse_query, query_value};
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::manager::{CreateParams, Keep};
use crate::models::{NewSandbox, PauseBody, Sandbox, SandboxDetail, TimeoutBody};
use crate::pagination::{self, Cursor};
use crate::store::SandboxFilter;

/// `NewSandbox.timeout` default of `POST /sandboxes` (E2B's server default).
const V1_DEFAULT_TIMEOUT: i64 = 15;
/// `NewSandboxV2.timeout` and `ConnectSandboxV2.timeout` default.
const V2_DEFAULT_TIMEOUT: i64 = 300;

async fn create(state: AppState, body: NewSandbox, default_timeout: i64) -> ApiResult<Response> {
    if let Some(refused) = body.unsupported() {
        return Err(ApiError::bad_request(refused));
    }
    let template = body.template_id.filter(|t| !t.is_empty()).ok_or_else(|| ApiError::bad_request("templateID is required"))?;
    let secure = body.secure.unwrap_or(true);
    // `iam` lives with the network configuration (its tokens are only used by transform rules).
    let iam_tokens = crate::network::parse_iam(body.iam.as_ref())?;
    let network = match body.network {
        Some(n) => Some(n.into_config(secure, iam_tokens)?),
        None => iam_tokens.map(|t| crate::network::NetworkConfig { iam_tokens: Some(t), ..Default::default() }),
    };
    let volume_mounts = state.manager.resolve_volume_mounts(body.volume_mounts.as_deref().unwrap_or_default())?;
    let row = state
        .manager
        .create(CreateParams {
            template,
            timeout_secs: body.timeout.unwrap_or(default_timeout),
            metadata: body.metadata.unwrap_or_default(),
            env_vars: body.env_vars.unwrap_or_default(),
            secure,
            allow_internet: body.allow_internet_access.unwrap_or(true),
            auto_pause: body.auto_pause.unwrap_or(false),
            auto_pause_memory: body.auto_pause_memory.unwrap_or(true),
            auto_resume: body.auto_resume.is_some_and(|a| a.enabled),
            network,
            volume_mounts,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(Sandbox::from(&row))).into_response())
}

pub async fn create_v1(State(state): State<AppState>, JsonBody(body): JsonBody<NewSandbox>) -> ApiResult<Response> {
    create(state, body, V1_DEFAULT_TIMEOUT).await
}

pub async fn create_v2(State(state): State<AppState>, JsonBody(body): JsonBody<NewSandbox>) -> ApiResult<Response> {
    create(state, body, V2_DEFAULT_TIMEOUT).await
}

/// `metadata=k=v&k2=v2`: keys and values were URL-encoded before the whole string was.
fn parse_metadata(raw: &str) -> Vec<(String, String)> {
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    parse_query(Some(raw)).into_iter().map(|(k, v)| (decode(&k), decode(&v))).collect()
}

fn sandbox_filter(q: &[(String, String)], running_only: bool) -> ApiResult<SandboxFilter> {
    let mut f = SandboxFilter { running: running_only, ..Default::default() };
    for (_, states) in q.iter().filter(|(k, _)| k == "state") {
        for s in states.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match s {
                "running" => f.running = true,
                "paused" if !running_only => f.paused = true,
                other => return Err(ApiError::bad_request(format!("invalid state {other:?}: use running or paused"))),
            }
        }
    }
    f.ascending = match query_value(q, "order") {
        None | Some("") | Some("desc") => false,
        Some("asc") => true,
        Some(other) => return Err(ApiError::bad_request(format!("invalid order {other:?}: use asc or desc"))),
    };
    if let Some(after) = query_value(q, "startedAfter").filter(|s| !s.is_empty()) {
        f.started_after = Some(ids::rfc3339_to_ns(after).ok_or_else(|| ApiError::bad_request("startedAfter must be an RFC 3339 date-time"))?);
    }
    f.template = query_value(q, "template").filter(|s| !s.is_empty()).map(str::to_string);
    f.metadata = query_value(q, "metadata").map(parse_metadata).unwrap_or_default();
    if let Some(token) = query_value(q, "nextToken").filter(|s| !s.is_empty()) {
        f.cursor = Some(pagination::decode(token, f.ascending)?);
    }
    Ok(f)
}

async fn list(state: AppState, raw: Option<String>, v2: bool) -> ApiResult<Response> {
    let q = parse_query(raw.as_deref());
    let filter = sandbox_filter(&q, !v2)?;
    let limit = if v2 { pagination::parse_limit(query_value(&q, "limit"))? } else { usize::MAX - 1 };
    let mut rows = state.manager.store().list_sandboxes(&filter, limit)?;
    let token = pagination::finish_page(&mut rows, limit, filter.ascending, |r| Cursor { ts: r.started_at, id: r.id.clone() });
    let items: Vec<SandboxDetail> = rows.iter().map(|r| SandboxDetail::new(r, false)).collect();
    Ok((pagination::page_headers(token.filter(|_| v2))?, Json(items)).into_response())
}

pub async fn list_v2(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    list(state, raw, true).await
}

/// Deprecated `GET /sandboxes`: running sandboxes only, no pagination.
pub async fn list_v1(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    list(state, raw, false).await
}

pub async fn detail(State(state): State<AppState>, PathId(id): PathId) -> ApiResult<Json<SandboxDetail>> {
    Ok(Json(SandboxDetail::new(&state.manager.get(&id)?, true)))
}

pub async fn kill(State(state): State<AppState>, PathId(id): PathId) -> ApiResult<StatusCode> {
    state.manager.kill(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn set_timeout(
    State(state): State<AppState>,
    PathId(id): PathId,
    JsonBody(body): JsonBody<TimeoutBody>,
) -> ApiResult<StatusCode> {
    let timeout = body.timeout.ok_or_else(|| ApiError::bad_request("timeout is required"))?;
    state.manager.set_timeout(&id, timeout)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn refresh(
    State(state): State<AppState>,
    PathId(id): PathId,
    OptJsonBody(body): OptJsonBody<TimeoutBody>,
) -> ApiResult<StatusCode> {
    state.manager.refresh(&id, body.duration.unwrap_or(V1_DEFAULT_TIMEOUT))?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn pause(
    State(state): State<AppState>,
    PathId(id): PathId,
    OptJsonBody(body): OptJsonBody<PauseBody>,
) -> ApiResult<StatusCode> {
    let keep = Keep::from_memory(body.memory);
    state.manager.pause(&id, keep, body.require_healthy_guest.unwrap_or(false)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /sandboxes/{id}/network`: replaces the egress rules of a running sandbox (204).
pub async fn update_network(
    State(state): State<AppState>,
    PathId(id): PathId,
    JsonBody(body): JsonBody<crate::network::NetworkRequest>,
) -> ApiResult<StatusCode> {
    state.manager.update_network(&id, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /sandboxes/{id}/connect` and `/v2/...`: 201 when it resumed, 200 when it was running.
pub async fn connect(
    State(state): State<AppState>,
    PathId(id): PathId,
    OptJsonBody(body): OptJsonBody<TimeoutBody>,
) -> ApiResult<Response> {
    let (row, resumed) = state.manager.connect(&id, body.timeout.unwrap_or(V2_DEFAULT_TIMEOUT), body.memory).await?;
    let status = if resumed { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(Sandbox::from(&row))).into_response())
}

/// Deprecated `POST /sandboxes/{id}/resume`.
pub async fn resume(
    State(state): State<AppState>,
    PathId(id): PathId,
    JsonBody(body): JsonBody<TimeoutBody>,
) -> ApiResult<Response> {
    let row = state.manager.resume(&id, body.timeout.unwrap_or(V1_DEFAULT_TIMEOUT), body.memory).await?;
    Ok((StatusCode::CREATED, Json(Sandbox::from(&row))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_filter_is_decoded_like_the_sdk_encodes_it() {
        // What e2b 2.63 sends for {"my key": "a&b=c", "suite": "x/y"}, after the outer
        // query-string decoding.
        let raw = "metadata=my%252520key%3Da%252526b%25253Dc%26suite%3Dx%252Fy&limit=1";
        let q = parse_query(Some(raw));
        let md = parse_metadata(query_value(&q, "metadata").unwrap());
        assert_eq!(md, vec![("my key".into(), "a&b=c".into()), ("suite".into(), "x/y".into())]);
    }
}
