//! `.dockerignore` matching with Docker's semantics (moby/patternmatcher), as the official SDK's
//! `e2b_dockerfile_utils.PatternMatcher` applies it to `copy` sources.
//!
//! Invariants: paths are slash-separated and relative to the context root; a pattern that
//! matches a directory excludes everything under it; `!` patterns re-include (last match wins);
//! a leading `/` is ignored. Same hash inputs as the official SDK depend on this being exact.

use regex::Regex;

use crate::error::{Error, Result};

const BAD_PATTERN: &str = "syntax error in pattern";

enum Matcher {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Regex(Regex),
}

impl Matcher {
    fn matches(&self, path: &str) -> bool {
        match self {
            Matcher::Exact(p) => path == p,
            Matcher::Prefix(p) => path.starts_with(p.as_str()),
            Matcher::Suffix(s) => path.ends_with(s.as_str()) || (s.starts_with('/') && path == &s[1..]),
            Matcher::Regex(r) => r.is_match(path),
        }
    }
}

struct Pattern {
    exclusion: bool,
    dirs: Vec<String>,
    matcher: Matcher,
}

/// Compiled ignore patterns.
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
}

/// Go's `filepath.Clean` on a slash-separated path.
pub(crate) fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn class_char(p: &[char], mut i: usize) -> Result<usize, &'static str> {
    let n = p.len();
    if i >= n || p[i] == '-' || p[i] == ']' {
        return Err(BAD_PATTERN);
    }
    if p[i] == '\\' {
        i += 1;
        if i >= n {
            return Err(BAD_PATTERN);
        }
    }
    i += 1;
    if i >= n {
        return Err(BAD_PATTERN);
    }
    Ok(i)
}

/// Reject what Go's `filepath.Match` rejects (Docker validates patterns with it).
fn validate(p: &[char]) -> Result<(), &'static str> {
    let n = p.len();
    let mut i = 0;
    while i < n {
        let ch = p[i];
        i += 1;
        if ch == '\\' {
            if i >= n {
                return Err(BAD_PATTERN);
            }
            i += 1;
        } else if ch == '[' {
            if i < n && p[i] == '^' {
                i += 1;
            }
            let mut ranges = 0;
            while !(ranges > 0 && i < n && p[i] == ']') {
                i = class_char(p, i)?;
                if p[i] == '-' {
                    i = class_char(p, i + 1)?;
                }
                ranges += 1;
            }
            i += 1;
        }
    }
    Ok(())
}

fn compile(pattern: &str) -> Result<Matcher, String> {
    let p: Vec<char> = pattern.chars().collect();
    validate(&p).map_err(str::to_owned)?;
    #[derive(PartialEq, Clone, Copy)]
    enum T {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut re = String::from("^");
    let mut t = T::Exact;
    let (mut i, n) = (0usize, p.len());
    while i < n {
        let first = i == 0;
        let ch = p[i];
        i += 1;
        match ch {
            '*' => {
                if i < n && p[i] == '*' {
                    i += 1;
                    if i < n && p[i] == '/' {
                        i += 1;
                    }
                    if i >= n {
                        re.push_str(".*");
                        t = if t == T::Exact { T::Prefix } else { T::Regex };
                    } else {
                        re.push_str("(.*/)?");
                        t = T::Regex;
                    }
                    if first {
                        t = T::Suffix;
                    }
                } else {
                    re.push_str("[^/]*");
                    t = T::Regex;
                }
            }
            '?' => {
                re.push_str("[^/]");
                t = T::Regex;
            }
            '[' => {
                let mut j = i;
                if j < n && p[j] == '^' {
                    j += 1;
                }
                while j < n && p[j] != ']' {
                    if p[j] == '\\' {
                        j += 1;
                    }
                    j += 1;
                }
                let end = (j + 1).min(n);
                re.extend(&p[i - 1..end]);
                i = j + 1;
                t = T::Regex;
            }
            ']' => {
                re.push(']');
                t = T::Regex;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' | '^' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => {
                if i < n {
                    re.push_str(&regex::escape(&p[i].to_string()));
                    i += 1;
                    t = T::Regex;
                } else {
                    re.push_str("\\\\");
                }
            }
            c => re.push(c),
        }
    }
    Ok(match t {
        T::Exact => Matcher::Exact(pattern.to_string()),
        T::Prefix => Matcher::Prefix(pattern[..pattern.len() - 2].to_string()),
        T::Suffix => Matcher::Suffix(pattern[2..].to_string()),
        T::Regex => Matcher::Regex(Regex::new(&format!("{re}$")).map_err(|e| e.to_string())?),
    })
}

impl PatternMatcher {
    /// Compile `.dockerignore` lines; an invalid one is a template error naming it.
    pub fn new(patterns: &[String]) -> Result<Self> {
        let mut out = Vec::new();
        for original in patterns {
            if original.starts_with('#') {
                continue;
            }
            let mut pattern = original.trim();
            if pattern.is_empty() {
                continue;
            }
            let exclusion = pattern.starts_with('!');
            if exclusion {
                pattern = pattern[1..].trim();
                if pattern.is_empty() {
                    return Err(Error::Template(format!(
                        "Invalid ignore pattern '{original}': illegal exclusion pattern"
                    )));
                }
            }
            let mut cleaned = clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let matcher = compile(&cleaned)
                .map_err(|e| Error::Template(format!("Invalid ignore pattern '{original}': {e}")))?;
            out.push(Pattern { exclusion, dirs: cleaned.split('/').map(str::to_owned).collect(), matcher });
        }
        Ok(PatternMatcher { patterns: out })
    }

    /// Whether `path` is excluded (patterns are evaluated on each parent first; a pattern that
    /// matched a parent also matches what is under it).
    pub fn matches(&self, path: &str) -> bool {
        let segments: Vec<&str> = path.split('/').collect();
        let mut parent: Vec<bool> = Vec::new();
        let mut matched = false;
        for depth in 1..=segments.len() {
            let current = segments[..depth].join("/");
            let mut cur = Vec::with_capacity(self.patterns.len());
            matched = false;
            for (i, p) in self.patterns.iter().enumerate() {
                let mut m = !parent.is_empty() && parent[i];
                if !m {
                    if p.exclusion != matched {
                        cur.push(false);
                        continue;
                    }
                    m = p.matcher.matches(&current);
                }
                cur.push(m);
                if m {
                    matched = !p.exclusion;
                }
            }
            parent = cur;
        }
        matched
    }

    /// Whether a `!` pattern could re-include something under `dir` (then an excluded directory
    /// must still be walked). Conservative: a pattern whose leading segments are compatible.
    pub fn may_match_under(&self, dir: &str) -> bool {
        let dir_segments: Vec<&str> = dir.split('/').collect();
        self.patterns.iter().filter(|p| p.exclusion).any(|p| {
            for (k, d) in dir_segments.iter().enumerate() {
                let Some(ps) = p.dirs.get(k) else { return false };
                if ps.contains("**") {
                    return true;
                }
                if ps.contains(['*', '?', '[', '\\']) {
                    continue;
                }
                if ps != d {
                    return false;
                }
            }
            p.dirs.len() > dir_segments.len()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &[&str]) -> PatternMatcher {
        PatternMatcher::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn docker_semantics() {
        let pm = m(&["*.log", "!keep.log", "build", "**/tmp", "/abs/x"]);
        assert!(pm.matches("a.log"));
        assert!(!pm.matches("keep.log"));
        assert!(pm.matches("build/a/b.txt"));
        assert!(pm.matches("x/y/tmp"));
        assert!(pm.matches("tmp"));
        assert!(pm.matches("abs/x"));
        assert!(!pm.matches("src/a.log"));
        assert!(!pm.matches("src/main.rs"));
        assert!(PatternMatcher::new(&["[".to_string()]).is_err());
        assert!(PatternMatcher::new(&["!".to_string()]).is_err());
    }
}
