//! `llmhub dashboards`: the bundled Grafana dashboards written into a directory.

use anyhow::Context as _;
use std::path::Path;

/// Writes the dashboards and their README into `out`.
pub(crate) fn run(out: &Path) -> anyhow::Result<()> {
    llmhub_dashboards::write(out).with_context(|| format!("writing dashboards into {}", out.display()))?;
    println!(
        "wrote {} dashboards and README.md into {}",
        llmhub_dashboards::all().len(),
        out.display()
    );
    Ok(())
}
