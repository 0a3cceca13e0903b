//! The synthetic-traffic options `demo` and `loadgen` share.

use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub(crate) struct TrafficArgs {
    /// Average traces per second before diurnal and weekly seasonality (agents carry several spans).
    #[arg(long, default_value_t = 20.0)]
    pub(crate) rate: f64,
    /// Seed: a fixed seed (with --start or --backfill) gives identical spans.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Dialects to emit, comma-separated: otel, openinference, openllmetry, vercel, openlit,
    /// langfuse, pydantic-ai, or mixed (all of them, rotated per trace).
    #[arg(long, default_value = "mixed")]
    pub(crate) dialect: String,
    /// Number of tenants (tenant.id values).
    #[arg(long, default_value_t = 3)]
    pub(crate) tenants: usize,
    /// Do not inject incidents (cost spike, latency regression, error burst, runaway agent loop).
    #[arg(long)]
    pub(crate) no_incidents: bool,
    /// Write the injected incidents here, one JSON object per line.
    #[arg(long, value_name = "FILE")]
    pub(crate) ground_truth: Option<PathBuf>,
    /// Chat-model mix, comma-separated provider/model[:weight], e.g.
    /// openai/gpt-4o:3,anthropic/claude-sonnet-4-5:1 (default: nine catalog models, equal weights).
    #[arg(long, value_name = "MIX")]
    pub(crate) models: Option<String>,
}

pub(crate) type Traffic = (
    Vec<llmhub_loadgen::scenario::PlanDialect>,
    usize,
    bool,
    Vec<llmhub_loadgen::scenario::ModelChoice>,
);

pub(crate) fn traffic(t: &TrafficArgs) -> anyhow::Result<Traffic> {
    use llmhub_loadgen::scenario::PlanDialect as D;
    let mut dialects = Vec::new();
    for name in t.dialect.split(',').map(str::trim) {
        match name {
            "mixed" => dialects.extend(D::ALL),
            "otel" => dialects.push(D::Otel),
            "openinference" => dialects.push(D::OpenInference),
            "openllmetry" => dialects.push(D::OpenLlmetry),
            "vercel" => dialects.push(D::Vercel),
            "openlit" => dialects.push(D::OpenLit),
            "langfuse" => dialects.push(D::Langfuse),
            "pydantic-ai" => dialects.push(D::PydanticAi),
            other => anyhow::bail!(
                "--dialect: unknown dialect {other:?}; use otel, openinference, openllmetry, vercel, openlit, langfuse, pydantic-ai or mixed"
            ),
        }
    }
    if !(t.rate.is_finite() && t.rate > 0.0) {
        anyhow::bail!(
            "--rate: got {}, expected a positive number of traces per second, e.g. 20",
            t.rate
        );
    }
    let models = match &t.models {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|m| {
                llmhub_loadgen::scenario::ModelChoice::parse(m.trim()).map_err(|e| anyhow::anyhow!("--models: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
    };
    Ok((dialects, t.tenants.max(1), !t.no_incidents, models))
}
