//! Metrics and logs routes: `GET /sandboxes/{id}/metrics`, `GET /sandboxes/metrics`,
//! `GET /sandboxes/{id}/logs` (v1) and `GET /v2/sandboxes/{id}/logs`, with E2B's shapes,
//! defaults and errors. They answer for running, paused and recently killed sandboxes (see
//! `telemetry` for the retention); an unknown sandbox is a 404.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::{RawQuery, State};
use chrono::SecondsFormat;
use serde::Serialize;

use super::AppState;
use super::extract::{PathId, parse_query, query_value};
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::telemetry::{Direction, Level, LogQuery, LogRecord, MAX_AGE_MS, Sample, now_ms};

/// `GET /sandboxes/metrics` takes at most this many IDs (E2B's limit).
const MAX_SANDBOX_IDS: usize = 100;
/// Default and (v2) maximum number of log entries.
const LOGS_LIMIT: u32 = 1000;
/// Longest `search` string (E2B's `maxLength`).
const MAX_SEARCH: usize = 256;
/// Latest time E2B accepts in a metrics range (ClickHouse's `DateTime64` maximum,
/// 2299-12-31T23:59:59Z).
const MAX_TIME_SECS: i64 = 10_413_791_999;

/// E2B's `SandboxMetric`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxMetric {
    timestamp: String,
    timestamp_unix: i64,
    cpu_count: u32,
    cpu_used_pct: f64,
    mem_used: u64,
    mem_total: u64,
    mem_cache: u64,
    disk_used: u64,
    disk_total: u64,
}

impl SandboxMetric {
    fn new(secs: i64, s: Sample) -> Self {
        Self {
            timestamp: ids::ns_to_datetime(secs.saturating_mul(1_000_000_000))
                .to_rfc3339_opts(SecondsFormat::Secs, true),
            timestamp_unix: secs,
            cpu_count: s.cpu_count,
            cpu_used_pct: s.cpu_used_pct,
            mem_used: s.mem_used,
            mem_total: s.mem_total,
            mem_cache: s.mem_cache,
            disk_used: s.disk_used,
            disk_total: s.disk_total,
        }
    }
}

#[derive(Serialize)]
pub struct SandboxesWithMetrics {
    sandboxes: BTreeMap<String, SandboxMetric>,
}

/// E2B's `SandboxLog` (v1 `logs`: the raw line).
#[derive(Serialize)]
pub struct SandboxLog {
    timestamp: String,
    line: String,
}

/// E2B's `SandboxLogEntry`.
#[derive(Serialize)]
pub struct SandboxLogEntry {
    timestamp: String,
    message: String,
    level: &'static str,
    fields: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxLogs {
    logs: Vec<SandboxLog>,
    log_entries: Vec<SandboxLogEntry>,
}

#[derive(Serialize)]
pub struct SandboxLogsV2 {
    logs: Vec<SandboxLogEntry>,
}

/// Log times have millisecond precision: a fixed width, so they also sort as strings.
fn ms_to_rfc3339(ms: i64) -> String {
    ids::ns_to_datetime(ms.saturating_mul(1_000_000)).to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl From<&LogRecord> for SandboxLogEntry {
    fn from(r: &LogRecord) -> Self {
        Self {
            timestamp: ms_to_rfc3339(r.ts_ms),
            message: r.message.clone(),
            level: r.level.as_str(),
            fields: r.fields.clone(),
        }
    }
}

/// An optional integer query parameter in `min..=max`; anything else is a 400.
fn int_param(q: &[(String, String)], name: &str, min: i64, max: i64) -> ApiResult<Option<i64>> {
    let Some(raw) = query_value(q, name) else { return Ok(None) };
    match raw.trim().parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        Ok(_) => Err(ApiError::bad_request(format!("{name} must be between {min} and {max}, got {raw}"))),
        Err(_) => Err(ApiError::bad_request(format!("{name} must be an integer, got {raw:?}"))),
    }
}

/// The sandbox's short ID if it is known: live, or killed within the retention.
fn known_sandbox(state: &AppState, id: &str) -> ApiResult<String> {
    let id = ids::short_sandbox_id(id.trim());
    if state.manager.telemetry().known(id)? { Ok(id.to_string()) } else { Err(ApiError::sandbox_not_found(id)) }
}

/// E2B's bucket size for a range (fewer than ~1000 points), except that the finest step is
/// the sampling interval (E2B's is 5 s, the default interval).
fn step_secs(range_secs: i64, interval_secs: i64) -> i64 {
    const H: i64 = 3600;
    let step = match range_secs {
        r if r < H => interval_secs,
        r if r < 6 * H => 30,
        r if r < 12 * H => 60,
        r if r < 24 * H => 120,
        r if r < 7 * 24 * H => 300,
        _ => 900,
    };
    step.max(interval_secs).max(1)
}

/// `GET /sandboxes/{id}/metrics?start&end` (unix seconds, inclusive). Without them the range
/// is the sandbox's whole series, as in E2B.
pub async fn sandbox_metrics(
    State(state): State<AppState>,
    PathId(id): PathId,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Vec<SandboxMetric>>> {
    let q = parse_query(raw.as_deref());
    let start = int_param(&q, "start", 0, MAX_TIME_SECS)?;
    let end = int_param(&q, "end", 0, MAX_TIME_SECS)?;
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        return Err(ApiError::bad_request("Invalid time range for metrics: start time cannot be after end time"));
    }
    let id = known_sandbox(&state, &id)?;
    let t = state.manager.telemetry();
    let Some((first_ms, last_ms)) = t.metrics_range(&id)? else { return Ok(Json(Vec::new())) };
    let start_s = start.unwrap_or(first_ms / 1000);
    let end_s = end.unwrap_or(last_ms / 1000);
    if start_s > end_s {
        // Only one bound given, and it lies beyond the series: nothing in between.
        return Ok(Json(Vec::new()));
    }
    let interval = t.settings().interval.as_secs() as i64;
    let step = step_secs(end_s - start_s, interval);
    let rows = t.metrics(&id, start_s * 1000, end_s * 1000 + 999, step)?;
    Ok(Json(rows.into_iter().map(|(secs, s)| SandboxMetric::new(secs, s)).collect()))
}

/// `GET /sandboxes/metrics?sandbox_ids=a,b`: the latest sample of each listed sandbox that has
/// one (others are left out, as in E2B).
pub async fn sandboxes_metrics(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<SandboxesWithMetrics>> {
    let q = parse_query(raw.as_deref());
    let ids: Vec<&str> = q
        .iter()
        .filter(|(k, _)| k == "sandbox_ids")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if ids.is_empty() {
        return Err(ApiError::bad_request("sandbox_ids is required: a comma-separated list of sandbox IDs"));
    }
    if ids.len() > MAX_SANDBOX_IDS {
        return Err(ApiError::bad_request(format!("Too many sandboxes requested, maximum is {MAX_SANDBOX_IDS}")));
    }
    let mut seen = BTreeSet::new();
    if let Some(dup) = ids.iter().map(|id| ids::short_sandbox_id(id)).find(|id| !seen.insert(*id)) {
        return Err(ApiError::bad_request(format!("sandbox_ids must be unique: {dup} is listed twice")));
    }
    let t = state.manager.telemetry();
    let mut sandboxes = BTreeMap::new();
    for id in seen {
        if t.known(id)?
            && let Some((ms, s)) = t.latest_metric(id)?
        {
            sandboxes.insert(id.to_string(), SandboxMetric::new(ms / 1000, s));
        }
    }
    Ok(Json(SandboxesWithMetrics { sandboxes }))
}

fn limit_param(q: &[(String, String)], max: i64) -> ApiResult<u32> {
    Ok(int_param(q, "limit", 0, max)?.map_or(LOGS_LIMIT, |n| n as u32))
}

/// Deprecated `GET /sandboxes/{id}/logs?start&limit`: entries from `start` (unix ms, default
/// 7 days ago) on, oldest first, both raw (`logs`) and structured (`logEntries`).
pub async fn logs_v1(
    State(state): State<AppState>,
    PathId(id): PathId,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<SandboxLogs>> {
    let q = parse_query(raw.as_deref());
    let start = int_param(&q, "start", 0, i64::MAX)?;
    let limit = limit_param(&q, i64::from(u32::MAX))?;
    let id = known_sandbox(&state, &id)?;
    let now = now_ms();
    let query = LogQuery {
        start_ms: start.unwrap_or(now - MAX_AGE_MS),
        end_ms: now,
        limit,
        direction: Direction::Forward,
        min_level: None,
        search: None,
    };
    let records = state.manager.telemetry().logs(&id, &query)?;
    Ok(Json(SandboxLogs {
        logs: records.iter().map(|r| SandboxLog { timestamp: ms_to_rfc3339(r.ts_ms), line: r.raw.clone() }).collect(),
        log_entries: records.iter().map(SandboxLogEntry::from).collect(),
    }))
}

/// `GET /v2/sandboxes/{id}/logs?cursor&limit&direction&level&search`: up to `limit` entries
/// (≤ 1000) from `cursor` (unix ms, inclusive) onwards (`forward`) or back from it
/// (`backward`, the default, newest first); without a cursor, the last 7 days.
pub async fn logs_v2(
    State(state): State<AppState>,
    PathId(id): PathId,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<SandboxLogsV2>> {
    let q = parse_query(raw.as_deref());
    let cursor = int_param(&q, "cursor", 0, i64::MAX)?;
    let limit = limit_param(&q, i64::from(LOGS_LIMIT))?;
    let direction = match query_value(&q, "direction") {
        None => Direction::Backward,
        Some("forward") => Direction::Forward,
        Some("backward") => Direction::Backward,
        Some(other) => {
            return Err(ApiError::bad_request(format!("invalid direction {other:?}: use forward or backward")));
        }
    };
    let min_level =
        match query_value(&q, "level") {
            None => None,
            Some(l) => {
                Some(["debug", "info", "warn", "error"].contains(&l).then(|| Level::parse(l)).flatten().ok_or_else(
                    || ApiError::bad_request(format!("invalid level {l:?}: use debug, info, warn or error")),
                )?)
            }
        };
    let search = query_value(&q, "search").filter(|s| !s.is_empty()).map(str::to_string);
    if search.as_ref().is_some_and(|s| s.chars().count() > MAX_SEARCH) {
        return Err(ApiError::bad_request(format!("search must be at most {MAX_SEARCH} characters")));
    }
    let id = known_sandbox(&state, &id)?;
    // E2B's window: 7 days from (or up to) the cursor, never older than 7 days ago.
    let now = now_ms();
    let oldest = now - MAX_AGE_MS;
    let (start_ms, end_ms) = match (cursor, direction) {
        (None, _) => (oldest, now),
        (Some(c), Direction::Forward) => (c.max(oldest), c.saturating_add(MAX_AGE_MS)),
        (Some(c), Direction::Backward) => (c.saturating_sub(MAX_AGE_MS).max(oldest), c.max(oldest)),
    };
    let query = LogQuery { start_ms, end_ms, limit, direction, min_level, search };
    let records = state.manager.telemetry().logs(&id, &query)?;
    Ok(Json(SandboxLogsV2 { logs: records.iter().map(SandboxLogEntry::from).collect() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_e2b_above_the_sampling_interval() {
        assert_eq!(step_secs(0, 5), 5);
        assert_eq!(step_secs(59 * 60, 1), 1);
        assert_eq!(step_secs(2 * 3600, 1), 30);
        assert_eq!(step_secs(2 * 3600, 45), 45);
        assert_eq!(step_secs(30 * 24 * 3600, 5), 900);
    }

    #[test]
    fn int_params_refuse_garbage_and_out_of_range() {
        let q = parse_query(Some("start=12&end=abc&neg=-1"));
        assert_eq!(int_param(&q, "start", 0, 100).unwrap(), Some(12));
        assert_eq!(int_param(&q, "missing", 0, 100).unwrap(), None);
        assert_eq!(int_param(&q, "end", 0, 100).unwrap_err().status, 400);
        assert_eq!(int_param(&q, "neg", 0, 100).unwrap_err().status, 400);
        assert_eq!(int_param(&q, "start", 0, 10).unwrap_err().status, 400);
    }
}
