//! `llmhub man` (hidden): the manual pages, written for the Debian package.

use anyhow::Context as _;
use std::path::Path;

/// Writes `llmhub.1` and one page per subcommand of `cmd` into `out`.
pub(crate) fn run(cmd: clap::Command, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    clap_mangen::generate_to(cmd, out).with_context(|| format!("writing manual pages into {}", out.display()))?;
    Ok(())
}
