//! Reading a VM's serial console log (`console.log`) incrementally, and turning its lines into
//! log records: envd's JSON lines keep their level, message and fields; anything else the
//! guest printed (kernel, programs writing to `/dev/console`) is an `info` line as is.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::db::{Level, LogRecord};

/// At most this much is read per call; the rest waits for the next tick.
const MAX_READ: u64 = 1 << 20;
/// Longer lines are cut (a guest can print anything to its console).
const MAX_LINE: usize = 16 << 10;

/// New console bytes, cut at the last complete line.
pub struct Chunk {
    pub bytes: Vec<u8>,
    /// Where the next read starts.
    pub end_offset: u64,
    /// When the console file was created (unix ms), if the filesystem knows.
    pub created_ms: Option<i64>,
}

impl Chunk {
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        self.bytes.split(|b| *b == b'\n').map(|l| {
            let l = &l[..l.len().min(MAX_LINE)];
            String::from_utf8_lossy(l).trim_end_matches(['\r', '\0']).to_string()
        })
    }
}

/// What was appended to `path` after `offset`: only complete lines unless `all`. `None` when
/// there is nothing new (or no file: the VM is gone).
pub fn read_new(path: &Path, offset: u64, all: bool) -> std::io::Result<Option<Chunk>> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    // A shorter file than our position is another file: start over.
    let offset = if meta.len() < offset { 0 } else { offset };
    if meta.len() == offset {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.take(MAX_READ).read_to_end(&mut bytes)?;
    let complete = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(i) => i + 1,
        // One line longer than a whole read: take it as it is.
        None if bytes.len() as u64 >= MAX_READ => bytes.len(),
        None => 0,
    };
    let keep = if all { bytes.len() } else { complete };
    if keep == 0 {
        return Ok(None);
    }
    bytes.truncate(keep);
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    let created_ms =
        meta.created().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_millis() as i64);
    Ok(Some(Chunk { bytes, end_offset: offset + keep as u64, created_ms }))
}

/// One console line as a record, with the time envd stamped on it (other lines have none;
/// see [`assign_times`]); `None` for blank lines.
pub fn parse(line: &str, sandbox_id: &str) -> Option<(Option<i64>, LogRecord)> {
    if line.trim().is_empty() {
        return None;
    }
    let mut fields = BTreeMap::new();
    fields.insert("sandboxID".to_string(), sandbox_id.to_string());
    if let Some((ts, level, message, envd_fields)) = parse_envd(line) {
        fields.extend(envd_fields);
        fields.insert("source".into(), "envd".into());
        return Some((ts, LogRecord { ts_ms: 0, level, message, fields, raw: line.to_string() }));
    }
    fields.insert("source".into(), "console".into());
    Some((None, LogRecord { ts_ms: 0, level: Level::Info, message: line.to_string(), fields, raw: line.to_string() }))
}

/// Times for the records of one read, in console order: a line without a time of its own was
/// printed before the next line that has one (or by now); then every time is kept within
/// `[floor_ms, max(now_ms, floor_ms)]` and never goes backwards. Returns the last time.
pub fn assign_times(records: &mut [(Option<i64>, LogRecord)], floor_ms: i64, now_ms: i64) -> i64 {
    let ceiling = now_ms.max(floor_ms);
    let mut next = ceiling;
    for (ts, rec) in records.iter_mut().rev() {
        if let Some(t) = ts {
            next = (*t).min(next);
        }
        rec.ts_ms = next;
    }
    let mut floor = floor_ms;
    for (_, rec) in records.iter_mut() {
        rec.ts_ms = rec.ts_ms.clamp(floor, ceiling);
        floor = rec.ts_ms;
    }
    floor
}

type EnvdLine = (Option<i64>, Level, String, BTreeMap<String, String>);

/// envd's JSON line (tracing-subscriber's JSON format):
/// `{"timestamp": "...", "level": "INFO", "fields": {"message": "...", ...}, "target": "envd::..."}`.
fn parse_envd(line: &str) -> Option<EnvdLine> {
    let start = line.find('{')?;
    let v: serde_json::Value = serde_json::from_str(&line[start..]).ok()?;
    let obj = v.as_object()?;
    let level = Level::parse(obj.get("level")?.as_str()?)?;
    let raw_fields = obj.get("fields")?.as_object()?;
    let ts = obj
        .get("timestamp")
        .and_then(|t| t.as_str())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis());
    let mut message = String::new();
    let mut fields = BTreeMap::new();
    for (k, v) in raw_fields {
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if k == "message" {
            message = text;
        } else {
            fields.insert(k.clone(), text);
        }
    }
    if let Some(target) = obj.get("target").and_then(|t| t.as_str()) {
        fields.insert("logger".into(), target.to_string());
    }
    Some((ts, level, message, fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed(lines: &[&str], floor: i64, now: i64) -> Vec<LogRecord> {
        let mut recs: Vec<_> = lines.iter().filter_map(|l| parse(l, "sbx")).collect();
        assign_times(&mut recs, floor, now);
        recs.into_iter().map(|(_, r)| r).collect()
    }

    fn envd(ts: &str, level: &str, message: &str) -> String {
        format!(
            r#"{{"timestamp":"{ts}","level":"{level}","fields":{{"message":"{message}","pid":7}},"target":"envd::x"}}"#
        )
    }

    fn ms(ts: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(ts).unwrap().timestamp_millis()
    }

    #[test]
    fn envd_lines_keep_level_message_and_fields() {
        let line = r#"{"timestamp":"2026-12-01T11:00:00.250Z","level":"WARN","fields":{"message":"request failed","code":"not_found","pid":7},"target":"envd::connect"}"#;
        let t = ms("2026-12-01T11:00:00.250Z");
        let r = &timed(&[line], 0, t + 1000)[0];
        assert_eq!((r.ts_ms, r.level, r.message.as_str()), (t, Level::Warn, "request failed"));
        assert_eq!(r.fields["code"], "not_found");
        assert_eq!(r.fields["pid"], "7");
        assert_eq!(r.fields["logger"], "envd::connect");
        assert_eq!(r.fields["source"], "envd");
        assert_eq!(r.fields["sandboxID"], "sbx");
        assert_eq!(r.raw, line);
    }

    #[test]
    fn times_stay_ordered_between_floor_and_now() {
        let (a, b) = ("2026-12-01T11:00:01Z", "2026-12-01T11:00:02Z");
        let now = ms(b) + 5000;
        // A console line takes the time of the envd line after it, or now at the end.
        let r = timed(&[&envd(a, "INFO", "one"), "kernel says", &envd(b, "ERROR", "two"), "tail"], 0, now);
        let times: Vec<i64> = r.iter().map(|r| r.ts_ms).collect();
        assert_eq!(times, [ms(a), ms(b), ms(b), now]);
        assert_eq!((r[1].level, r[1].fields["source"].as_str()), (Level::Info, "console"));
        // A stale guest clock (before /init) and a clock in the future are clamped.
        let old_new = [envd("2020-01-01T00:00:00Z", "INFO", "old"), envd("2099-01-01T00:00:00Z", "INFO", "new")];
        let r = timed(&[&old_new[0], &old_new[1]], ms(a), ms(b));
        assert_eq!([r[0].ts_ms, r[1].ts_ms], [ms(a), ms(b)]);
        assert!(timed(&["  \r"], 0, 9).is_empty());
    }

    #[test]
    fn only_complete_lines_are_taken_unless_all() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("console.log");
        std::fs::write(&p, b"one\r\ntwo\r\nthr").unwrap();
        let c = read_new(&p, 0, false).unwrap().unwrap();
        assert_eq!(c.lines().collect::<Vec<_>>(), ["one", "two"]);
        assert_eq!(c.end_offset, 10);
        assert!(read_new(&p, 10, false).unwrap().is_none());
        let c = read_new(&p, 10, true).unwrap().unwrap();
        assert_eq!(c.lines().collect::<Vec<_>>(), ["thr"]);
        assert!(read_new(&dir.path().join("gone"), 0, true).unwrap().is_none());
    }
}
