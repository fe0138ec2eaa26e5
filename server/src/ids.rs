//! Identifiers, secrets and timestamps.
//!
//! Invariants: sandbox IDs are `"i"` + 20 chars of `[a-z0-9]` (E2B's form); image (template)
//! IDs are 20 chars of `[a-z0-9]`; timestamps are Unix nanoseconds (`i64`) everywhere inside
//! sandboxd and RFC 3339 only on the wire.

use chrono::{DateTime, SecondsFormat, Utc};
use rand::{Rng, RngCore};

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn random_chars(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

pub fn sandbox_id() -> String {
    format!("i{}", random_chars(20))
}

pub fn image_id() -> String {
    random_chars(20)
}

/// 32 random bytes, hex: envd access tokens and API keys.
pub fn secret_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// E2B accepts `<sandboxID>-<clientID>` and keeps the part before `-`.
pub fn short_sandbox_id(id: &str) -> &str {
    id.split('-').next().unwrap_or(id)
}

/// Snapshot names (aliases): `^[a-z0-9-_]+$`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

pub fn now_ns() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

pub fn secs_to_ns(secs: i64) -> i64 {
    secs.saturating_mul(1_000_000_000)
}

pub fn ns_to_datetime(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

/// RFC 3339 with nanoseconds and `Z`, as Go's `RFC3339Nano` (without trimming zeros).
pub fn ns_to_rfc3339(ns: i64) -> String {
    ns_to_datetime(ns).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub fn rfc3339_to_ns(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc).timestamp_nanos_opt()
}
