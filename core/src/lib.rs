//! `e2b`: a client for E2B-compatible sandbox servers (E2B's cloud or a local `sandboxd`).
