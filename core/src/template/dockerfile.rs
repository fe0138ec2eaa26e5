//! `from_dockerfile`: a single-stage Dockerfile turned into template steps, as the official
//! SDK's `parse_dockerfile` does (BuildKit's line rules: `# escape=` directive, continuation
//! lines, comments, JSON and shell forms, `--flags`).
//!
//! Mapping: FROM → base image; RUN → `run_cmd`; COPY/ADD → `copy` (`--chown` → user,
//! `--chmod` → mode); ENV/ARG → `set_envs`; WORKDIR/USER → `set_workdir`/`set_user`;
//! CMD/ENTRYPOINT → start command (Docker's combination rules) with `wait_for_timeout(20 s)`.
//! The steps are framed like the SDK's: `USER root`, `WORKDIR /` first, then `USER user` and
//! `WORKDIR /home/user` last unless the Dockerfile set them. EXPOSE/VOLUME/LABEL/MAINTAINER
//! have no template equivalent and are skipped, as in the SDK.
//!
//! Refused with a "Dockerfile parse error" (never skipped): multi-stage builds, `COPY --from`,
//! ADD of a remote URL, heredocs, and any other instruction (HEALTHCHECK, SHELL, ONBUILD,
//! STOPSIGNAL, …; the official SDK only prints a warning for those).

use std::collections::HashMap;

use super::{Template, readycmd, shell_quote};
use crate::error::{Error, Result};

fn syntax(line: Option<usize>, msg: impl std::fmt::Display) -> Error {
    match line {
        Some(l) => Error::InvalidArgument(format!("Dockerfile parse error on line {l}: {msg}")),
        None => Error::InvalidArgument(format!("Dockerfile parse error: {msg}")),
    }
}

/// One instruction after line joining and flag extraction.
#[derive(Debug, Clone)]
pub struct ParsedInstruction {
    pub name: String,
    pub line: usize,
    pub flags: Vec<String>,
    pub args: Vec<String>,
    pub json: bool,
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0b' | '\x0c' | '\r')
}

/// Strip the continuation escape (and blanks after it); true when the line continues.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(rest) => (rest.to_string(), true),
        None => (line.to_string(), false),
    }
}

fn heredoc_re() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r#"(^|\s)<<-?["']?[A-Za-z_]"#).expect("heredoc regex"))
}

/// Logical lines → instructions (BuildKit's parser, minus heredocs).
pub fn parse_instructions(content: &str) -> Result<(Vec<ParsedInstruction>, char)> {
    let lines: Vec<&str> = content.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let mut escape = '\\';
    let mut i = 0;
    // Parser directives: leading `# key=value` comments.
    let directive = regex::Regex::new(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$").expect("directive regex");
    while i < lines.len() {
        let Some(c) = directive.captures(lines[i]) else { break };
        if c[1].eq_ignore_ascii_case("escape") {
            escape = match &c[2] {
                "`" => '`',
                "\\" => '\\',
                v => return Err(syntax(Some(i + 1), format!("invalid escape token '{v}' does not match ` or \\"))),
            };
        }
        i += 1;
    }
    let mut out = Vec::new();
    while i < lines.len() {
        let start = i + 1;
        let first = lines[i].trim_start_matches(is_ws);
        i += 1;
        if first.is_empty() || first.starts_with('#') {
            continue;
        }
        let (mut line, mut more) = trim_continuation(first, escape);
        while more && i < lines.len() {
            let next = lines[i];
            i += 1;
            let t = next.trim_start_matches(is_ws);
            if t.starts_with('#') || t.is_empty() {
                continue;
            }
            let (cont, m) = trim_continuation(next, escape);
            line.push_str(&cont);
            more = m;
        }
        out.push(split_instruction(line.trim_matches(is_ws), start, escape)?);
    }
    Ok((out, escape))
}

fn split_instruction(line: &str, lineno: usize, escape: char) -> Result<ParsedInstruction> {
    let (cmd, rest) = match line.find(|c: char| is_ws(c)) {
        Some(p) => (&line[..p], line[p..].trim_start_matches(is_ws)),
        None => (line, ""),
    };
    let name = cmd.to_ascii_uppercase();
    let (flags, rest) = extract_flags(rest);
    let rest = rest.trim_matches(is_ws);
    if matches!(name.as_str(), "RUN" | "COPY" | "ADD") && heredoc_re().is_match(rest) {
        return Err(syntax(Some(lineno), format!("heredocs in {name} are not supported by this SDK")));
    }
    let (args, json) = match name.as_str() {
        "RUN" | "CMD" | "ENTRYPOINT" => match json_list(rest) {
            Some(v) => (v, true),
            None if rest.is_empty() => (vec![], false),
            None => (vec![rest.to_string()], false),
        },
        "COPY" | "ADD" => match json_list(rest) {
            Some(v) => (v, true),
            None => (rest.split(is_ws).filter(|s| !s.is_empty()).map(str::to_owned).collect(), false),
        },
        "FROM" | "EXPOSE" | "VOLUME" => (rest.split(is_ws).filter(|s| !s.is_empty()).map(str::to_owned).collect(), false),
        "ENV" => (parse_env(rest, lineno, escape)?, false),
        "ARG" => (parse_words(rest, escape), false),
        _ => (if rest.is_empty() { vec![] } else { vec![rest.to_string()] }, false),
    };
    Ok(ParsedInstruction { name, line: lineno, flags, args, json })
}

fn json_list(s: &str) -> Option<Vec<String>> {
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(s).ok()
}

/// Leading `--flag[=value]` words.
fn extract_flags(rest: &str) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut r = rest;
    loop {
        let t = r.trim_start_matches(is_ws);
        if !t.starts_with("--") {
            return (flags, t);
        }
        let end = t.find(|c: char| is_ws(c)).unwrap_or(t.len());
        let word = &t[..end];
        if word == "--" {
            return (flags, &t[end..]);
        }
        flags.push(word.to_string());
        r = &t[end..];
    }
}

/// BuildKit's `parseWords`: split on blanks outside quotes, quotes and escapes kept.
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut chars = rest.chars().peekable();
    while let Some(ch) = chars.next() {
        if quote.is_none() && is_ws(ch) {
            if !word.is_empty() || blank_ok {
                words.push(std::mem::take(&mut word));
            }
            blank_ok = false;
            continue;
        }
        if ch == '"' || ch == '\'' {
            match quote {
                None => {
                    quote = Some(ch);
                    blank_ok = true;
                }
                Some(q) if q == ch => quote = None,
                _ => {}
            }
        }
        if ch == escape
            && let Some(n) = chars.next()
        {
            word.push(ch);
            word.push(n);
            continue;
        }
        word.push(ch);
    }
    if !word.is_empty() || blank_ok {
        words.push(word);
    }
    words
}

/// ENV: `k=v …` pairs, or the legacy `ENV k v w` (value = the rest).
fn parse_env(rest: &str, lineno: usize, escape: char) -> Result<Vec<String>> {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Ok(vec![]);
    }
    if !words[0].contains('=') {
        let mut parts = rest.splitn(2, is_ws);
        let k = parts.next().unwrap_or_default();
        let v = parts.next().map(|v| v.trim_start_matches(is_ws)).unwrap_or("");
        if v.is_empty() {
            return Err(syntax(Some(lineno), "ENV must have two arguments"));
        }
        return Ok(vec![k.to_string(), v.to_string()]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(syntax(
                Some(lineno),
                format!("Syntax error - can't find = in {w:?}. Must be of the form: name=value"),
            ));
        };
        out.push(k.to_string());
        out.push(v.to_string());
    }
    Ok(out)
}

/// Remove quotes and escapes from a word, keeping `$VAR` / `${…}` references as written;
/// with `vars`, references are substituted (unset → empty).
fn process_word(word: &str, escape: char, vars: Option<&HashMap<String, String>>, line: usize) -> Result<String> {
    let c: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let dollar = |i: &mut usize, out: &mut String| -> Result<()> {
        // c[*i] == '$'
        let start = *i;
        *i += 1;
        let name: String;
        if *i < c.len() && c[*i] == '{' {
            let close = c[*i..].iter().position(|&x| x == '}').ok_or_else(|| syntax(Some(line), "syntax error: missing '}'"))?;
            name = c[*i + 1..*i + close].iter().collect();
            *i += close + 1;
        } else {
            let s = *i;
            while *i < c.len() && (c[*i].is_ascii_alphanumeric() || c[*i] == '_') {
                *i += 1;
            }
            name = c[s..*i].iter().collect();
            if name.is_empty() {
                out.push('$');
                return Ok(());
            }
        }
        match vars {
            Some(v) => out.push_str(v.get(name.split([':', '-', '+', '?']).next().unwrap_or("")).map_or("", |s| s)),
            None => out.extend(&c[start..*i]),
        }
        Ok(())
    };
    while i < c.len() {
        let ch = c[i];
        if ch == '\'' {
            i += 1;
            while i < c.len() && c[i] != '\'' {
                out.push(c[i]);
                i += 1;
            }
            if i >= c.len() {
                return Err(syntax(Some(line), "unexpected end of statement while looking for matching single-quote"));
            }
            i += 1;
        } else if ch == '"' {
            i += 1;
            loop {
                if i >= c.len() {
                    return Err(syntax(Some(line), "unexpected end of statement while looking for matching double-quote"));
                }
                let d = c[i];
                if d == '"' {
                    i += 1;
                    break;
                }
                if d == '$' {
                    dollar(&mut i, &mut out)?;
                    continue;
                }
                if d == escape && i + 1 < c.len() && matches!(c[i + 1], '"' | '$') || (d == escape && i + 1 < c.len() && c[i + 1] == escape) {
                    out.push(c[i + 1]);
                    i += 2;
                    continue;
                }
                out.push(d);
                i += 1;
            }
        } else if ch == '$' {
            dollar(&mut i, &mut out)?;
        } else if ch == escape {
            if i + 1 < c.len() {
                out.push(c[i + 1]);
            }
            i += 2;
        } else {
            out.push(ch);
            i += 1;
        }
    }
    Ok(out)
}

struct StartCommand {
    json: bool,
    args: Vec<String>,
}

fn shell_join(words: &[String]) -> String {
    words.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" ")
}

type FlagSpec = &'static [(&'static str, bool, bool)]; // (name, is_bool, ignored)

const RUN_FLAGS: FlagSpec = &[("mount", false, true), ("network", false, true), ("security", false, true), ("device", false, true)];
const COPY_FLAGS: FlagSpec = &[
    ("chown", false, false),
    ("chmod", false, false),
    ("from", false, false),
    ("link", true, true),
    ("exclude", false, true),
    ("parents", true, true),
];
const ADD_FLAGS: FlagSpec = &[
    ("chown", false, false),
    ("chmod", false, false),
    ("from", false, false),
    ("link", true, true),
    ("exclude", false, true),
    ("parents", true, true),
    ("keep-git-dir", true, true),
    ("checksum", false, true),
    ("unpack", true, true),
];
const FROM_FLAGS: FlagSpec = &[("platform", false, true)];

fn parse_flags(ins: &ParsedInstruction, specs: FlagSpec) -> Result<HashMap<String, String>> {
    let mut values = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for flag in &ins.flags {
        let body = &flag[2..];
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(&(_, is_bool, ignored)) = specs.iter().find(|s| s.0 == name) else {
            return Err(syntax(Some(ins.line), format!("unknown flag: {name}")));
        };
        if !seen.insert(name.to_string()) {
            return Err(syntax(Some(ins.line), format!("duplicate flag specified: {name}")));
        }
        let value = if is_bool {
            match value {
                None | Some("") | Some("true") => "true".to_string(),
                Some("false") => "false".to_string(),
                Some(v) => {
                    return Err(syntax(Some(ins.line), format!("expecting boolean value for flag {name}, not: {v}")));
                }
            }
        } else {
            value.ok_or_else(|| syntax(Some(ins.line), format!("missing a value on flag: {name}")))?.to_string()
        };
        if ignored {
            // As the official SDK: these flags change nothing a template can express.
            eprintln!("Ignoring unsupported {} flag --{name} (line {})", ins.name, ins.line);
            continue;
        }
        values.insert(name.to_string(), value);
    }
    Ok(values)
}

struct Converter<'a> {
    t: &'a mut Template,
    escape: char,
    vars: HashMap<String, String>,
    user_changed: bool,
    workdir_changed: bool,
    cmd: Option<StartCommand>,
    entrypoint: Option<StartCommand>,
}

impl Converter<'_> {
    fn expand(&self, ins: &ParsedInstruction, w: &str) -> Result<String> {
        process_word(w, self.escape, None, ins.line)
    }

    fn expand_single(&self, ins: &ParsedInstruction) -> Result<String> {
        parse_flags(ins, &[])?;
        if ins.args.len() != 1 {
            return Err(syntax(Some(ins.line), format!("{} requires exactly one argument", ins.name)));
        }
        self.expand(ins, &ins.args[0])
    }

    fn instruction(&mut self, ins: &ParsedInstruction) -> Result<()> {
        match ins.name.as_str() {
            "RUN" => {
                parse_flags(ins, RUN_FLAGS)?;
                if ins.args.is_empty() {
                    return Err(syntax(Some(ins.line), "RUN requires at least one argument"));
                }
                let cmd = if ins.json { shell_join(&ins.args) } else { ins.args[0].clone() };
                self.t.run_cmd(&[cmd], None);
            }
            "COPY" => self.copy(ins, COPY_FLAGS)?,
            "ADD" => self.copy(ins, ADD_FLAGS)?,
            "WORKDIR" => {
                let w = self.expand_single(ins)?;
                self.t.set_workdir(&w);
                self.workdir_changed = true;
            }
            "USER" => {
                let u = self.expand_single(ins)?;
                self.t.set_user(&u);
                self.user_changed = true;
            }
            "ENV" => {
                parse_flags(ins, &[])?;
                if ins.args.is_empty() {
                    return Err(syntax(Some(ins.line), "ENV requires at least one argument"));
                }
                let mut envs = Vec::new();
                for kv in ins.args.chunks(2) {
                    let k = self.expand(ins, &kv[0])?;
                    if k.is_empty() {
                        return Err(syntax(Some(ins.line), "ENV names can not be blank"));
                    }
                    let v = self.expand(ins, &kv[1])?;
                    let resolved = process_word(&kv[1], self.escape, Some(&self.vars), ins.line)?;
                    self.vars.insert(k.clone(), resolved);
                    envs.push((k, v));
                }
                self.t.set_envs(&envs);
            }
            "ARG" => {
                parse_flags(ins, &[])?;
                if ins.args.is_empty() {
                    return Err(syntax(Some(ins.line), "ARG requires at least one argument"));
                }
                let mut envs = Vec::new();
                for a in &ins.args {
                    let (n, v) = match a.split_once('=') {
                        Some((n, v)) => (n, Some(v)),
                        None => (a.as_str(), None),
                    };
                    let k = self.expand(ins, n)?;
                    if k.is_empty() {
                        return Err(syntax(Some(ins.line), "ARG names can not be blank"));
                    }
                    let val = match v {
                        Some(v) => self.expand(ins, v)?,
                        None => String::new(),
                    };
                    let resolved = match v {
                        Some(v) => process_word(v, self.escape, Some(&self.vars), ins.line)?,
                        None => String::new(),
                    };
                    self.vars.insert(k.clone(), resolved);
                    envs.push((k, val));
                }
                self.t.set_envs(&envs);
            }
            "CMD" | "ENTRYPOINT" => {
                parse_flags(ins, &[])?;
                let sc = StartCommand { json: ins.json, args: ins.args.clone() };
                if ins.name == "CMD" { self.cmd = Some(sc) } else { self.entrypoint = Some(sc) }
            }
            "EXPOSE" | "VOLUME" | "LABEL" | "MAINTAINER" => {}
            other => {
                return Err(syntax(
                    Some(ins.line),
                    format!("unsupported instruction {other}: a template has no equivalent (remove it)"),
                ));
            }
        }
        Ok(())
    }

    fn copy(&mut self, ins: &ParsedInstruction, specs: FlagSpec) -> Result<()> {
        let flags = parse_flags(ins, specs)?;
        if ins.args.len() < 2 {
            return Err(syntax(Some(ins.line), format!("{} requires at least two arguments", ins.name)));
        }
        if flags.contains_key("from") {
            return Err(syntax(
                Some(ins.line),
                format!("{} --from is not supported (multi-stage builds are not supported)", ins.name),
            ));
        }
        let user = flags.get("chown").map(|c| self.expand(ins, c)).transpose()?;
        let mut mode = None;
        if let Some(c) = flags.get("chmod") {
            let chmod = self.expand(ins, c)?;
            let resolved = process_word(c, self.escape, Some(&self.vars), ins.line)?;
            let ok = (3..=4).contains(&resolved.len()) && resolved.chars().all(|d| ('0'..='7').contains(&d));
            if !ok {
                let detail = if resolved == chmod { String::new() } else { format!(" (resolves to \"{resolved}\")") };
                return Err(syntax(
                    Some(ins.line),
                    format!("invalid chmod value \"{chmod}\"{detail}, expected an octal mode such as 0755"),
                ));
            }
            mode = Some(u32::from_str_radix(&resolved, 8).unwrap_or(0));
        }
        let dest = self.expand(ins, ins.args.last().expect("two args"))?;
        let remote = regex::Regex::new(r"^[a-z][a-z0-9+.-]*://").expect("url regex");
        for raw in &ins.args[..ins.args.len() - 1] {
            let src = self.expand(ins, raw)?;
            let lower = src.to_ascii_lowercase();
            if ins.name == "ADD" && remote.is_match(&lower) {
                return Err(syntax(Some(ins.line), format!("ADD from a remote URL is not supported: {src}")));
            }
            self.t.copy(&[src], &dest, None, user.as_deref(), mode, None, None)?;
        }
        Ok(())
    }

    fn apply_start_cmd(&mut self) {
        let command = match (&self.entrypoint, &self.cmd) {
            (Some(e), cmd) if e.json => {
                let mut words = e.args.clone();
                match cmd {
                    Some(c) if c.json => words.extend(c.args.iter().cloned()),
                    Some(c) if !c.args.is_empty() => {
                        words.extend(["/bin/sh".to_string(), "-c".into(), c.args[0].clone()]);
                    }
                    _ => {}
                }
                (!words.is_empty()).then(|| shell_join(&words))
            }
            (Some(e), _) => e.args.first().cloned(),
            (None, Some(c)) if c.json => (!c.args.is_empty()).then(|| shell_join(&c.args)),
            (None, Some(c)) => c.args.first().cloned(),
            (None, None) => None,
        };
        if let Some(c) = command.filter(|c| !c.trim().is_empty()) {
            self.t.set_start_cmd(&c, &readycmd::wait_for_timeout(20_000));
        }
    }
}

/// Parse `content_or_path` (a file path when one exists, else Dockerfile text) into `t`;
/// returns the base image.
pub fn parse_dockerfile(content_or_path: &str, t: &mut Template) -> Result<String> {
    let content = match std::fs::metadata(content_or_path) {
        Ok(m) if m.is_file() => std::fs::read_to_string(content_or_path)
            .map_err(|e| Error::InvalidArgument(format!("cannot read {content_or_path}: {e}")))?,
        _ => content_or_path.to_string(),
    };
    let (instructions, escape) = parse_instructions(&content)?;
    let froms: Vec<&ParsedInstruction> = instructions.iter().filter(|i| i.name == "FROM").collect();
    if froms.len() > 1 {
        return Err(syntax(None, "Multi-stage Dockerfiles are not supported"));
    }
    let Some(from) = froms.first() else {
        return Err(syntax(None, "Dockerfile must contain a FROM instruction"));
    };
    // Validate everything before touching the template, so a refused Dockerfile changes nothing.
    let mut scratch = t.clone();
    let mut c = Converter {
        t: &mut scratch,
        escape,
        vars: HashMap::new(),
        user_changed: false,
        workdir_changed: false,
        cmd: None,
        entrypoint: None,
    };
    parse_flags(from, FROM_FLAGS)?;
    let base = match from.args.as_slice() {
        [img] => c.expand(from, img)?,
        [img, a, _] if a.eq_ignore_ascii_case("as") => c.expand(from, img)?,
        _ => return Err(syntax(Some(from.line), "FROM requires either one or three arguments")),
    };
    c.t.set_user("root");
    c.t.set_workdir("/");
    for ins in &instructions {
        if ins.name == "FROM" {
            continue;
        }
        if ins.line < from.line && ins.name != "ARG" {
            return Err(syntax(Some(ins.line), format!("{} must be preceded by a FROM instruction", ins.name)));
        }
        c.instruction(ins)?;
    }
    c.apply_start_cmd();
    let (uc, wc) = (c.user_changed, c.workdir_changed);
    if !uc {
        scratch.set_user("user");
    }
    if !wc {
        scratch.set_workdir("/home/user");
    }
    *t = scratch;
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_and_forms() {
        let (ins, _) = parse_instructions("FROM x\nRUN a && \\\n    b  \\\n  # c\n   c\nCMD [\"p\", \"a b\"]\n").unwrap();
        assert_eq!(ins[1].args, vec!["a &&     b     c"]);
        assert!(ins[2].json);
        assert_eq!(shell_join(&ins[2].args), "p 'a b'");
    }

    #[test]
    fn words_and_quotes() {
        assert_eq!(process_word("\"a b\"", '\\', None, 1).unwrap(), "a b");
        assert_eq!(process_word("$PATH:/x", '\\', None, 1).unwrap(), "$PATH:/x");
        assert_eq!(process_word("'$x'", '\\', None, 1).unwrap(), "$x");
        assert_eq!(parse_env("K v w", 1, '\\').unwrap(), vec!["K", "v w"]);
        assert_eq!(parse_env("X=\"a b\" Y=1", 1, '\\').unwrap(), vec!["X", "\"a b\"", "Y", "1"]);
    }

    #[test]
    fn refusals_change_nothing() {
        for bad in [
            "FROM a\nFROM b",
            "RUN x",
            "FROM a\nHEALTHCHECK CMD true",
            "FROM a\nCOPY --from=b x y",
            "FROM a\nADD https://x/y /y",
            "FROM a\nRUN <<EOF\necho\nEOF",
            "FROM a\nCOPY --chmod=9 a b",
        ] {
            let mut t = Template::new("/tmp", vec![]);
            let e = t.from_dockerfile(bad).unwrap_err();
            assert!(e.to_string().starts_with("Dockerfile parse error"), "{bad}: {e}");
            assert!(t.instructions().is_empty());
            assert_eq!(t.base_image(), Some(super::super::DEFAULT_BASE_IMAGE));
        }
    }
}
