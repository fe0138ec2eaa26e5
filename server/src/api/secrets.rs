//! Secret routes (`crate::secrets` holds the rules): create 201, get / update 200, delete 204,
//! list newest first with keyset pagination (`X-Next-Token`).

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::extract::{JsonBody, PathId, parse_query, query_value};
use crate::error::ApiResult;
use crate::pagination::{self, Cursor};
use crate::secrets::{self, NewSecret, SecretInfo, SecretUpdate};

pub async fn create(State(state): State<AppState>, JsonBody(body): JsonBody<NewSecret>) -> ApiResult<Response> {
    let info = secrets::create(state.manager.store(), body)?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

pub async fn get(State(state): State<AppState>, PathId(id): PathId) -> ApiResult<Json<SecretInfo>> {
    secrets::get(state.manager.store(), &id).map(Json)
}

pub async fn update(
    State(state): State<AppState>,
    PathId(id): PathId,
    JsonBody(body): JsonBody<SecretUpdate>,
) -> ApiResult<Json<SecretInfo>> {
    secrets::update(state.manager.store(), &id, body).map(Json)
}

pub async fn destroy(State(state): State<AppState>, PathId(id): PathId) -> ApiResult<StatusCode> {
    secrets::destroy(state.manager.store(), &id)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let q = parse_query(raw.as_deref());
    let (limit, cursor) = pagination::parse_page(query_value(&q, "limit"), query_value(&q, "nextToken"))?;
    let mut rows = secrets::list(state.manager.store(), cursor.as_ref(), limit)?;
    let token = pagination::finish_page(&mut rows, limit, false, |r| Cursor { ts: r.created_at, id: r.id.clone() });
    let items: Vec<SecretInfo> = rows.into_iter().map(SecretInfo::from).collect();
    Ok((pagination::page_headers(token)?, Json(items)).into_response())
}
