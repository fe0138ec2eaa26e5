//! Ships `sandboxd` and `envd` inside the Python package (`e2b/bin/`) for the embedded default:
//! with no E2B configuration the SDK starts that sandboxd when nothing answers on
//! 127.0.0.1:49982, and sandboxd finds envd next to itself when it builds the base template.
//!
//! Runs only under maturin (which sets `PYO3_BUILD_EXTENSION_MODULE`), so `cargo check` stays
//! cheap. The two binaries are built by a nested cargo in their own target directory
//! (`<target>/embedded-sandboxd`, no lock shared with the outer build), with the outer profile.
//! `E2B_BUILD_SANDBOXD=0` skips this (for users of E2B's cloud or of a separately installed
//! sandboxd).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=E2B_BUILD_SANDBOXD");
    println!("cargo:rerun-if-env-changed=PYO3_BUILD_EXTENSION_MODULE");
    if std::env::var_os("PYO3_BUILD_EXTENSION_MODULE").is_none()
        || std::env::var("E2B_BUILD_SANDBOXD").as_deref() == Ok("0")
    {
        return;
    }
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = crate_dir.parent().unwrap().to_path_buf();
    for dir in ["server/src", "server/Cargo.toml", "envd/src", "envd/Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("embedded-sandboxd");
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());

    // envd runs inside the guest, so it is linked statically (crt-static, which needs an
    // explicit --target so build scripts and proc macros stay dynamic): it then never depends
    // on the host's glibc being no newer than the guest's.
    let triple = std::env::var("TARGET").unwrap_or_else(|_| "x86_64-unknown-linux-gnu".into());
    let builds: [(&str, Option<&str>); 2] = [("sandboxd", None), ("envd", Some(triple.as_str()))];
    for (package, target) in builds {
        let mut cmd = Command::new(&cargo);
        cmd.arg("build")
            .arg("--manifest-path")
            .arg(root.join("Cargo.toml"))
            .args(["-p", package])
            .arg("--target-dir")
            .arg(&target_dir);
        if release {
            cmd.arg("--release");
        }
        // The outer build's flags are meant for the extension module, not for these executables.
        for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_TARGET_DIR", "PYO3_BUILD_EXTENSION_MODULE"] {
            cmd.env_remove(var);
        }
        // Nor are the variables cargo sets for this build script: some dependencies' build
        // scripts track them (ring's tracks CARGO_MANIFEST_DIR), and the same build from
        // `npm install`, which has none of them, would then compile everything again.
        for (var, _) in std::env::vars_os() {
            if set_for_build_scripts(&var.to_string_lossy()) {
                cmd.env_remove(var);
            }
        }
        if let Some(t) = target {
            cmd.args(["--target", t]).env("RUSTFLAGS", "-C target-feature=+crt-static");
        }
        let status = cmd.status().unwrap_or_else(|e| panic!("cannot run cargo for {package}: {e}"));
        if !status.success() {
            panic!(
                "building {package} for the embedded default failed ({status}); set \
                 E2B_BUILD_SANDBOXD=0 to build the SDK without it"
            );
        }
    }
    let profile = if release { "release" } else { "debug" };
    let dest = crate_dir.join("python/e2b/bin");
    std::fs::create_dir_all(&dest).unwrap();
    install(&target_dir.join(profile).join("sandboxd"), &dest.join("sandboxd"));
    install(&target_dir.join(&triple).join(profile).join("envd"), &dest.join("envd"));
}

/// Whether cargo sets `var` for a build script (as opposed to the user's own cargo settings,
/// such as `CARGO_HOME` or `CARGO_PROFILE_*`, which both installs see alike).
fn set_for_build_scripts(var: &str) -> bool {
    const PREFIXES: [&str; 4] = ["CARGO_PKG_", "CARGO_CFG_", "CARGO_FEATURE_", "DEP_"];
    const NAMES: [&str; 15] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "OUT_DIR",
        "TARGET",
        "HOST",
        "NUM_JOBS",
        "OPT_LEVEL",
        "DEBUG",
        "PROFILE",
        "RUSTC",
        "RUSTDOC",
        "RUSTC_LINKER",
    ];
    PREFIXES.iter().any(|p| var.starts_with(p)) || NAMES.contains(&var)
}

/// Copy to a temporary name then rename, so a running sandboxd keeps its mapped file intact.
fn install(from: &Path, to: &Path) {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).unwrap_or_else(|e| panic!("copy {} → {}: {e}", from.display(), tmp.display()));
    std::fs::rename(&tmp, to).unwrap();
}
