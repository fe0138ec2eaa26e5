//! The volume channel's wire format (frames, requests, responses): envd's file itself, so both
//! ends compile the same definitions (see `envd/src/volumes/wire.rs`).

#[path = "../../../envd/src/volumes/wire.rs"]
mod shared;
pub use shared::*;
