//! The envd wire protocol: proto3-JSON messages of `process.Process` and
//! `filesystem.Filesystem`, Connect error codes, and the Connect streaming
//! envelope codec.
//!
//! This module depends only on `serde`, `serde_json`, `base64` and `bytes`, so
//! the client crate can reuse it verbatim through `#[path = ".../proto.rs"]`.
//!
//! Proto3 JSON rules honoured here (they are what the official SDKs send and expect):
//! - field names are lowerCamelCase on output; snake_case is accepted on input;
//! - `bytes` are standard base64 (URL-safe and unpadded input is accepted too);
//! - enums are written as their names and read from names or numbers;
//! - 64-bit integers are written as strings and read from strings or numbers;
//! - `null` means "default" for every field, unknown fields are ignored;
//! - a `oneof` is a plain key inside its parent (`{"start":{"pid":1}}`).
//!
//! Request messages model a `oneof` as a struct of optional fields (so a
//! permissive reader never fails on what the sender chose); response messages
//! model it as an enum, which serializes to exactly one key.

// Shared with the client crate: not every message is used on both sides.
#![allow(dead_code)]

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

// ---------------------------------------------------------------------------------------------
// Field helpers

/// Treats JSON `null` as the field's default, as proto3 JSON requires.
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Integers arrive as JSON numbers or (canonically for 64-bit) as strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrStr {
    I(i64),
    U(u64),
    F(f64),
    S(String),
}

fn num_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    use serde::de::Error;
    match Option::<NumOrStr>::deserialize(d)? {
        None => Ok(0),
        Some(NumOrStr::I(v)) => Ok(v),
        Some(NumOrStr::U(v)) => i64::try_from(v).map_err(D::Error::custom),
        Some(NumOrStr::F(v)) if v.fract() == 0.0 => Ok(v as i64),
        Some(NumOrStr::F(v)) => Err(D::Error::custom(format!("not an integer: {v}"))),
        Some(NumOrStr::S(s)) => s.trim().parse().map_err(D::Error::custom),
    }
}

/// `uint32` field: number or string, `null` as 0.
pub fn de_u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    u32::try_from(num_i64(d)?).map_err(serde::de::Error::custom)
}

/// Optional `uint32` (a `oneof` member): absent or `null` stays `None`.
pub fn de_opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    use serde::de::Error;
    match Option::<NumOrStr>::deserialize(d)? {
        None => Ok(None),
        Some(NumOrStr::I(v)) => u32::try_from(v).map(Some).map_err(D::Error::custom),
        Some(NumOrStr::U(v)) => u32::try_from(v).map(Some).map_err(D::Error::custom),
        Some(NumOrStr::F(v)) => Ok(Some(v as u32)),
        Some(NumOrStr::S(s)) => s.trim().parse().map(Some).map_err(D::Error::custom),
    }
}

/// `int32` / `sint32` field.
pub fn de_i32<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    i32::try_from(num_i64(d)?).map_err(serde::de::Error::custom)
}

/// `int64` field written as a string, as proto3 JSON prescribes.
pub mod int64 {
    use super::*;
    pub fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        super::num_i64(d)
    }
}

/// `bytes` fields: base64 on the wire.
pub mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

    use super::*;

    pub fn encode(v: &[u8]) -> String {
        STANDARD.encode(v)
    }

    /// Accepts every base64 flavour proto3 JSON parsers accept.
    pub fn decode(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
        STANDARD
            .decode(s)
            .or_else(|_| STANDARD_NO_PAD.decode(s))
            .or_else(|_| URL_SAFE.decode(s))
            .or_else(|_| URL_SAFE_NO_PAD.decode(s))
    }

    pub fn serialize<S: Serializer>(v: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let s = Option::<String>::deserialize(d)?.unwrap_or_default();
        decode(&s)
            .map(Bytes::from)
            .map_err(serde::de::Error::custom)
    }

    /// For `Option<Bytes>` oneof members in requests.
    pub mod opt {
        use super::*;
        pub fn serialize<S: Serializer>(v: &Option<Bytes>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(b) => s.serialize_str(&encode(b)),
                None => s.serialize_none(),
            }
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Bytes>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) => decode(&s)
                    .map(|v| Some(Bytes::from(v)))
                    .map_err(serde::de::Error::custom),
            }
        }
    }
}

/// Declares a proto enum that serializes as its name and parses from its name or number.
macro_rules! proto_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $num:literal => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub enum $name {
            #[default]
            $($variant),+
        }
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
            pub fn number(self) -> i32 {
                match self { $(Self::$variant => $num),+ }
            }
            pub fn from_number(n: i64) -> Option<Self> {
                match n { $($num => Some(Self::$variant),)+ _ => None }
            }
            pub fn from_name(s: &str) -> Option<Self> {
                match s { $($text => Some(Self::$variant),)+ _ => None }
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                use serde::de::Error;
                match Option::<NumOrStr>::deserialize(d)? {
                    None => Ok(Self::default()),
                    Some(NumOrStr::S(s)) => Self::from_name(&s)
                        .ok_or_else(|| D::Error::custom(format!("unknown {} value {s:?}", stringify!($name)))),
                    Some(NumOrStr::I(n)) => Self::from_number(n)
                        .ok_or_else(|| D::Error::custom(format!("unknown {} value {n}", stringify!($name)))),
                    Some(NumOrStr::U(n)) => Self::from_number(n as i64)
                        .ok_or_else(|| D::Error::custom(format!("unknown {} value {n}", stringify!($name)))),
                    Some(NumOrStr::F(n)) => Self::from_number(n as i64)
                        .ok_or_else(|| D::Error::custom(format!("unknown {} value {n}", stringify!($name)))),
                }
            }
        }
    };
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

// ---------------------------------------------------------------------------------------------
// package process

proto_enum!(
    /// `process.Signal`.
    Signal {
        Unspecified = 0 => "SIGNAL_UNSPECIFIED",
        Sigterm = 15 => "SIGNAL_SIGTERM",
        Sigkill = 9 => "SIGNAL_SIGKILL",
    }
);

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessConfig {
    #[serde(deserialize_with = "nullable")]
    pub cmd: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "HashMap::is_empty"
    )]
    pub envs: HashMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

/// `oneof selector { uint32 pid; string tag; }`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessSelector {
    #[serde(
        deserialize_with = "de_opt_u32",
        skip_serializing_if = "Option::is_none"
    )]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PtySize {
    #[serde(deserialize_with = "de_u32")]
    pub cols: u32,
    #[serde(deserialize_with = "de_u32")]
    pub rows: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Pty {
    pub size: Option<PtySize>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StartRequest {
    pub process: Option<ProcessConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pty: Option<Pty>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Absent means "stdin enabled" (compatibility with SDKs older than envd 0.3.0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdin: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectRequest {
    pub process: Option<ProcessSelector>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdateRequest {
    pub process: Option<ProcessSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pty: Option<Pty>,
}

/// `oneof input { bytes stdin; bytes pty; }`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessInput {
    #[serde(with = "b64::opt", skip_serializing_if = "Option::is_none")]
    pub stdin: Option<Bytes>,
    #[serde(with = "b64::opt", skip_serializing_if = "Option::is_none")]
    pub pty: Option<Bytes>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SendInputRequest {
    pub process: Option<ProcessSelector>,
    pub input: Option<ProcessInput>,
}

/// One message of the client stream `StreamInput`:
/// `oneof event { start{process}; data{input}; keepalive{} }`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamInputRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<ConnectRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<StreamInputData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keepalive: Option<Empty>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamInputData {
    pub input: Option<ProcessInput>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SendSignalRequest {
    pub process: Option<ProcessSelector>,
    pub signal: Signal,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CloseStdinRequest {
    pub process: Option<ProcessSelector>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ListRequest {}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessInfo {
    pub config: ProcessConfig,
    #[serde(deserialize_with = "de_u32")]
    pub pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ListResponse {
    #[serde(deserialize_with = "nullable")]
    pub processes: Vec<ProcessInfo>,
}

/// Empty response of `SendInput`, `SendSignal`, `CloseStdin`, `Update`, `Remove`, ….
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Empty {}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StartEvent {
    #[serde(deserialize_with = "de_u32")]
    pub pid: u32,
}

/// `oneof output { bytes stdout; bytes stderr; bytes pty; }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataEvent {
    #[serde(with = "b64")]
    Stdout(Bytes),
    #[serde(with = "b64")]
    Stderr(Bytes),
    #[serde(with = "b64")]
    Pty(Bytes),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EndEvent {
    #[serde(
        alias = "exit_code",
        deserialize_with = "de_i32",
        skip_serializing_if = "is_zero_i32"
    )]
    pub exit_code: i32,
    #[serde(skip_serializing_if = "is_false")]
    pub exited: bool,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `process.ProcessEvent` with its `oneof event`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessEvent {
    Start(StartEvent),
    Data(DataEvent),
    End(EndEvent),
    Keepalive(Empty),
}

/// `StartResponse` and `ConnectResponse` share this shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessEventResponse {
    pub event: ProcessEvent,
}

// ---------------------------------------------------------------------------------------------
// package filesystem

proto_enum!(
    /// `filesystem.FileType`.
    FileType {
        Unspecified = 0 => "FILE_TYPE_UNSPECIFIED",
        File = 1 => "FILE_TYPE_FILE",
        Directory = 2 => "FILE_TYPE_DIRECTORY",
        Symlink = 3 => "FILE_TYPE_SYMLINK",
    }
);

proto_enum!(
    /// `filesystem.EventType`.
    EventType {
        Unspecified = 0 => "EVENT_TYPE_UNSPECIFIED",
        Create = 1 => "EVENT_TYPE_CREATE",
        Write = 2 => "EVENT_TYPE_WRITE",
        Remove = 3 => "EVENT_TYPE_REMOVE",
        Rename = 4 => "EVENT_TYPE_RENAME",
        Chmod = 5 => "EVENT_TYPE_CHMOD",
    }
);

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EntryInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub file_type: FileType,
    pub path: String,
    #[serde(with = "int64")]
    pub size: i64,
    #[serde(deserialize_with = "de_u32")]
    pub mode: u32,
    pub permissions: String,
    pub owner: String,
    pub group: String,
    /// RFC 3339 (`google.protobuf.Timestamp` in JSON).
    #[serde(alias = "modified_time", skip_serializing_if = "Option::is_none")]
    pub modified_time: Option<String>,
    #[serde(alias = "symlink_target", skip_serializing_if = "Option::is_none")]
    pub symlink_target: Option<String>,
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "HashMap::is_empty"
    )]
    pub metadata: HashMap<String, String>,
    /// Newer envd: the entry itself is a symlink and `type` describes its target.
    #[serde(alias = "is_symlink", skip_serializing_if = "is_false")]
    pub is_symlink: bool,
}

/// Request of `Stat`, `MakeDir`, `Remove`, `ListDir` (depth ignored where meaningless).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PathRequest {
    #[serde(deserialize_with = "nullable")]
    pub path: String,
    #[serde(deserialize_with = "de_u32", skip_serializing_if = "is_zero_u32")]
    pub depth: u32,
}
fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MoveRequest {
    #[serde(deserialize_with = "nullable")]
    pub source: String,
    #[serde(deserialize_with = "nullable")]
    pub destination: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EntryResponse {
    pub entry: Option<EntryInfo>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ListDirResponse {
    #[serde(deserialize_with = "nullable")]
    pub entries: Vec<EntryInfo>,
}

/// Request of `WatchDir` and `CreateWatcher`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WatchRequest {
    #[serde(deserialize_with = "nullable")]
    pub path: String,
    #[serde(deserialize_with = "nullable")]
    pub recursive: bool,
    #[serde(alias = "include_entry", deserialize_with = "nullable")]
    pub include_entry: bool,
    #[serde(alias = "allow_network_mounts", deserialize_with = "nullable")]
    pub allow_network_mounts: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WatcherIdMessage {
    #[serde(alias = "watcher_id", deserialize_with = "nullable")]
    pub watcher_id: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FilesystemEvent {
    pub name: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<EntryInfo>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GetWatcherEventsResponse {
    #[serde(deserialize_with = "nullable")]
    pub events: Vec<FilesystemEvent>,
}

/// `WatchDirResponse` with its `oneof event`.
#[allow(clippy::large_enum_variant)] // mirrors the wire message; events are short-lived
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchDirEvent {
    Start(Empty),
    Filesystem(FilesystemEvent),
    Keepalive(Empty),
}

// ---------------------------------------------------------------------------------------------
// Connect protocol: error codes, error bodies and the streaming envelope

/// Connect error codes (`code` in error bodies), with their HTTP status for unary calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    Canceled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
}

impl Code {
    /// HTTP status of a unary error response, per the Connect protocol.
    pub fn http_status(self) -> u16 {
        match self {
            Code::Canceled => 499,
            Code::Unknown | Code::Internal | Code::DataLoss => 500,
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
            Code::DeadlineExceeded => 504,
            Code::NotFound => 404,
            Code::AlreadyExists | Code::Aborted => 409,
            Code::PermissionDenied => 403,
            Code::ResourceExhausted => 429,
            // Unknown routes answer 404 like connect-go's mux; an explicitly
            // unimplemented method would be 501, but envd never produces one.
            Code::Unimplemented => 404,
            Code::Unavailable => 503,
            Code::Unauthenticated => 401,
        }
    }
}

/// A Connect error body: `{"code":"not_found","message":"..."}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: Code,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// The payload of the final (`flags & 0x02`) frame of a server stream.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EndStream {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<HashMap<String, Vec<String>>>,
}

/// Envelope flag: the message is compressed.
pub const FLAG_COMPRESSED: u8 = 0x01;
/// Envelope flag: this is the end-of-stream message.
pub const FLAG_END_STREAM: u8 = 0x02;
/// Size of the envelope prefix: one flags byte and a big-endian u32 length.
pub const ENVELOPE_HEADER: usize = 5;

/// Frames one message: `flags`, big-endian length, payload.
pub fn encode_envelope(flags: u8, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(ENVELOPE_HEADER + payload.len());
    buf.put_u8(flags);
    buf.put_u32(payload.len() as u32);
    buf.put_slice(payload);
    buf.freeze()
}

/// One decoded envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub flags: u8,
    pub payload: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Fewer bytes than the 5-byte prefix or the announced length.
    Truncated { needed: usize, have: usize },
    /// The announced length is above the reader's limit.
    TooLarge { len: usize, max: usize },
    /// Bytes left over after the one envelope a request may carry.
    Trailing { extra: usize },
}

impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvelopeError::Truncated { needed, have } => {
                write!(f, "truncated envelope: need {needed} bytes, have {have}")
            }
            EnvelopeError::TooLarge { len, max } => {
                write!(
                    f,
                    "envelope of {len} bytes exceeds the limit of {max} bytes"
                )
            }
            EnvelopeError::Trailing { extra } => {
                write!(f, "{extra} unexpected bytes after the request envelope")
            }
        }
    }
}

impl std::error::Error for EnvelopeError {}

/// Splits the next envelope off the front of `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold a whole envelope (a streaming
/// reader then waits for more bytes); an oversized length is an error at once,
/// so a hostile prefix cannot make the reader buffer without bound.
pub fn decode_envelope(buf: &mut BytesMut, max: usize) -> Result<Option<Envelope>, EnvelopeError> {
    if buf.len() < ENVELOPE_HEADER {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len > max {
        return Err(EnvelopeError::TooLarge { len, max });
    }
    if buf.len() < ENVELOPE_HEADER + len {
        return Ok(None);
    }
    let flags = buf[0];
    let mut frame = buf.split_to(ENVELOPE_HEADER + len);
    let payload = frame.split_off(ENVELOPE_HEADER).freeze();
    Ok(Some(Envelope { flags, payload }))
}

/// Decodes a complete body that must hold exactly one envelope (a server-stream request).
pub fn decode_single_envelope(body: &[u8], max: usize) -> Result<Envelope, EnvelopeError> {
    let mut buf = BytesMut::from(body);
    match decode_envelope(&mut buf, max)? {
        Some(env) if buf.is_empty() => Ok(env),
        Some(_) => Err(EnvelopeError::Trailing { extra: buf.len() }),
        None => {
            let needed = if body.len() < ENVELOPE_HEADER {
                ENVELOPE_HEADER
            } else {
                ENVELOPE_HEADER + u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize
            };
            Err(EnvelopeError::Truncated {
                needed,
                have: body.len(),
            })
        }
    }
}
