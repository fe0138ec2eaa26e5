//! Volume routes: the REST half (`/volumes`, with the API key) and the content API
//! (`/volumecontent/{volumeID}/…`, with the volume's bearer token; `crate::volumes` holds the
//! rules). Content requests are outside the REST body cap: file uploads stream to disk.

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::extract::{JsonBody, PathId, parse_query, query_value};
use crate::error::{ApiError, ApiResult};
use crate::volumes::content::{EntryStat, Metadata, Tree};
use crate::volumes::{NewVolume, VolumeInfo};

/// Largest file one upload may write (`SANDBOXD_VOLUME_FILE_MAX_MB`, default 4096).
fn max_upload() -> u64 {
    std::env::var("SANDBOXD_VOLUME_FILE_MAX_MB").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(4096) << 20
}

pub async fn create(State(state): State<AppState>, JsonBody(body): JsonBody<NewVolume>) -> ApiResult<Response> {
    let v = state.volumes.create(state.manager.store(), body)?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<VolumeInfo>>> {
    state.volumes.list(state.manager.store()).map(Json)
}

pub async fn get(State(state): State<AppState>, PathId(id): PathId) -> ApiResult<Json<VolumeInfo>> {
    state.volumes.get(state.manager.store(), &id).map(Json)
}

pub async fn delete(State(state): State<AppState>, PathId(id): PathId) -> ApiResult<StatusCode> {
    state.volumes.delete(state.manager.store(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The query of a content request: `path` (required) and the optional settings.
struct ContentQuery {
    path: String,
    meta: Metadata,
    force: bool,
    depth: Option<u32>,
}

fn parse_content_query(raw: Option<&str>) -> ApiResult<ContentQuery> {
    let q = parse_query(raw);
    let path = query_value(&q, "path").ok_or_else(|| ApiError::bad_request("path is required"))?.to_string();
    let num = |k: &str| -> ApiResult<Option<u32>> {
        query_value(&q, k)
            .filter(|v| !v.is_empty())
            .map(|v| v.parse::<u32>().map_err(|_| ApiError::bad_request(format!("{k} must be a non-negative integer, got {v:?}"))))
            .transpose()
    };
    let force = match query_value(&q, "force") {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(v) => return Err(ApiError::bad_request(format!("force must be true or false, got {v:?}"))),
    };
    Ok(ContentQuery { meta: Metadata { uid: num("uid")?, gid: num("gid")?, mode: num("mode")? }, force, depth: num("depth")?, path })
}

fn tree(state: &AppState, id: &str, headers: &HeaderMap) -> ApiResult<Tree> {
    state.volumes.authorize(state.manager.store(), id, headers)
}

/// A content request that passed the volume's token check, with its parsed query.
pub struct Content {
    tree: Tree,
    q: ContentQuery,
}

impl FromRequestParts<AppState> for Content {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let q = parse_content_query(parts.uri.query())?;
        Ok(Content { tree: tree(state, &id, &parts.headers)?, q })
    }
}

pub async fn stat(Content { tree, q }: Content) -> ApiResult<Json<EntryStat>> {
    tree.stat(&q.path).map(Json)
}

pub async fn list_dir(Content { tree, q }: Content) -> ApiResult<Json<Vec<EntryStat>>> {
    tree.list(&q.path, q.depth).map(Json)
}

pub async fn make_dir(Content { tree, q }: Content) -> ApiResult<Response> {
    let stat = tree.make_dir(&q.path, q.meta, q.force)?;
    Ok((StatusCode::CREATED, Json(stat)).into_response())
}

pub async fn update_metadata(Content { tree, q }: Content, JsonBody(meta): JsonBody<Metadata>) -> ApiResult<Json<EntryStat>> {
    tree.update_metadata(&q.path, meta).map(Json)
}

pub async fn remove(Content { tree, q }: Content) -> ApiResult<StatusCode> {
    tree.remove(&q.path)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn read_file(Content { tree, q }: Content) -> ApiResult<Response> {
    let file = tokio::fs::File::from_std(tree.file_for_read(&q.path)?);
    let len = file.metadata().await?.len();
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok(([(header::CONTENT_TYPE, "application/octet-stream".to_string()), (header::CONTENT_LENGTH, len.to_string())], body)
        .into_response())
}

/// `PUT …/file`: the body streams into a temporary file that replaces the target only once it
/// is complete and fsynced. A refused upload still reads the body (bounded) before answering,
/// so the client sees the error instead of a broken pipe.
pub async fn write_file(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Response {
    match write(&state, &id, &headers, raw.as_deref(), body).await {
        Ok(stat) => (StatusCode::CREATED, Json(stat)).into_response(),
        Err((e, Some(rest))) => {
            super::body_cap::drain(rest).await;
            e.into_response()
        }
        Err((e, None)) => e.into_response(),
    }
}

async fn write(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    raw: Option<&str>,
    body: Body,
) -> Result<EntryStat, (ApiError, Option<Body>)> {
    let prepared = parse_content_query(raw)
        .and_then(|q| tree(state, id, headers).map(|t| (q, t)))
        .and_then(|(q, t)| t.prepare_write(&q.path, &q.meta, q.force).map(|target| (q, t, target)));
    let (q, t, target) = match prepared {
        Ok(p) => p,
        Err(e) => return Err((e, Some(body))),
    };
    let tmp = t.temp_path();
    let max = max_upload();
    let mut body = body;
    let copied = super::body_cap::stream_to_file(&mut body, &tmp, max, "SANDBOXD_VOLUME_FILE_MAX_MB", |_| Ok(())).await;
    let result = copied.and_then(|_| t.publish(&tmp, target, q.meta));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| (e, Some(body)))
}
