//! Imports prices from the two public price datasets into catalog entries, and compares them with
//! a catalog: what would be added and what changed.
//!
//! - LiteLLM's `model_prices_and_context_window.json`: one object per model name, prices per token
//!   (`input_cost_per_token`, `cache_read_input_token_cost`, `…_above_200k_tokens`, `…_batches`,
//!   `…_flex`, `…_priority`, `output_cost_per_reasoning_token`, `cache_creation_input_token_cost_above_1hr`).
//! - pydantic's genai-prices: a provider file (`prices/providers/<id>.yml`) or the built
//!   `data.json` (a list of providers); prices per million tokens (`input_mtok`, `output_mtok`,
//!   `cache_read_mtok`, `cache_write_mtok`), plain numbers or `{base, tiers: [{start, price}]}`;
//!   a list of conditional prices takes the newest `start_date` entry.
//!
//! Numbers are read from their JSON text, so `2.5e-06` imports as exactly `2.5` per million.

use crate::catalog::{Catalog, ComponentsFile, ModelFile, PeriodFile, TierFile, MILLION};
use crate::error::CatalogError;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::str::FromStr;

/// An import source format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// LiteLLM `model_prices_and_context_window.json`.
    Litellm,
    /// pydantic genai-prices provider YAML or `data.json`.
    GenaiPrices,
}

/// LiteLLM provider names → well-known provider names.
const LITELLM_PROVIDERS: &[(&str, &str)] = &[
    ("openai", "openai"),
    ("text-completion-openai", "openai"),
    ("anthropic", "anthropic"),
    ("gemini", "gcp.gemini"),
    ("vertex_ai-language-models", "gcp.vertex_ai"),
    ("vertex_ai-anthropic_models", "gcp.vertex_ai"),
    ("vertex_ai-embedding-models", "gcp.vertex_ai"),
    ("bedrock", "aws.bedrock"),
    ("bedrock_converse", "aws.bedrock"),
    ("azure", "azure.ai.openai"),
    ("azure_ai", "azure.ai.inference"),
    ("mistral", "mistral_ai"),
    ("deepseek", "deepseek"),
    ("xai", "x_ai"),
    ("cohere", "cohere"),
    ("cohere_chat", "cohere"),
    ("groq", "groq"),
    ("together_ai", "together_ai"),
    ("fireworks_ai", "fireworks_ai"),
];

/// genai-prices provider ids → well-known provider names.
const GENAI_PRICES_PROVIDERS: &[(&str, &str)] = &[
    ("openai", "openai"),
    ("anthropic", "anthropic"),
    ("google", "gcp.gemini"),
    ("aws", "aws.bedrock"),
    ("azure", "azure.ai.openai"),
    ("mistral", "mistral_ai"),
    ("deepseek", "deepseek"),
    ("x_ai", "x_ai"),
    ("cohere", "cohere"),
    ("groq", "groq"),
    ("together", "together_ai"),
    ("fireworks", "fireworks_ai"),
];

fn map_provider(table: &[(&str, &str)], raw: &str) -> String {
    table
        .iter()
        .find(|(k, _)| *k == raw)
        .map_or_else(|| raw.to_owned(), |(_, v)| (*v).to_owned())
}

/// A JSON number as an exact decimal, from its text.
fn exact(v: &serde_json::Value) -> Option<Decimal> {
    match v {
        serde_json::Value::Number(n) => {
            let text = n.to_string();
            Decimal::from_str(&text)
                .or_else(|_| Decimal::from_scientific(&text))
                .ok()
        }
        serde_json::Value::String(s) => Decimal::from_str(s).or_else(|_| Decimal::from_scientific(s)).ok(),
        _ => None,
    }
}

fn money(d: Decimal) -> String {
    d.normalize().to_string()
}

/// Reads prices from `text` in `format`, as catalog entries effective from `effective_from`.
pub fn import(format: Format, text: &str, source: &str, effective_from: &str) -> Result<Vec<ModelFile>, CatalogError> {
    let value: serde_json::Value = match format {
        Format::Litellm => serde_json::from_str(text).map_err(|e| CatalogError::Import(format!("not JSON: {e}")))?,
        Format::GenaiPrices => {
            serde_yaml_ng::from_str(text).map_err(|e| CatalogError::Import(format!("not YAML/JSON: {e}")))?
        }
    };
    let models = match format {
        Format::Litellm => litellm(&value, source, effective_from)?,
        Format::GenaiPrices => genai_prices(&value, source, effective_from)?,
    };
    Ok(models)
}

fn period(effective_from: &str, source: &str, components: ComponentsFile) -> PeriodFile {
    PeriodFile {
        effective_from: effective_from.to_owned(),
        effective_to: None,
        source: source.to_owned(),
        unit: "per_million_tokens".to_owned(),
        components,
        tiers: Vec::new(),
        service_tiers: BTreeMap::new(),
    }
}

fn litellm(v: &serde_json::Value, source: &str, effective_from: &str) -> Result<Vec<ModelFile>, CatalogError> {
    let obj = v
        .as_object()
        .ok_or_else(|| CatalogError::Import("expected a JSON object keyed by model".into()))?;
    let mut out = Vec::new();
    for (key, spec) in obj {
        if key == "sample_spec" {
            continue;
        }
        let Some(provider_raw) = spec.get("litellm_provider").and_then(|p| p.as_str()) else {
            continue;
        };
        let per_m = |field: &str| spec.get(field).and_then(exact).map(|d| money(d * MILLION));
        let base = ComponentsFile {
            input: per_m("input_cost_per_token"),
            output: per_m("output_cost_per_token"),
            cache_read: per_m("cache_read_input_token_cost"),
            cache_write_5m: per_m("cache_creation_input_token_cost"),
            cache_write_1h: per_m("cache_creation_input_token_cost_above_1hr"),
            reasoning: per_m("output_cost_per_reasoning_token"),
            ..Default::default()
        };
        if base.input.is_none() && base.output.is_none() {
            continue;
        }
        let mut p = period(effective_from, source, base);
        let long = ComponentsFile {
            input: per_m("input_cost_per_token_above_200k_tokens"),
            output: per_m("output_cost_per_token_above_200k_tokens"),
            cache_read: per_m("cache_read_input_token_cost_above_200k_tokens"),
            ..Default::default()
        };
        if long.input.is_some() || long.output.is_some() {
            p.tiers.push(TierFile {
                above_input_tokens: 200_000,
                components: long,
            });
        }
        for (tier, suffix) in [("batch", "batches"), ("flex", "flex"), ("priority", "priority")] {
            let c = ComponentsFile {
                input: per_m(&format!("input_cost_per_token_{suffix}")),
                output: per_m(&format!("output_cost_per_token_{suffix}")),
                cache_read: per_m(&format!("cache_read_input_token_cost_{suffix}")),
                ..Default::default()
            };
            if c.input.is_some() || c.output.is_some() {
                p.service_tiers.insert(tier.to_owned(), c);
            }
        }
        let model = key
            .rsplit_once('/')
            .map_or(key.as_str(), |(_, m)| m)
            .to_ascii_lowercase();
        let mode = spec.get("mode").and_then(|m| m.as_str());
        out.push(ModelFile {
            provider: map_provider(LITELLM_PROVIDERS, provider_raw),
            model,
            aliases: Vec::new(),
            operation: (mode == Some("embedding")).then(|| "embeddings".to_owned()),
            prices: vec![p],
        });
    }
    out.sort_by(|a, b| (&a.provider, &a.model).cmp(&(&b.provider, &b.model)));
    out.dedup_by(|a, b| a.provider == b.provider && a.model == b.model);
    Ok(out)
}

/// Reads a genai-prices price: a number, or `{base, tiers}` (the base, plus the tiers).
fn gp_price(v: Option<&serde_json::Value>) -> (Option<String>, Vec<(u64, String)>) {
    match v {
        None => (None, Vec::new()),
        Some(serde_json::Value::Object(o)) => {
            let base = o.get("base").and_then(exact).map(money);
            let tiers = o
                .get("tiers")
                .and_then(|t| t.as_array())
                .map(|ts| {
                    ts.iter()
                        .filter_map(|t| Some((t.get("start")?.as_u64()?, money(exact(t.get("price")?)?))))
                        .collect()
                })
                .unwrap_or_default();
            (base, tiers)
        }
        Some(other) => (exact(other).map(money), Vec::new()),
    }
}

fn genai_prices(
    v: &serde_json::Value,
    default_source: &str,
    effective_from: &str,
) -> Result<Vec<ModelFile>, CatalogError> {
    let providers: Vec<&serde_json::Value> = match v {
        serde_json::Value::Array(list) => list.iter().collect(),
        serde_json::Value::Object(_) => vec![v],
        _ => {
            return Err(CatalogError::Import(
                "expected a provider object or a list of providers".into(),
            ))
        }
    };
    let mut out = Vec::new();
    for p in providers {
        let id = p.get("id").and_then(|x| x.as_str()).unwrap_or_default();
        let source = p.get("pricing_url").and_then(|x| x.as_str()).unwrap_or(default_source);
        let Some(models) = p.get("models").and_then(|m| m.as_array()) else {
            continue;
        };
        for m in models {
            let Some(model) = m.get("id").and_then(|x| x.as_str()) else {
                continue;
            };
            // A list of conditional prices: take the one with the newest start date.
            let prices = match m.get("prices") {
                Some(serde_json::Value::Array(list)) => list
                    .iter()
                    .max_by_key(|c| {
                        c.pointer("/constraint/start_date")
                            .and_then(|d| d.as_str())
                            .unwrap_or("")
                            .to_owned()
                    })
                    .and_then(|c| c.get("prices")),
                other => other,
            };
            let Some(prices) = prices else { continue };
            let mut tiers: BTreeMap<u64, ComponentsFile> = BTreeMap::new();
            let mut read = |key: &str, set: fn(&mut ComponentsFile, String)| -> Option<String> {
                let (base, ts) = gp_price(prices.get(key));
                for (start, price) in ts {
                    set(tiers.entry(start).or_default(), price);
                }
                base
            };
            let base = ComponentsFile {
                input: read("input_mtok", |c, v| c.input = Some(v)),
                output: read("output_mtok", |c, v| c.output = Some(v)),
                cache_read: read("cache_read_mtok", |c, v| c.cache_read = Some(v)),
                cache_write_5m: read("cache_write_mtok", |c, v| c.cache_write_5m = Some(v)),
                input_audio: read("input_audio_mtok", |c, v| c.input_audio = Some(v)),
                output_audio: read("output_audio_mtok", |c, v| c.output_audio = Some(v)),
                ..Default::default()
            };
            if base.input.is_none() && base.output.is_none() {
                continue;
            }
            let mut period = period(effective_from, source, base);
            period.tiers = tiers
                .into_iter()
                .map(|(above, components)| TierFile {
                    above_input_tokens: above,
                    components,
                })
                .collect();
            out.push(ModelFile {
                provider: map_provider(GENAI_PRICES_PROVIDERS, id),
                model: model.to_ascii_lowercase(),
                aliases: Vec::new(),
                operation: None,
                prices: vec![period],
            });
        }
    }
    Ok(out)
}

/// One difference between an import and a catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A model the catalog does not price.
    Added {
        /// `provider/model`.
        id: String,
        /// Its prices, `component=value` pairs.
        prices: String,
    },
    /// A model whose current prices differ.
    Changed {
        /// `provider/model`.
        id: String,
        /// `component: old -> new` descriptions.
        diffs: Vec<String>,
    },
}

fn pairs(c: &ComponentsFile) -> Vec<(&'static str, Option<Decimal>)> {
    let d = |v: &Option<String>| {
        v.as_deref()
            .and_then(|s| Decimal::from_str(s).ok())
            .map(|x| x.normalize())
    };
    vec![
        ("input", d(&c.input)),
        ("output", d(&c.output)),
        ("cache_read", d(&c.cache_read)),
        ("cache_write_5m", d(&c.cache_write_5m)),
        ("cache_write_1h", d(&c.cache_write_1h)),
        ("reasoning", d(&c.reasoning)),
    ]
}

/// Compares imported entries with the current prices of `catalog` (as of `day`). Components the
/// import does not state are not compared.
pub fn compare(catalog: &Catalog, imported: &[ModelFile], day: crate::date::Date) -> (Vec<Change>, usize) {
    let mut changes = Vec::new();
    let mut unchanged = 0;
    for m in imported {
        let id = format!("{}/{}", m.provider, m.model);
        let Some(new) = m.prices.first() else { continue };
        let existing = catalog
            .models
            .iter()
            .find(|c| c.provider == m.provider && (c.model == m.model || c.aliases.contains(&m.model)));
        let Some(existing) = existing else {
            let prices = pairs(&new.components)
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
                .collect::<Vec<_>>()
                .join(" ");
            changes.push(Change::Added { id, prices });
            continue;
        };
        let Some(current) = existing.period_at(day) else {
            changes.push(Change::Changed {
                id,
                diffs: vec![format!("no current price in the catalog on {day}")],
            });
            continue;
        };
        let now = |v: Option<Decimal>| v.map(|x| (x * MILLION).normalize());
        let cur = [
            now(current.base.input),
            now(current.base.output),
            now(current.base.cache_read),
            now(current.base.cache_write_5m),
            now(current.base.cache_write_1h),
            now(current.base.reasoning),
        ];
        let diffs: Vec<String> = pairs(&new.components)
            .into_iter()
            .zip(cur)
            .filter_map(|((k, newv), old)| match (newv, old) {
                (Some(n), Some(o)) if n != o => Some(format!("{k}: {o} -> {n}")),
                (Some(n), None) => Some(format!("{k}: (none) -> {n}")),
                _ => None,
            })
            .collect();
        if diffs.is_empty() {
            unchanged += 1;
        } else {
            changes.push(Change::Changed { id, diffs });
        }
    }
    (changes, unchanged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn litellm_per_token_floats_become_exact_per_million_decimals() {
        let json = r#"{
          "sample_spec": {"litellm_provider": "openai"},
          "gpt-4o": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 2.5e-06,
                     "output_cost_per_token": 1e-05, "cache_read_input_token_cost": 1.25e-06,
                     "input_cost_per_token_batches": 1.25e-06, "output_cost_per_token_batches": 5e-06},
          "bedrock/anthropic.claude-3-haiku-20240307-v1:0": {"litellm_provider": "bedrock", "input_cost_per_token": 2.5e-07, "output_cost_per_token": 1.25e-06},
          "claude-sonnet-4-5": {"litellm_provider": "anthropic", "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                     "input_cost_per_token_above_200k_tokens": 6e-06, "output_cost_per_token_above_200k_tokens": 2.25e-05,
                     "cache_creation_input_token_cost": 3.75e-06, "cache_creation_input_token_cost_above_1hr": 6e-06}
        }"#;
        let models = import(Format::Litellm, json, "litellm", "2026-11-24").unwrap();
        assert_eq!(models.len(), 3);
        let gpt = models.iter().find(|m| m.model == "gpt-4o").unwrap();
        let p = &gpt.prices[0];
        assert_eq!(p.components.input.as_deref(), Some("2.5"));
        assert_eq!(p.components.output.as_deref(), Some("10"));
        assert_eq!(p.service_tiers["batch"].input.as_deref(), Some("1.25"));
        let haiku = models.iter().find(|m| m.provider == "aws.bedrock").unwrap();
        assert_eq!(haiku.model, "anthropic.claude-3-haiku-20240307-v1:0");
        let sonnet = models.iter().find(|m| m.model == "claude-sonnet-4-5").unwrap();
        assert_eq!(sonnet.prices[0].tiers[0].components.output.as_deref(), Some("22.5"));
        assert_eq!(sonnet.prices[0].components.cache_write_1h.as_deref(), Some("6"));
        // Everything imported is a valid catalog.
        let file = crate::catalog::CatalogFile {
            catalog_version: "import".into(),
            currency: "USD".into(),
            models,
        };
        let c = Catalog::from_file(&file).unwrap();
        assert!(crate::lint::lint(&c).is_empty(), "{:?}", crate::lint::lint(&c));
    }

    #[test]
    fn genai_prices_provider_file_with_tiers_and_conditional_prices() {
        let yaml = r#"
id: google
pricing_url: https://ai.google.dev/gemini-api/docs/pricing
models:
  - id: gemini-2.5-pro
    match: {starts_with: gemini-2.5-pro}
    prices:
      input_mtok: {base: 1.25, tiers: [{start: 200000, price: 2.5}]}
      output_mtok: {base: 10, tiers: [{start: 200000, price: 15}]}
  - id: gemini-1.5-flash
    prices:
      - constraint: {start_date: 2024-05-14}
        prices: {input_mtok: 0.35, output_mtok: 1.05}
      - constraint: {start_date: 2024-08-12}
        prices: {input_mtok: 0.075, output_mtok: 0.3}
"#;
        let models = import(Format::GenaiPrices, yaml, "genai-prices", "2026-11-24").unwrap();
        let pro = &models[0];
        assert_eq!(pro.provider, "gcp.gemini");
        assert_eq!(pro.prices[0].tiers[0].above_input_tokens, 200_000);
        assert_eq!(pro.prices[0].tiers[0].components.output.as_deref(), Some("15"));
        assert_eq!(models[1].prices[0].components.input.as_deref(), Some("0.075"));
    }

    #[test]
    fn compare_reports_added_and_changed_prices() {
        let catalog = crate::load(include_str!("../testdata/published_prices.yaml")).unwrap();
        let json = r#"{
          "gpt-4o": {"litellm_provider": "openai", "input_cost_per_token": 2e-06, "output_cost_per_token": 1e-05},
          "o4-mini": {"litellm_provider": "openai", "input_cost_per_token": 1.1e-06, "output_cost_per_token": 4.4e-06},
          "gpt-9": {"litellm_provider": "openai", "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}
        }"#;
        let imported = import(Format::Litellm, json, "litellm", "2026-11-24").unwrap();
        let (changes, unchanged) = compare(&catalog, &imported, crate::date::Date::parse("2026-11-24").unwrap());
        assert_eq!(unchanged, 1);
        assert!(changes.contains(&Change::Changed {
            id: "openai/gpt-4o".into(),
            diffs: vec!["input: 2.5 -> 2".into()]
        }));
        assert!(changes.contains(&Change::Added {
            id: "openai/gpt-9".into(),
            prices: "input=1 output=2".into()
        }));
    }
}
