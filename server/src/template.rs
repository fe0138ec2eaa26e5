//! Template builds: a Debian rootfs + kernel booted once and snapshotted into an image.

use std::path::{Path, PathBuf};

/// Builds (or reuses, unless `force`) the `base` template under `templates_dir/base`,
/// showing progress. Returns the image directory.
pub async fn build_base(templates_dir: &Path, force: bool) -> anyhow::Result<PathBuf> {
    let _ = force;
    anyhow::bail!("template build not implemented yet (would build {})", templates_dir.display())
}
