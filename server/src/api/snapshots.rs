//! Snapshot routes: create, list and fork (`DELETE /templates/{id}` is in `templates.rs`).

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::extract::{OptJsonBody, PathId, parse_query, query_value};
use crate::error::ApiResult;
use crate::manager::Keep;
use crate::models::{ForkResult, Sandbox, SnapshotInfo, TimeoutBody};
use crate::pagination::{self, Cursor};

/// `SandboxForkRequest.timeout` default.
const FORK_DEFAULT_TIMEOUT: i64 = 15;

pub async fn create(
    State(state): State<AppState>,
    PathId(id): PathId,
    OptJsonBody(body): OptJsonBody<TimeoutBody>,
) -> ApiResult<Response> {
    let img = state.manager.snapshot(&id, body.name.as_deref(), Keep::from_memory(body.memory)).await?;
    Ok((StatusCode::CREATED, Json(SnapshotInfo::from(&img))).into_response())
}

pub async fn list(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let q = parse_query(raw.as_deref());
    let (limit, cursor) = pagination::parse_page(query_value(&q, "limit"), query_value(&q, "nextToken"))?;
    let sandbox_id = query_value(&q, "sandboxID").filter(|s| !s.is_empty());
    let name = query_value(&q, "name").filter(|s| !s.is_empty());
    let mut rows = state.manager.list_snapshots(sandbox_id, name, cursor.as_ref(), limit)?;
    let token = pagination::finish_page(&mut rows, limit, false, |r| Cursor { ts: r.created_at, id: r.id.clone() });
    let items: Vec<SnapshotInfo> = rows.iter().map(SnapshotInfo::from).collect();
    Ok((pagination::page_headers(token)?, Json(items)).into_response())
}

pub async fn fork(
    State(state): State<AppState>,
    PathId(id): PathId,
    OptJsonBody(body): OptJsonBody<TimeoutBody>,
) -> ApiResult<Response> {
    let results = state
        .manager
        .fork(&id, body.count.unwrap_or(1), body.timeout.unwrap_or(FORK_DEFAULT_TIMEOUT))
        .await?;
    let items: Vec<ForkResult> = results
        .into_iter()
        .map(|r| match r {
            Ok(row) => ForkResult { sandbox: Some(Sandbox::from(&row)), error: None },
            Err(e) => ForkResult { sandbox: None, error: Some(e.body()) },
        })
        .collect();
    Ok((StatusCode::CREATED, Json(items)).into_response())
}
