//! CRIU (Debian's `criu` package) as a peer: `criu dump --leave-running` / `criu restore` of
//! the holder process.
//!
//! On this machine it does not run: Debian bookworm's criu 3.17.1 fails `criu check` on the
//! host kernel (6.18) with `vdso: Unexpected rt vDSO area bounds` / `kerndat_vdso_fill_symtable
//! failed` (the same error makes `runc checkpoint` fail). The row is kept with that reason,
//! read from `criu check` at run time, so a machine where it passes is reported as such.
//! CRIU 4.x built from source reportedly works on this kernel, but it is not a Debian package
//! here, and the peers are installed from Debian's packages only.

use std::process::Command;
use std::time::Duration;

use crate::system::System;

use super::run_timeout;

pub const NAME: &str = "CRIU";

/// `Err((name, reason))`: why CRIU cannot run here (with criu's own message and version).
pub fn criu() -> Result<Box<dyn System>, (String, String)> {
    let version = run_timeout(cmd(&["--version"]), Duration::from_secs(30), None)
        .map(|o| {
            o.stdout
                .trim()
                .trim_start_matches("Version:")
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    let name = if version.is_empty() {
        NAME.to_string()
    } else {
        format!("{NAME} {version}")
    };
    let check = match run_timeout(cmd(&["check"]), Duration::from_secs(60), None) {
        Ok(o) => o,
        Err(e) => return Err((name, format!("`criu check` could not run: {e:#}"))),
    };
    if !check.ok {
        return Err((
            name.clone(),
            check_failure(&name, &check.stdout, &check.stderr),
        ));
    }
    Err((
        name,
        "`criu check` passes on this kernel, but this harness has no CRIU runner yet (it was \
         written on a machine where Debian's criu fails `criu check`)"
            .to_string(),
    ))
}

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new("criu");
    c.args(args);
    c
}

/// The reason line for a failed `criu check`: criu's own `Error (...)` lines, compacted.
fn check_failure(name: &str, stdout: &str, stderr: &str) -> String {
    let errors: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .map(str::trim)
        .filter(|l| l.starts_with("Error") && !l.ends_with("exited, status=1"))
        .collect();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let detail = if errors.is_empty() {
        format!("{} {}", stdout.trim(), stderr.trim())
            .trim()
            .to_string()
    } else {
        errors.join("; ")
    };
    format!(
        "Debian's {name} fails `criu check` on kernel {}: {detail} (CRIU 4.x built from source \
         reportedly works here, but is not a Debian package)",
        kernel.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_keeps_criu_error_lines() {
        let err = "Error (criu/util.c:642): exited, status=1\n\
                   Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\n\
                   Error (criu/crtools.c:260): Could not initialize kernel features detection.\n";
        let r = check_failure("CRIU 3.17.1", "", err);
        assert!(r.contains("vdso: Unexpected rt vDSO area bounds"), "{r}");
        assert!(r.contains("CRIU 3.17.1"), "{r}");
        assert!(!r.contains("status=1"), "{r}");
    }
}
