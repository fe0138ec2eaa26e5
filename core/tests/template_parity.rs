//! Our `Template` against the official Python SDK (PyPI `e2b==2.63.0`): for the same templates
//! over the same fixture directory, `Template.to_json` (steps, files hashes, base, start/ready
//! commands) must be equal. The official SDK runs in its venv (`OFFICIAL_E2B_PYTHON`, default
//! `$CARGO_TARGET_DIR/official-py/bin/python`); without it the test fails, saying how to make it.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use e2b::Template;
use e2b::template::readycmd;
use serde_json::Value;

fn official_python() -> PathBuf {
    if let Ok(p) = std::env::var("OFFICIAL_E2B_PYTHON") {
        return p.into();
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("official-py/bin/python")
}

fn fixture() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::create_dir_all(p.join("app/sub/deep")).unwrap();
    std::fs::create_dir_all(p.join("app/node_modules/x")).unwrap();
    std::fs::create_dir_all(p.join("empty")).unwrap();
    std::fs::write(p.join("app/main.py"), "print('hi')\n").unwrap();
    std::fs::write(p.join("app/sub/util.py"), "x = 1\n").unwrap();
    std::fs::write(p.join("app/sub/deep/data.txt"), vec![b'z'; 70_000]).unwrap();
    std::fs::write(p.join("app/.hidden"), "h").unwrap();
    std::fs::write(p.join("app/debug.log"), "log").unwrap();
    std::fs::write(p.join("app/keep.log"), "keep").unwrap();
    std::fs::write(p.join("app/node_modules/x/i.js"), "1").unwrap();
    std::fs::write(p.join("run.sh"), "#!/bin/sh\necho run\n").unwrap();
    std::fs::set_permissions(p.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(p.join("requirements.txt"), "requests\n").unwrap();
    symlink("main.py", p.join("app/link.py")).unwrap();
    std::fs::write(p.join(".dockerignore"), "# deps\n**/node_modules\n*.log\n!app/keep.log\n").unwrap();
    std::fs::write(
        p.join("e2b.Dockerfile"),
        "FROM python:3.12-slim\nARG V=1\nENV APP=/app PATH=\"/app/bin:$PATH\"\nWORKDIR /app\n\
         COPY --chmod=0755 run.sh /app/\nCOPY app /app/src\nRUN pip install -r requirements.txt && \\\n    echo done\n\
         USER nobody\nEXPOSE 8000\nCMD [\"python3\", \"-m\", \"http.server\", \"8000\"]\n",
    )
    .unwrap();
    d
}

/// (Python expression building `t` from `T = Template(file_context_path=CTX)`, our template).
fn cases(ctx: &Path) -> Vec<(&'static str, Template)> {
    let new = || Template::new(ctx, vec![]);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut out = Vec::new();

    let mut t = new();
    t.from_template("base");
    t.copy(&s(&["app"]), "/home/user/app", None, None, None, None, None).unwrap();
    t.set_envs(&[("A".into(), "1".into()), ("B".into(), "two words".into())]);
    t.set_start_cmd("python3 -m http.server 8000", &readycmd::wait_for_port(8000));
    out.push((
        "T.from_template('base').copy('app', '/home/user/app').set_envs({'A': '1', 'B': 'two words'})\
         .set_start_cmd('python3 -m http.server 8000', wait_for_port(8000))",
        t,
    ));

    let mut t = new();
    t.from_python_image(Some("3.11")).unwrap();
    t.copy(&s(&["run.sh", "requirements.txt"]), "/app/", None, Some("user:user"), Some(0o755), None, None).unwrap();
    t.copy(&s(&["app/**/*.py"]), "/py/", Some(true), None, None, Some(true), Some(false)).unwrap();
    t.copy(&s(&["app/link.py"]), "/l/", None, None, None, None, None).unwrap();
    t.copy(&s(&["app/link.py"]), "/l2/", None, None, None, Some(true), None).unwrap();
    t.pip_install(Some(&s(&["numpy", "pandas"])), true);
    t.pip_install(None, false);
    t.npm_install(Some(&s(&["typescript"])), true, false);
    t.npm_install(None, false, true);
    t.bun_install(Some(&s(&["tsx"])), false, true);
    t.apt_install(&s(&["vim", "curl"]), true, false);
    t.set_start_cmd("./x", &readycmd::wait_for_file("/tmp/ready"));
    t.set_ready_cmd(&readycmd::wait_for_url("http://localhost:3000/h ealth", 201));
    out.push((
        "(b := T.from_python_image('3.11').copy(['run.sh', 'requirements.txt'], '/app/', user='user:user', mode=0o755)\
         .copy('app/**/*.py', '/py/', force_upload=True, resolve_symlinks=True, gzip=False)\
         .copy('app/link.py', '/l/').copy('app/link.py', '/l2/', resolve_symlinks=True)\
         .pip_install(['numpy', 'pandas']).pip_install(g=False).npm_install('typescript', g=True)\
         .npm_install(dev=True).bun_install('tsx', dev=True).apt_install(['vim', 'curl'], no_install_recommends=True)\
         , b.set_start_cmd('./x', wait_for_file('/tmp/ready')), b.set_ready_cmd(wait_for_url('http://localhost:3000/h ealth', 201)))[-1]",
        t,
    ));

    let mut t = new();
    t.from_image("ubuntu:22.04", Some("u"), Some("p")).unwrap();
    t.skip_cache();
    t.run_cmd(&s(&["echo a", "echo b"]), Some("root"));
    t.set_workdir("/srv");
    t.set_user("user");
    t.git_clone("https://github.com/e2b-dev/e2b.git", Some("/srv/e2b"), Some("main"), Some(1), None);
    t.make_dir(&s(&["/a b", "/c"]), Some(0o700), Some("root"));
    t.make_symlink("/usr/bin/python3", "/usr/bin/py", None, true);
    t.remove(&s(&["/tmp/x y"]), true, true, None);
    t.rename("/a", "/b", true, Some("root"));
    t.copy(&s(&["."]), "/ctx", None, None, None, None, None).unwrap();
    t.set_start_cmd("sleep infinity", &readycmd::wait_for_process("sleep"));
    out.push((
        "T.from_image('ubuntu:22.04', username='u', password='p').skip_cache().run_cmd(['echo a', 'echo b'], user='root')\
         .set_workdir('/srv').set_user('user').git_clone('https://github.com/e2b-dev/e2b.git', '/srv/e2b', branch='main', depth=1)\
         .make_dir(['/a b', '/c'], mode=0o700, user='root').make_symlink('/usr/bin/python3', '/usr/bin/py', force=True)\
         .remove('/tmp/x y', force=True, recursive=True).rename('/a', '/b', force=True, user='root').copy('.', '/ctx')\
         .set_start_cmd('sleep infinity', wait_for_process('sleep'))",
        t,
    ));

    let mut t = new();
    t.from_dockerfile(ctx.join("e2b.Dockerfile").to_str().unwrap()).unwrap();
    out.push(("T.from_dockerfile(CTX + '/e2b.Dockerfile')", t));

    let mut t = new();
    t.from_debian_image(None).unwrap();
    t.set_ready_cmd(&readycmd::wait_for_timeout(2500));
    out.push((
        "T.from_debian_image().set_ready_cmd(wait_for_timeout(2500))",
        t,
    ));
    out
}

#[test]
fn to_json_equals_the_official_sdk() {
    let py = official_python();
    assert!(
        py.exists(),
        "official SDK venv missing at {}: python3 -m venv $CARGO_TARGET_DIR/official-py && \
         $CARGO_TARGET_DIR/official-py/bin/pip install -r tests/compat/requirements.txt",
        py.display()
    );
    let dir = fixture();
    let ctx = dir.path().to_str().unwrap().to_string();
    let cases = cases(dir.path());
    let mut script = String::from(
        "import json, sys\nfrom e2b import Template, wait_for_port, wait_for_url, wait_for_file, wait_for_process, wait_for_timeout\n",
    );
    script.push_str(&format!("CTX = {ctx:?}\nout = []\n"));
    for (expr, _) in &cases {
        script.push_str(&format!(
            "T = Template(file_context_path=CTX)\nt = {expr}\nout.append(json.loads(Template.to_json(t)))\n"
        ));
    }
    script.push_str("print(json.dumps(out))\n");
    let o = Command::new(&py).arg("-c").arg(&script).output().unwrap();
    assert!(o.status.success(), "official SDK failed: {}", String::from_utf8_lossy(&o.stderr));
    let official: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    for ((expr, ours), theirs) in cases.iter().zip(official) {
        let ours: Value = serde_json::from_str(&ours.to_json().unwrap()).unwrap();
        assert_eq!(ours, theirs, "differs for {expr}");
    }
}

#[test]
fn files_hash_of_a_directory_equals_the_official_sdk() {
    let py = official_python();
    let dir = fixture();
    let ctx = dir.path();
    let ignore = e2b::template::files::read_dockerignore(ctx);
    for (src, resolve) in [("app", false), ("app", true), (".", false), ("app/sub/*", false), ("**/*.py", false)] {
        let ours = e2b::template::files::calculate_files_hash(src, "/dst", ctx, &ignore, resolve).unwrap();
        let script = format!(
            "from e2b.template.utils import calculate_files_hash, read_dockerignore\n\
             print(calculate_files_hash({src:?}, '/dst', {c:?}, read_dockerignore({c:?}), {r}, None))",
            c = ctx.to_str().unwrap(),
            r = if resolve { "True" } else { "False" }
        );
        let o = Command::new(&py).arg("-c").arg(&script).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(ours, String::from_utf8_lossy(&o.stdout).trim(), "files hash of {src} (resolve_symlinks={resolve})");
    }
}
