//! What `llmhub prices show|check|import` do: read, lint and update price catalogs.

use anyhow::{bail, Context as _};
use llmhub::config::{self, PricingConfig};
use llmhub::processors::pricing;
use llmhub_pricing::catalog::{CatalogFile, Period, MILLION};
use llmhub_pricing::date::Date;
use llmhub_pricing::import::{self, Change, Format};
use llmhub_pricing::Catalog;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Where the catalog comes from: `--catalog FILE`, else the config's, else the built-in one.
pub(super) fn pricing_config(config: Option<&Path>, catalog: Option<&Path>) -> anyhow::Result<PricingConfig> {
    let mut p = match config {
        Some(path) => config::load_file(path)?.processors.genai.pricing,
        None => PricingConfig::default(),
    };
    if let Some(c) = catalog {
        p.catalog = Some(c.display().to_string());
    }
    Ok(p)
}

/// Today (UTC).
pub(super) fn today() -> Date {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    Date::from_unix_nanos(nanos)
}

fn parse_day(at: Option<&str>) -> anyhow::Result<Date> {
    match at {
        None => Ok(today()),
        Some(s) => {
            Date::parse(s).with_context(|| format!("--at {s:?}: expected a date as YYYY-MM-DD, e.g. 2025-06-01"))
        }
    }
}

fn per_m(d: Option<llmhub_core::Decimal>) -> String {
    d.map_or_else(|| "-".to_owned(), |x| (x * MILLION).normalize().to_string())
}

fn period_line(p: &Period) -> String {
    let b = &p.base;
    format!(
        "input {}  output {}  cache_read {}  cache_write_5m {}  cache_write_1h {}  reasoning {}{}",
        per_m(b.input),
        per_m(b.output),
        per_m(b.cache_read),
        per_m(b.cache_write_5m),
        per_m(b.cache_write_1h),
        per_m(b.reasoning.or(b.output)),
        b.per_request.map(|r| format!("  per_request {r}")).unwrap_or_default(),
    )
}

/// `llmhub prices show`.
pub(super) fn show(
    out: &mut dyn Write,
    p: &PricingConfig,
    model: Option<&str>,
    provider: Option<&str>,
    at: Option<&str>,
) -> anyhow::Result<()> {
    let day = parse_day(at)?;
    let matcher = pricing::matcher(p)?;
    let c = matcher.catalog();
    writeln!(
        out,
        "# catalog {} ({} models); USD per 1M tokens; prices in effect on {day}",
        c.version,
        c.models.len()
    )?;
    if let Some(name) = model {
        let Some(found) = matcher.find(provider, name) else {
            bail!(
                "no price for {:?} (provider {:?}): add it to the catalog or to processors.genai.pricing.models",
                name,
                provider.unwrap_or("unknown")
            );
        };
        writeln!(out, "match: {}", found.rule)?;
        match found.model.period_at(day) {
            None => writeln!(
                out,
                "no price in effect on {day}; periods: {}",
                found
                    .model
                    .periods
                    .iter()
                    .map(|p| p.from.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )?,
            Some(period) => {
                writeln!(
                    out,
                    "from {} to {}  source {}",
                    period.from,
                    period.to.map_or("(current)".to_owned(), |t| t.to_string()),
                    period.source
                )?;
                writeln!(out, "  {}", period_line(period))?;
                for (above, t) in &period.tiers {
                    writeln!(
                        out,
                        "  above {above} input tokens: input {}  output {}  cache_read {}",
                        per_m(t.input),
                        per_m(t.output),
                        per_m(t.cache_read)
                    )?;
                }
                for (tier, t) in &period.service_tiers {
                    writeln!(
                        out,
                        "  service tier {tier}: input {}  output {}  cache_read {}",
                        per_m(t.input),
                        per_m(t.output),
                        per_m(t.cache_read)
                    )?;
                }
            }
        }
        return Ok(());
    }
    for m in &c.models {
        if provider.is_some_and(|p| p != m.provider) {
            continue;
        }
        match m.period_at(day) {
            Some(period) => writeln!(out, "{}/{}  {}", m.provider, m.model, period_line(period))?,
            None => writeln!(out, "{}/{}  (no price on {day})", m.provider, m.model)?,
        }
    }
    Ok(())
}

/// `llmhub prices check`: lint the catalog (and user models); with `--metrics`, list the models a
/// running llmhub saw without a price. Exits non-zero when anything needs attention.
pub(super) fn check(out: &mut dyn Write, p: &PricingConfig, metrics: Option<&str>) -> anyhow::Result<bool> {
    let matcher = pricing::matcher(p)?;
    let c = matcher.catalog();
    let periods: usize = c.models.iter().map(|m| m.periods.len()).sum();
    writeln!(
        out,
        "catalog {}: {} models, {} price periods, lint clean",
        c.version,
        c.models.len(),
        periods
    )?;
    let Some(source) = metrics else { return Ok(true) };
    let text = if source == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading metrics from standard input")?;
        s
    } else {
        std::fs::read_to_string(source).with_context(|| format!("cannot read metrics from {source}"))?
    };
    let unknown = unknown_prices(&text);
    if unknown.is_empty() {
        writeln!(out, "no unpriced models in the metrics")?;
        return Ok(true);
    }
    writeln!(out, "models seen without a price (calls):")?;
    for (labels, n) in &unknown {
        writeln!(out, "  {labels}  {n}")?;
    }
    Ok(false)
}

/// `(labels, count)` of every model in `llmhub_cost_unknown_price_total` with a positive count,
/// summed over tenants (the `llmhub_tenant` label is left out), in order of first appearance.
pub(super) fn unknown_prices(exposition: &str) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for (labels, n) in exposition
        .lines()
        .filter_map(|l| l.strip_prefix("llmhub_cost_unknown_price_total{"))
        .filter_map(|rest| {
            let (labels, value) = rest.rsplit_once("} ")?;
            let n: f64 = value.split_whitespace().next()?.parse().ok()?;
            (n > 0.0).then(|| (without_label(labels, "llmhub_tenant"), n))
        })
    {
        match out.iter_mut().find(|(l, _)| *l == labels) {
            Some((_, total)) => *total += n,
            None => out.push((labels, n)),
        }
    }
    out
}

/// A Prometheus label set (`a="x",b="y"`) without the label `name`.
fn without_label(labels: &str, name: &str) -> String {
    let mut pairs = Vec::new();
    let mut rest = labels;
    while !rest.is_empty() {
        // A value is quoted; inside it `\"` is an escaped quote.
        let Some(open) = rest.find("=\"") else { break };
        let mut end = open + 2;
        let bytes = rest.as_bytes();
        while end < bytes.len() && bytes[end] != b'"' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        let end = (end + 1).min(rest.len());
        let pair = &rest[..end];
        if &pair[..open] != name {
            pairs.push(pair);
        }
        rest = rest[end..].trim_start_matches(',');
    }
    pairs.join(",")
}

/// `llmhub prices import`.
pub(super) fn import_prices(
    out: &mut dyn Write,
    p: &PricingConfig,
    format: Format,
    file: &Path,
    effective_from: Option<&str>,
    output: Option<&PathBuf>,
) -> anyhow::Result<()> {
    let day = parse_day(effective_from)?;
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let source = match format {
        Format::Litellm => "https://github.com/BerriAI/litellm (model_prices_and_context_window.json)",
        Format::GenaiPrices => "https://github.com/pydantic/genai-prices",
    };
    let imported = import::import(format, &text, source, &day.to_string())?;
    let catalog = pricing::catalog(p)?;
    let (changes, unchanged) = import::compare(&catalog, &imported, day);
    for c in &changes {
        match c {
            Change::Added { id, prices } => writeln!(out, "added    {id}  {prices}")?,
            Change::Changed { id, diffs } => writeln!(out, "changed  {id}  {}", diffs.join(", "))?,
        }
    }
    let added = changes.iter().filter(|c| matches!(c, Change::Added { .. })).count();
    writeln!(
        out,
        "# {} models read: {added} new, {} with changed prices, {unchanged} unchanged (effective {day})",
        imported.len(),
        changes.len() - added
    )?;
    if let Some(path) = output {
        let file_form = catalog_file(p)?;
        let merged = merge(file_form, &imported, &changes, day);
        let parsed = Catalog::from_file(&merged).context("the merged catalog is invalid")?;
        for problem in llmhub_pricing::lint::lint(&parsed) {
            writeln!(out, "# lint: {problem}")?;
        }
        let yaml = serde_yaml_ng::to_string(&merged)?;
        std::fs::write(
            path,
            format!(
                "# llmhub price catalog, merged by `llmhub prices import` on {}\n{yaml}",
                today()
            ),
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(out, "# wrote {}; review the diff before committing", path.display())?;
    }
    Ok(())
}

fn catalog_file(p: &PricingConfig) -> anyhow::Result<CatalogFile> {
    let text = match &p.catalog {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?,
        None => llmhub_pricing::EMBEDDED_CATALOG.to_owned(),
    };
    Ok(serde_yaml_ng::from_str(&text)?)
}

/// New models are appended; a changed model's open period ends on `day` and the imported one
/// starts there.
fn merge(
    mut file: CatalogFile,
    imported: &[llmhub_pricing::catalog::ModelFile],
    changes: &[Change],
    day: Date,
) -> CatalogFile {
    for m in imported {
        let id = format!("{}/{}", m.provider, m.model);
        let Some(change) = changes
            .iter()
            .find(|c| matches!(c, Change::Added { id: i, .. } | Change::Changed { id: i, .. } if *i == id))
        else {
            continue;
        };
        match change {
            Change::Added { .. } => file.models.push(m.clone()),
            Change::Changed { .. } => {
                let Some(entry) = file
                    .models
                    .iter_mut()
                    .find(|e| e.provider == m.provider && (e.model == m.model || e.aliases.contains(&m.model)))
                else {
                    continue;
                };
                if let Some(open) = entry.prices.iter_mut().find(|p| p.effective_to.is_none()) {
                    open.effective_to = Some(day.to_string());
                }
                entry.prices.extend(m.prices.iter().cloned());
            }
        }
    }
    file.catalog_version = format!("{}-import", today());
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpriced_models_are_summed_over_tenants() {
        let text = r#"# TYPE llmhub_cost_unknown_price_total counter
llmhub_cost_unknown_price_total{gen_ai_provider_name="openai",gen_ai_request_model="gpt-9",llmhub_price_status="unknown_model",llmhub_tenant="acme"} 2
llmhub_cost_unknown_price_total{gen_ai_provider_name="openai",gen_ai_request_model="gpt-9",llmhub_price_status="unknown_model",llmhub_tenant="a\"b,c"} 3
llmhub_cost_unknown_price_total{gen_ai_provider_name="x",gen_ai_request_model="m,\"q\"",llmhub_price_status="no_price_at_date",llmhub_tenant=""} 1
llmhub_cost_unknown_price_total{gen_ai_provider_name="y",gen_ai_request_model="z",llmhub_price_status="unknown_model",llmhub_tenant="acme"} 0
"#;
        assert_eq!(
            unknown_prices(text),
            vec![
                (
                    r#"gen_ai_provider_name="openai",gen_ai_request_model="gpt-9",llmhub_price_status="unknown_model""#
                        .to_owned(),
                    5.0
                ),
                (
                    r#"gen_ai_provider_name="x",gen_ai_request_model="m,\"q\"",llmhub_price_status="no_price_at_date""#
                        .to_owned(),
                    1.0
                ),
            ]
        );
    }
}
