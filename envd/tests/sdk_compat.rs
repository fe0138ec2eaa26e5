//! Runs the official-SDK compatibility scripts against this envd when the SDKs are
//! installed: `sdk_compat.py` (Python, `E2B_SDK_PYTHON` or `/tmp/offsdk/bin/python`) and
//! `sdk_compat.mjs` (JS, see below). Each is skipped, with a note, when its SDK is missing.

#[test]
fn official_python_sdk_works_unchanged() {
    let python =
        std::env::var("E2B_SDK_PYTHON").unwrap_or_else(|_| "/tmp/offsdk/bin/python".into());
    if !std::path::Path::new(&python).exists() {
        eprintln!("skipping: no Python with the e2b SDK at {python} (set E2B_SDK_PYTHON)");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk_compat.py");
    let out = std::process::Command::new(&python)
        .args(["-u", script, env!("CARGO_BIN_EXE_envd")])
        .output()
        .expect("run sdk_compat.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sdk_compat.py failed\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("OK: official SDK works"), "{stdout}");
}

/// The same for the official JS SDK (`sdk_compat.mjs`), found in `E2B_JS_SDK_DIR`
/// (a `node_modules` directory holding `e2b`), else `/tmp/jssdk/node_modules`.
#[test]
fn official_js_sdk_works_unchanged() {
    let dir = std::env::var("E2B_JS_SDK_DIR").unwrap_or_else(|_| "/tmp/jssdk/node_modules".into());
    if !std::path::Path::new(&dir).join("e2b").exists() {
        eprintln!(
            "skipping: no e2b JS SDK in {dir} (npm install --prefix /tmp/jssdk e2b, or set E2B_JS_SDK_DIR)"
        );
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk_compat.mjs");
    let out = std::process::Command::new("node")
        .args([script, env!("CARGO_BIN_EXE_envd")])
        .env("NODE_PATH", &dir)
        .output()
        .expect("run sdk_compat.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sdk_compat.mjs failed\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("OK: official JS SDK works"), "{stdout}");
}
