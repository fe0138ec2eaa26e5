//! The files of a `copy` step: which ones (glob + `.dockerignore`), their cache hash, their
//! upload archive.
//!
//! Invariants (shared caches depend on them):
//! - [`calculate_files_hash`] feeds sha256 exactly what the official SDK's
//!   `calculate_files_hash` feeds it: `COPY <src> <dest>`, then per file (sorted by absolute
//!   path) its path relative to the context, its `st_mode` in decimal, its size (not for
//!   directories), then its content (regular files) or link target (symlinks not followed).
//! - The archive holds the same files, named relative to the context, symlinks kept unless
//!   `resolve_symlinks`, gzipped unless `gzip` is false.
//! - A source that is absolute or escapes the context is refused before anything is read.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use regex::Regex;
use sha2::{Digest, Sha256};

use super::dockerignore::{PatternMatcher, clean};
use crate::error::{Error, Result};

/// `src` must be relative and stay inside the context (the SDK's `validate_relative_path`).
pub fn validate_relative_path(src: &str) -> Result<()> {
    if src.starts_with('/') {
        return Err(Error::Template(format!(
            "Invalid source path \"{src}\": absolute paths are not allowed. Use a relative path within the context directory."
        )));
    }
    let n = clean(src);
    if n == ".." || n.starts_with("../") {
        return Err(Error::Template(format!(
            "Invalid source path \"{src}\": path escapes the context directory. The path must stay within the context directory."
        )));
    }
    Ok(())
}

/// Lexically absolute (`os.path.abspath`: joined to the cwd, `.`/`..` resolved, no symlinks).
pub fn abspath(p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")).join(p)
    };
    PathBuf::from(clean(&joined.to_string_lossy()))
}

/// `.dockerignore` lines of the context (comments and blank lines dropped).
pub fn read_dockerignore(context: &Path) -> Vec<String> {
    let Ok(s) = std::fs::read_to_string(context.join(".dockerignore")) else { return vec![] };
    let s = s.strip_prefix('\u{feff}').unwrap_or(&s);
    s.split('\n').filter(|l| !l.starts_with('#') && !l.trim().is_empty()).map(|l| l.trim().to_string()).collect()
}

/// An absolute ignore pattern pointing into the context becomes relative to it.
fn normalize_ignore_pattern(pattern: &str, context: &str) -> String {
    let p = pattern.trim();
    let (neg, p) = match p.strip_prefix('!') {
        Some(r) => (true, r.trim()),
        None => (false, p),
    };
    let mut out = p.to_string();
    if p.starts_with('/') {
        let c = clean(p);
        if let Some(rel) = c.strip_prefix(&format!("{context}/")) {
            out = rel.to_string();
        }
    }
    if neg { format!("!{out}") } else { out }
}

fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// wcmatch's `glob(src, GLOBSTAR | DOTMATCH)` as a regex over slash-separated relative paths.
fn glob_regex(pattern: &str) -> Result<Regex> {
    let segs: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    let mut re = String::from("^");
    for (k, seg) in segs.iter().enumerate() {
        let last = k + 1 == segs.len();
        if *seg == "**" {
            re.push_str(if last { "(?:[^/]+(?:/[^/]+)*)?" } else { "(?:[^/]+/)*" });
            continue;
        }
        let chars: Vec<char> = seg.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => re.push_str("[^/]*"),
                '?' => re.push_str("[^/]"),
                '[' => {
                    let mut j = i + 1;
                    let mut class = String::from("[");
                    if j < chars.len() && (chars[j] == '!' || chars[j] == '^') {
                        class.push('^');
                        j += 1;
                    }
                    let start = j;
                    while j < chars.len() && (chars[j] != ']' || j == start) {
                        if chars[j] == '\\' || chars[j] == '[' {
                            class.push('\\');
                        }
                        class.push(chars[j]);
                        j += 1;
                    }
                    if j < chars.len() {
                        class.push(']');
                        re.push_str(&class);
                        i = j;
                    } else {
                        re.push_str("\\[");
                    }
                }
                c => re.push_str(&regex::escape(&c.to_string())),
            }
            i += 1;
        }
        if !last {
            re.push('/');
        }
    }
    re = re.replace("/(?:[^/]+(?:/[^/]+)*)?", "(?:/[^/]+)*");
    re.push('$');
    Regex::new(&re).map_err(|e| Error::Template(format!("Invalid source pattern \"{pattern}\": {e}")))
}

fn walk_all(dir: &Path, rel: &str, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        out.push(r.clone());
        if is_dir {
            walk_all(&e.path(), &r, out);
        }
    }
}

/// Relative paths (normalized, `.` for the root) that `src` names under `root`.
fn glob(src: &str, root: &Path) -> Result<Vec<String>> {
    if !has_magic(src) {
        let n = clean(src);
        return Ok(if std::fs::symlink_metadata(root.join(&n)).is_ok() { vec![n] } else { vec![] });
    }
    let re = glob_regex(src)?;
    // Walk only below the pattern's literal leading directories.
    let lit: Vec<&str> =
        src.split('/').filter(|s| !s.is_empty() && *s != ".").take_while(|s| !has_magic(s)).collect();
    let base = lit.join("/");
    let mut all = Vec::new();
    walk_all(&root.join(&base), &base, &mut all);
    Ok(all.into_iter().filter(|p| re.is_match(p)).collect())
}

/// Every file and directory a `copy` of `src` takes (absolute paths, sorted as strings).
pub fn get_all_files_in_path(src: &str, context: &Path, ignore_patterns: &[String]) -> Result<Vec<PathBuf>> {
    let abs_context = abspath(context);
    let ctx = abs_context.to_string_lossy().into_owned();
    let norm: Vec<String> = ignore_patterns.iter().map(|p| normalize_ignore_pattern(p, &ctx)).collect();
    let matcher = PatternMatcher::new(&norm)?;
    let mut files = std::collections::BTreeSet::new();

    fn walk(m: &PatternMatcher, dir: &Path, rel: &str, files: &mut std::collections::BTreeSet<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let r = if rel == "." { name } else { format!("{rel}/{name}") };
            let ignored = m.matches(&r);
            if !ignored {
                files.insert(e.path().to_string_lossy().into_owned());
            }
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir && (!ignored || m.may_match_under(&r)) {
                walk(m, &e.path(), &r, files);
            }
        }
    }

    let mut matches: Vec<(PathBuf, String)> = glob(src, &abs_context)?
        .into_iter()
        .map(|rel| {
            let p = PathBuf::from(clean(&format!("{ctx}/{rel}")));
            let r = if p == abs_context {
                ".".to_string()
            } else {
                p.strip_prefix(&abs_context).map(|r| r.to_string_lossy().into_owned()).unwrap_or(rel)
            };
            (p, r)
        })
        .collect();
    matches.sort_by_key(|(_, r)| if r == "." { 0 } else { r.matches('/').count() + 1 });
    let mut walked: Vec<String> = Vec::new();
    for (path, rel) in matches {
        let under = walked.iter().any(|w| w == "." || rel.starts_with(&format!("{w}/")));
        if under || (rel != "." && matcher.matches(&rel)) {
            continue;
        }
        let md = std::fs::symlink_metadata(&path);
        if md.as_ref().is_ok_and(|m| m.is_dir()) {
            files.insert(path.to_string_lossy().into_owned());
            walk(&matcher, &path, &rel, &mut files);
            walked.push(rel);
        } else {
            files.insert(path.to_string_lossy().into_owned());
        }
    }
    Ok(files.into_iter().map(PathBuf::from).collect())
}

/// `os.path.relpath(file, context)` for a file under the context.
fn relpath(file: &Path, context: &Path) -> String {
    let c = abspath(context);
    match file.strip_prefix(&c) {
        Ok(r) if r.as_os_str().is_empty() => ".".into(),
        Ok(r) => r.to_string_lossy().into_owned(),
        Err(_) => file.to_string_lossy().into_owned(),
    }
}

/// The cache key of a `copy` step, byte-for-byte the official SDK's.
pub fn calculate_files_hash(
    src: &str,
    dest: &str,
    context: &Path,
    ignore_patterns: &[String],
    resolve_symlinks: bool,
) -> Result<String> {
    let mut h = Sha256::new();
    h.update(format!("COPY {src} {dest}").as_bytes());
    let files = get_all_files_in_path(src, context, ignore_patterns)?;
    if files.is_empty() {
        return Err(Error::Template(format!("No files found in {}", context.join(src).display())));
    }
    let hash_stats = |h: &mut Sha256, md: &std::fs::Metadata| {
        h.update(md.mode().to_string().as_bytes());
        if !md.is_dir() {
            h.update(md.size().to_string().as_bytes());
        }
    };
    let io = |f: &Path, e: std::io::Error| Error::Template(format!("cannot read {}: {e}", f.display()));
    for f in &files {
        h.update(relpath(f, context).as_bytes());
        let lmd = std::fs::symlink_metadata(f).map_err(|e| io(f, e))?;
        if lmd.file_type().is_symlink() {
            let follow = resolve_symlinks && std::fs::metadata(f).is_ok_and(|m| m.is_file() || m.is_dir());
            if !follow {
                hash_stats(&mut h, &lmd);
                let target = std::fs::read_link(f).map_err(|e| io(f, e))?;
                h.update(target.as_os_str().as_encoded_bytes());
                continue;
            }
        }
        let md = std::fs::metadata(f).map_err(|e| io(f, e))?;
        hash_stats(&mut h, &md);
        if md.is_file() {
            let mut file = std::fs::File::open(f).map_err(|e| io(f, e))?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf).map_err(|e| io(f, e))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
    }
    Ok(format!("{:x}", h.finalize()))
}

/// The upload archive of a `copy` step (tar, gzipped when `gzip`).
pub fn tar_files(
    src: &str,
    context: &Path,
    ignore_patterns: &[String],
    resolve_symlinks: bool,
    gzip: bool,
) -> Result<Vec<u8>> {
    let files = get_all_files_in_path(src, context, ignore_patterns)?;
    let fail = |e: std::io::Error| Error::FileUpload(format!("Failed to upload file: {e}"));
    // Keep the concrete writer so the bytes can be taken back out.
    enum Sink {
        Gz(flate2::write::GzEncoder<Vec<u8>>),
        Plain(Vec<u8>),
    }
    let sink = if gzip {
        Sink::Gz(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()))
    } else {
        Sink::Plain(Vec::new())
    };
    macro_rules! fill {
        ($w:expr) => {{
            let mut b = tar::Builder::new($w);
            b.follow_symlinks(resolve_symlinks);
            for f in &files {
                b.append_path_with_name(f, relpath(f, context)).map_err(fail)?;
            }
            b.into_inner().map_err(fail)?
        }};
    }
    Ok(match sink {
        Sink::Gz(w) => fill!(w).finish().map_err(fail)?,
        Sink::Plain(w) => fill!(w),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_only() {
        assert!(validate_relative_path("a/b").is_ok());
        assert!(validate_relative_path("foo/../bar").is_ok());
        assert!(validate_relative_path("..myconfig").is_ok());
        assert!(validate_relative_path("/etc/passwd").is_err());
        assert!(validate_relative_path("../x").is_err());
        assert!(validate_relative_path("./a/../../x").is_err());
    }

    #[test]
    fn glob_patterns() {
        let r = glob_regex("src/**/*.py").unwrap();
        assert!(r.is_match("src/a.py") && r.is_match("src/x/y/a.py") && !r.is_match("src/a.txt"));
        let r = glob_regex("*.txt").unwrap();
        assert!(r.is_match(".hidden.txt") && !r.is_match("d/a.txt"));
        let r = glob_regex("d/**").unwrap();
        assert!(r.is_match("d") && r.is_match("d/a/b"));
    }
}
