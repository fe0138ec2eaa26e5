//! Reading what the nodes did from the outside: the objects s3s-fs holds (files under its root),
//! an image's manifest (`images/<id>.json`, see `server/src/cluster/manifest.rs`), and the
//! `key=value` fields of the nodes' log lines.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::report::strip_ansi;

/// Object kinds (top-level directories of the prefix) whose files are image data.
const KINDS: &[&str] = &["chunks", "deltas", "state", "layers", "boot", "images"];

/// Every object under the prefix: `kind/name` → compressed size in bytes.
pub type Objects = BTreeMap<String, u64>;

/// The plaintext size of a stored (zstd) object, from its frame header.
pub fn stored_plaintext(dir: &Path, key: &str) -> anyhow::Result<u64> {
    let raw = std::fs::read(dir.join(key)).with_context(|| format!("read {key}"))?;
    match zstd::zstd_safe::get_frame_content_size(&raw) {
        Ok(Some(n)) => Ok(n),
        _ => anyhow::bail!("{key}: no content size in its zstd frame"),
    }
}

pub fn objects(dir: &Path) -> anyhow::Result<Objects> {
    let mut out = Objects::new();
    for kind in KINDS {
        let Ok(entries) = std::fs::read_dir(dir.join(kind)) else {
            continue;
        };
        for e in entries {
            let e = e?;
            let meta = e.metadata()?;
            if meta.is_file() {
                out.insert(
                    format!("{kind}/{}", e.file_name().to_string_lossy()),
                    meta.len(),
                );
            }
        }
    }
    Ok(out)
}

/// The parts of a manifest the benchmark reads.
#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub ram: Option<Ram>,
    pub state: Option<Blob>,
    pub layers: Vec<Layer>,
    pub boot: Option<Boot>,
}

#[derive(Debug, Deserialize)]
pub struct Ram {
    pub size: u64,
    pub chunk_size: u64,
    pub chunks: Vec<Option<String>>,
}

#[derive(Debug, Deserialize)]
pub struct Blob {
    pub hash: String,
    pub size: u64,
}

#[derive(Debug, Deserialize)]
pub struct Layer {
    pub name: String,
    pub size: u64,
}

#[derive(Debug, Deserialize)]
pub struct Boot {
    pub kernel: Blob,
    pub initrd: Blob,
}

pub fn manifest(dir: &Path, image_id: &str) -> anyhow::Result<Manifest> {
    let path = dir.join("images").join(format!("{image_id}.json"));
    let raw = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_slice(&raw).with_context(|| format!("parse {}", path.display()))
}

impl Manifest {
    /// Bytes of RAM the image stores: non-zero chunks × their size (the last may be short).
    pub fn ram_nonzero_bytes(&self) -> u64 {
        let Some(r) = &self.ram else { return 0 };
        let chunk = |i: usize| r.chunk_size.min(r.size - i as u64 * r.chunk_size);
        r.chunks
            .iter()
            .enumerate()
            .filter(|(_, h)| h.is_some())
            .map(|(i, _)| chunk(i))
            .sum()
    }

    /// Plaintext size of every object it names, `kind/name` → bytes.
    pub fn plaintext(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        if let Some(r) = &self.ram {
            for (i, h) in r.chunks.iter().enumerate() {
                if let Some(h) = h {
                    out.insert(
                        format!("chunks/{h}"),
                        r.chunk_size.min(r.size - i as u64 * r.chunk_size),
                    );
                }
            }
        }
        if let Some(s) = &self.state {
            out.insert(format!("state/{}", s.hash), s.size);
        }
        for l in &self.layers {
            out.insert(format!("layers/{}", l.name), l.size);
        }
        if let Some(b) = &self.boot {
            out.insert(format!("boot/{}", b.kernel.hash), b.kernel.size);
            out.insert(format!("boot/{}", b.initrd.hash), b.initrd.size);
        }
        out
    }
}

/// What one upload added to the bucket, by object kind: found by diffing the objects before
/// and after it, plaintext sizes from the image's manifest.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Added {
    pub objects: usize,
    /// Compressed bytes of the new objects (what was sent), the manifest included.
    pub sent_bytes: u64,
    /// Plaintext bytes of the new objects (the manifest counted as sent).
    pub plain_bytes: u64,
    /// RAM objects: whole chunks and page deltas (`ram_deltas` of them).
    pub ram_chunks: usize,
    pub ram_deltas: usize,
    pub ram_sent_bytes: u64,
    pub ram_plain_bytes: u64,
    /// Device state, disk layers and boot files.
    pub other_sent_bytes: u64,
    pub other_plain_bytes: u64,
}

/// `dir`: where the objects are (deltas' plaintext sizes are read from their files).
pub fn added(dir: &Path, before: &Objects, after: &Objects, m: &Manifest) -> anyhow::Result<Added> {
    let plain = m.plaintext();
    let mut a = Added::default();
    for (key, &sent) in after.iter().filter(|(k, _)| !before.contains_key(*k)) {
        let delta = key.starts_with("deltas/");
        let p = match plain.get(key) {
            Some(&p) => p,
            None if delta => stored_plaintext(dir, key)?,
            None => sent,
        };
        a.objects += 1;
        a.sent_bytes += sent;
        a.plain_bytes += p;
        if key.starts_with("chunks/") || delta {
            a.ram_chunks += 1;
            a.ram_deltas += usize::from(delta);
            a.ram_sent_bytes += sent;
            a.ram_plain_bytes += p;
        } else if !key.starts_with("images/") {
            a.other_sent_bytes += sent;
            a.other_plain_bytes += p;
        }
    }
    Ok(a)
}

/// The fields of the last line of `log` that contains `message` and every `(key, value)` of
/// `with` (values compared without quotes). ANSI colours are ignored.
pub fn log_fields(
    log: &str,
    message: &str,
    with: &[(&str, &str)],
) -> Option<BTreeMap<String, String>> {
    log.lines()
        .rev()
        .map(strip_ansi)
        .filter(|l| l.contains(message))
        .map(|l| fields(&l))
        .find(|f| with.iter().all(|(k, v)| f.get(*k).is_some_and(|x| x == v)))
}

fn fields(line: &str) -> BTreeMap<String, String> {
    line.split_whitespace()
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_fields_match_on_message_and_values() {
        let log = "\u{1b}[2m2026\u{1b}[0m INFO x: image uploaded to s3://b/p \u{1b}[3mimage\u{1b}[0m\u{1b}[2m=\u{1b}[0m\"abc\" ms=12\n\
                   INFO x: image uploaded to s3://b/p image=\"def\" ms=34\n";
        let f = log_fields(log, "image uploaded to", &[("image", "abc")]).unwrap();
        assert_eq!(f["ms"], "12");
        assert_eq!(
            log_fields(log, "image uploaded to", &[]).unwrap()["ms"],
            "34"
        );
        assert!(log_fields(log, "image fetched", &[]).is_none());
    }

    #[test]
    fn added_counts_only_new_objects_with_their_plaintext() {
        let m = Manifest {
            ram: Some(Ram {
                size: 10,
                chunk_size: 4,
                chunks: vec![Some("h1".into()), None, Some("h2".into())],
            }),
            state: Some(Blob {
                hash: "s".into(),
                size: 7,
            }),
            layers: vec![Layer {
                name: "l.qcow2".into(),
                size: 100,
            }],
            boot: None,
        };
        assert_eq!(m.ram_nonzero_bytes(), 4 + 2);
        let before: Objects = [("chunks/h1".to_string(), 3)].into();
        let after: Objects = [
            ("chunks/h1", 3),
            ("chunks/h2", 1),
            ("state/s", 5),
            ("layers/l.qcow2", 20),
            ("images/i.json", 9),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .into();
        let a = added(Path::new("/nonexistent"), &before, &after, &m).unwrap();
        assert_eq!(
            (a.objects, a.ram_chunks, a.ram_sent_bytes, a.ram_plain_bytes),
            (4, 1, 1, 2)
        );
        assert_eq!((a.other_sent_bytes, a.other_plain_bytes), (25, 107));
        assert_eq!((a.sent_bytes, a.plain_bytes), (35, 118));
    }
}
