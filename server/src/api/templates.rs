//! Template routes (E2B's template API, as the official SDKs' `Template` builder uses it):
//! build requests, file uploads, build start/status/logs, aliases, tags, list, get, delete.
//! The logic is in `template::build`; this only translates HTTP.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::extract::{JsonBody, PathId, parse_query, query_value};
use crate::error::{ApiError, ApiResult};
use crate::ids::ns_to_rfc3339;
use crate::store::{BuildRow, LogRow, NAMESPACE};
use crate::template::build::{BuildRequest, BuildStart, TemplateView};

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn names(aliases: &[String]) -> Vec<String> {
    aliases.iter().map(|a| format!("{NAMESPACE}/{a}")).collect()
}

pub async fn request_build(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<BuildRequest>,
) -> ApiResult<Response> {
    let r = state.builds.request(req)?;
    let aliases = vec![r.alias.clone()];
    let body = json!({
        "templateID": r.template_id,
        "buildID": r.build_id,
        "public": false,
        "aliases": aliases,
        "names": names(&aliases),
        "tags": r.tags,
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// The public base of this server as the client reached it (for upload URLs).
fn base_url(headers: &HeaderMap) -> String {
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let proto = headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()).unwrap_or("http");
    format!("{proto}://{host}")
}

pub async fn file_link(
    State(state): State<AppState>,
    Path((template_id, hash)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let template_id = decode(&template_id);
    let present = state.builds.file_present(&template_id, &hash)?;
    let t = state.builds.find_template(&template_id)?;
    let token = state.builds.upload_token(&t.id, &hash);
    let url = format!("{}/templates/{}/files/{hash}/upload?token={token}", base_url(&headers), t.id);
    Ok((StatusCode::CREATED, Json(json!({"present": present, "url": url}))).into_response())
}

/// `PUT` of the build-context archive to the URL `file_link` handed out (no API key: the URL
/// is signed, as E2B's pre-signed storage URLs are).
pub async fn upload(
    State(state): State<AppState>,
    Path((template_id, hash)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    body: axum::body::Body,
) -> ApiResult<StatusCode> {
    let q = parse_query(raw.as_deref());
    let token = query_value(&q, "token").unwrap_or_default();
    state.builds.store_file(&decode(&template_id), &hash, token, body).await?;
    Ok(StatusCode::OK)
}

pub async fn start_build(
    State(state): State<AppState>,
    Path((template_id, build_id)): Path<(String, String)>,
    JsonBody(start): JsonBody<BuildStart>,
) -> ApiResult<StatusCode> {
    state.builds.trigger(&decode(&template_id), &build_id, start)?;
    Ok(StatusCode::ACCEPTED)
}

fn level_rank(l: &str) -> Option<u8> {
    match l {
        "debug" => Some(0),
        "info" => Some(1),
        "warn" => Some(2),
        "error" => Some(3),
        _ => None,
    }
}

fn min_level(q: &[(String, String)]) -> ApiResult<u8> {
    match query_value(q, "level").filter(|l| !l.is_empty()) {
        None => Ok(0),
        Some(l) => level_rank(l)
            .ok_or_else(|| ApiError::bad_request(format!("invalid level {l:?}: debug, info, warn or error"))),
    }
}

fn entry(l: &LogRow) -> Value {
    let mut v = json!({"timestamp": ns_to_rfc3339(l.ts), "level": l.level, "message": l.message});
    if let Some(step) = &l.step {
        v["step"] = json!(step);
    }
    v
}

fn int_param(q: &[(String, String)], key: &str, default: i64) -> ApiResult<i64> {
    match query_value(q, key).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| ApiError::bad_request(format!("{key} must be an integer"))),
    }
}

pub async fn build_status(
    State(state): State<AppState>,
    Path((template_id, build_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = parse_query(raw.as_deref());
    let offset = int_param(&q, "logsOffset", 0)?;
    let limit = int_param(&q, "limit", 100)?;
    if !(0..=100).contains(&limit) || offset < 0 {
        return Err(ApiError::bad_request("limit must be between 0 and 100 and logsOffset not negative"));
    }
    let min = min_level(&q)?;
    let b = state.builds.status(&decode(&template_id), &build_id)?;
    // `logsOffset` counts every line; a level filter only hides lines from this page.
    let rows = state.builds.logs(&b.id, offset, limit)?;
    let shown: Vec<&LogRow> = rows.iter().filter(|l| level_rank(&l.level).unwrap_or(1) >= min).collect();
    let mut body = json!({
        "templateID": b.template_id,
        "buildID": b.id,
        "status": b.status,
        "logs": shown.iter().map(|l| format!("[{}] {}", ns_to_rfc3339(l.ts), l.message)).collect::<Vec<_>>(),
        "logEntries": shown.iter().map(|l| entry(l)).collect::<Vec<_>>(),
    });
    if b.status == "error" {
        let reason: Value = b
            .reason
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or(json!({"message": "build failed"}));
        let errors: Vec<Value> =
            state.builds.logs(&b.id, 0, 100_000)?.iter().filter(|l| l.level == "error").map(entry).collect();
        body["reason"] = json!({"message": reason["message"], "step": reason["step"], "logEntries": errors});
    }
    Ok(Json(body))
}

pub async fn build_logs(
    State(state): State<AppState>,
    Path((template_id, build_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = parse_query(raw.as_deref());
    let cursor = int_param(&q, "cursor", 0)?;
    let limit = int_param(&q, "limit", 100)?;
    if !(0..=100).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 0 and 100"));
    }
    let backward = match query_value(&q, "direction").filter(|d| !d.is_empty()) {
        None | Some("forward") => false,
        Some("backward") => true,
        Some(d) => {
            return Err(ApiError::bad_request(format!("invalid direction {d:?}: forward or backward")));
        }
    };
    match query_value(&q, "source").filter(|s| !s.is_empty()) {
        None | Some("temporary") | Some("persistent") => {}
        Some(s) => {
            return Err(ApiError::bad_request(format!("invalid source {s:?}: temporary or persistent")));
        }
    }
    let min = min_level(&q)?;
    let b = state.builds.status(&decode(&template_id), &build_id)?;
    // `cursor` is a timestamp in unix milliseconds: entries at or after it (forward) or at or
    // before it (backward, newest first).
    let cursor_ns = cursor.saturating_mul(1_000_000);
    let all = state.builds.logs(&b.id, 0, 100_000)?;
    let mut picked: Vec<&LogRow> = all
        .iter()
        .filter(|l| level_rank(&l.level).unwrap_or(1) >= min)
        .filter(|l| if backward { cursor == 0 || l.ts <= cursor_ns } else { l.ts >= cursor_ns })
        .collect();
    if backward {
        picked.reverse();
    }
    picked.truncate(limit as usize);
    Ok(Json(json!({"logs": picked.iter().map(|l| entry(l)).collect::<Vec<_>>()})))
}

/// `Template.exists`: a template built through the API or a snapshot is the team's own; the
/// templates of the templates directory (`base`, ...) answer as E2B's public templates.
pub async fn alias(State(state): State<AppState>, PathId(alias): PathId) -> ApiResult<Json<Value>> {
    match state.builds.exists_alias(&alias) {
        Ok(id) => Ok(Json(json!({"templateID": id, "public": false}))),
        Err(e) if e.status == StatusCode::NOT_FOUND => match state.manager.resolve_template(&alias) {
            Ok((_, id, name)) => {
                let public = name.as_deref() == Some(id.as_str());
                Ok(Json(json!({"templateID": id, "public": public})))
            }
            Err(_) => Err(e),
        },
        Err(e) => Err(e),
    }
}

fn build_json(b: &BuildRow) -> Value {
    let mut v = json!({
        "buildID": b.id,
        "status": b.status,
        "createdAt": ns_to_rfc3339(b.created_at),
        "updatedAt": ns_to_rfc3339(b.updated_at),
        "cpuCount": b.cpu_count.unwrap_or(crate::template::BASE_VCPUS),
        "memoryMB": b.memory_mb.unwrap_or(crate::template::BASE_MEMORY_MB),
        "diskSizeMB": b.disk_size_mb,
        "envdVersion": crate::vm::ENVD_VERSION,
    });
    if let Some(f) = b.finished_at {
        v["finishedAt"] = json!(ns_to_rfc3339(f));
    }
    v
}

fn template_json(t: &TemplateView) -> Value {
    json!({
        "templateID": t.row.id,
        "buildID": t.latest.id,
        "cpuCount": t.latest.cpu_count.unwrap_or(crate::template::BASE_VCPUS),
        "memoryMB": t.latest.memory_mb.unwrap_or(crate::template::BASE_MEMORY_MB),
        "diskSizeMB": t.latest.disk_size_mb,
        "public": false,
        "aliases": t.aliases,
        "names": names(&t.aliases),
        "createdAt": ns_to_rfc3339(t.row.created_at),
        "updatedAt": ns_to_rfc3339(t.row.updated_at),
        "createdBy": null,
        "lastSpawnedAt": null,
        "spawnCount": 0,
        "buildCount": t.builds.len(),
        "envdVersion": crate::vm::ENVD_VERSION,
        "buildStatus": t.latest.status,
    })
}

pub async fn list(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    let q = parse_query(raw.as_deref());
    // One team: every template is the caller's; another team's ID has none.
    if query_value(&q, "teamID").is_some_and(|t| !t.is_empty() && t != NAMESPACE) {
        return Ok(Json(json!([])));
    }
    let items: Vec<Value> = state.builds.list()?.iter().map(template_json).collect();
    Ok(Json(Value::Array(items)))
}

pub async fn get(State(state): State<AppState>, PathId(id): PathId, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    let q = parse_query(raw.as_deref());
    let limit = int_param(&q, "limit", 100)?;
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 100"));
    }
    let start = int_param(&q, "nextToken", 0)?;
    if start < 0 {
        return Err(ApiError::bad_request("invalid nextToken"));
    }
    let t = state.builds.get(&id)?;
    let mut body = template_json(&t);
    let page: Vec<Value> = t.builds.iter().skip(start as usize).take(limit as usize).map(build_json).collect();
    body["builds"] = Value::Array(page);
    Ok(Json(body))
}

pub async fn delete(State(state): State<AppState>, PathId(id): PathId) -> ApiResult<StatusCode> {
    if !state.builds.delete(&id)? {
        state.manager.delete_snapshot(&id)?;
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn tags(State(state): State<AppState>, PathId(id): PathId) -> ApiResult<Json<Value>> {
    let items: Vec<Value> = state
        .builds
        .tags(&id)?
        .into_iter()
        .map(|(tag, build, at)| json!({"tag": tag, "buildID": build, "createdAt": ns_to_rfc3339(at)}))
        .collect();
    Ok(Json(Value::Array(items)))
}

#[derive(Deserialize)]
pub struct AssignTags {
    target: String,
    tags: Vec<String>,
}

#[derive(Deserialize)]
pub struct RemoveTags {
    name: String,
    tags: Vec<String>,
}

pub async fn assign_tags(State(state): State<AppState>, JsonBody(req): JsonBody<AssignTags>) -> ApiResult<Response> {
    let (build_id, tags) = state.builds.assign_tags(&req.target, &req.tags)?;
    Ok((StatusCode::CREATED, Json(json!({"tags": tags, "buildID": build_id}))).into_response())
}

pub async fn remove_tags(State(state): State<AppState>, JsonBody(req): JsonBody<RemoveTags>) -> ApiResult<StatusCode> {
    state.builds.remove_tags(&req.name, &req.tags)?;
    Ok(StatusCode::NO_CONTENT)
}
