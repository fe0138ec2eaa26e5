//! Runs `sdk_compat.py` (the official E2B Python SDK against this envd) when an
//! interpreter with the SDK is available: `E2B_SDK_PYTHON`, else `/tmp/offsdk/bin/python`.
//! Skipped, with a note, on machines without it.

#[test]
fn official_python_sdk_works_unchanged() {
    let python = std::env::var("E2B_SDK_PYTHON").unwrap_or_else(|_| "/tmp/offsdk/bin/python".into());
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
