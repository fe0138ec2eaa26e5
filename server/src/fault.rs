//! Crash points for fault-injection tests: `SANDBOXD_FAULT=<point>` makes sandboxd SIGKILL
//! itself the first time it reaches that point, exactly like `kill -9` landing there, without
//! racing a timer against the operation.
//!
//! Inert unless the variable is set (one environment read, cached). Points are named
//! `<operation>.<moment>`; [`POINTS`] lists every one, and `tests/compat/test_faults.py`
//! crashes at each of them and checks what the next start recovers.

use std::sync::OnceLock;

/// Every crash point the code has, in the order an operation reaches them.
pub const POINTS: &[&str] = &[
    // create: QEMU is running and initialised, the sandbox row is not written yet.
    "create.vm_started",
    // snapshot: the image directory is complete and renamed, its row is not written yet.
    "snapshot.image_renamed",
    // pause: the pause image and the `paused` row are committed, the old VM still runs.
    "pause.committed",
    // kill: the VM is dead and its run directory gone, the sandbox row still exists.
    "kill.vm_stopped",
    // snapshot delete: the GC removed the image directory, its row still exists.
    "gc.image_dir_removed",
];

fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED.get_or_init(|| std::env::var("SANDBOXD_FAULT").ok().filter(|v| !v.is_empty())).as_deref()
}

/// Dies here (SIGKILL to itself) if `SANDBOXD_FAULT` names this point.
pub fn point(name: &'static str) {
    debug_assert!(POINTS.contains(&name), "unlisted fault point {name}");
    if armed() == Some(name) {
        tracing::warn!(point = name, "SANDBOXD_FAULT: killing sandboxd here");
        // SAFETY: kill(2) on our own pid; SIGKILL cannot be caught, so nothing runs after it.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn points_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for p in super::POINTS {
            assert!(seen.insert(p), "duplicate {p}");
            assert!(p.split_once('.').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty()), "{p}");
        }
    }
}
