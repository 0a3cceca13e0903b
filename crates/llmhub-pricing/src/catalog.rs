//! The price catalog: its file format (YAML, reviewed like code, in `prices/catalog.yaml`), parsed
//! into exact decimals, and the date lookup of a model's price.

use crate::date::Date;
use crate::error::CatalogError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::str::FromStr;

/// One million, the denominator of per-million-token prices.
pub const MILLION: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

/// The file as written.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// Version of this catalog, stored on every priced record.
    pub catalog_version: String,
    /// Currency of every price; only `USD`.
    pub currency: String,
    /// Priced models.
    pub models: Vec<ModelFile>,
}

/// One priced model as written.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// Well-known provider name (`gen_ai.provider.name`).
    pub provider: String,
    /// Canonical model id.
    pub model: String,
    /// Other exact names of the same priced model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// `chat` (default) or `embeddings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Price periods.
    pub prices: Vec<PeriodFile>,
}

/// One price period as written: decimal strings per million tokens (or per request / hour).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PeriodFile {
    /// First day the price applies (`YYYY-MM-DD`).
    pub effective_from: String,
    /// First day it no longer applies (exclusive); absent for the current price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_to: Option<String>,
    /// Where the price was published.
    pub source: String,
    /// `per_million_tokens`, `per_request` or `per_hour`.
    pub unit: String,
    /// Component prices.
    #[serde(flatten)]
    pub components: ComponentsFile,
    /// Prices above a prompt size.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<TierFile>,
    /// Prices per service tier (`batch`, `flex`, `priority`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_tiers: BTreeMap<String, ComponentsFile>,
}

/// Component prices as written (decimal strings).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ComponentsFile {
    /// Uncached input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// Output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Cache read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read: Option<String>,
    /// Cache write, 5-minute (or the only cache-write price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_5m: Option<String>,
    /// Cache write, 1-hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_1h: Option<String>,
    /// Reasoning, when priced apart from output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Audio input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_audio: Option<String>,
    /// Audio output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_audio: Option<String>,
    /// Fee per request, USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_request: Option<String>,
    /// Price per hour of a self-hosted deployment (unit `per_hour`); not per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_hour: Option<String>,
}

/// A tier above a prompt size, as written.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct TierFile {
    /// The tier applies when the prompt (all input tokens) is larger than this.
    pub above_input_tokens: u64,
    /// Component prices (missing ones fall back to the base period's).
    #[serde(flatten)]
    pub components: ComponentsFile,
}

/// Per-token component prices in USD (already divided by one million).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Components {
    /// Uncached input.
    pub input: Option<Decimal>,
    /// Output.
    pub output: Option<Decimal>,
    /// Cache read.
    pub cache_read: Option<Decimal>,
    /// Cache write, 5-minute.
    pub cache_write_5m: Option<Decimal>,
    /// Cache write, 1-hour.
    pub cache_write_1h: Option<Decimal>,
    /// Reasoning.
    pub reasoning: Option<Decimal>,
    /// Fee per request (USD, not per token).
    pub per_request: Option<Decimal>,
}

impl Components {
    /// These components with the gaps filled from `base`.
    pub fn over(self, base: &Components) -> Components {
        Components {
            input: self.input.or(base.input),
            output: self.output.or(base.output),
            cache_read: self.cache_read.or(base.cache_read),
            cache_write_5m: self.cache_write_5m.or(base.cache_write_5m),
            cache_write_1h: self.cache_write_1h.or(base.cache_write_1h),
            reasoning: self.reasoning.or(base.reasoning),
            per_request: self.per_request.or(base.per_request),
        }
    }
}

/// Unit of a period's prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceUnit {
    /// Token prices per million tokens.
    PerMillionTokens,
    /// Only a per-request fee.
    PerRequest,
    /// A self-hosted deployment priced per hour: calls are not priced one by one.
    PerHour,
}

/// One price period, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    /// First day it applies.
    pub from: Date,
    /// First day it no longer applies.
    pub to: Option<Date>,
    /// Source.
    pub source: String,
    /// Unit.
    pub unit: PriceUnit,
    /// Base prices per token.
    pub base: Components,
    /// Tiers, sorted by threshold ascending.
    pub tiers: Vec<(u64, Components)>,
    /// Service tiers.
    pub service_tiers: BTreeMap<String, Components>,
}

impl Period {
    /// Whether the period covers `day`.
    pub fn covers(&self, day: Date) -> bool {
        self.from <= day && self.to.is_none_or(|t| day < t)
    }
}

/// One priced model, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct PricedModel {
    /// Provider.
    pub provider: String,
    /// Canonical model id.
    pub model: String,
    /// Aliases.
    pub aliases: Vec<String>,
    /// Periods, sorted by start.
    pub periods: Vec<Period>,
}

impl PricedModel {
    /// The period covering `day`.
    pub fn period_at(&self, day: Date) -> Option<&Period> {
        self.periods.iter().find(|p| p.covers(day))
    }
}

/// A parsed, validated catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    /// Version stored on priced records.
    pub version: String,
    /// Models.
    pub models: Vec<PricedModel>,
}

fn price(path: &str, v: &Option<String>, per_million: bool) -> Result<Option<Decimal>, CatalogError> {
    let Some(s) = v else { return Ok(None) };
    let d = Decimal::from_str(s.trim()).map_err(|_| CatalogError::Invalid {
        path: path.to_owned(),
        message: format!("{s:?} is not a decimal number; write prices as quoted decimals, e.g. \"2.50\""),
    })?;
    if d.is_sign_negative() {
        return Err(CatalogError::Invalid {
            path: path.to_owned(),
            message: format!("{s} is negative"),
        });
    }
    Ok(Some(if per_million { d / MILLION } else { d }))
}

fn components(path: &str, c: &ComponentsFile) -> Result<Components, CatalogError> {
    let p = |name: &str, v: &Option<String>| price(&format!("{path}.{name}"), v, true);
    Ok(Components {
        input: p("input", &c.input)?,
        output: p("output", &c.output)?,
        cache_read: p("cache_read", &c.cache_read)?,
        cache_write_5m: p("cache_write_5m", &c.cache_write_5m)?,
        cache_write_1h: p("cache_write_1h", &c.cache_write_1h)?,
        reasoning: p("reasoning", &c.reasoning)?,
        per_request: price(&format!("{path}.per_request"), &c.per_request, false)?,
    })
}

impl Catalog {
    /// Parses a catalog from YAML. Errors name the path of the bad entry.
    pub fn from_yaml(text: &str) -> Result<Catalog, CatalogError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let file: CatalogFile = serde_path_to_error::deserialize(de).map_err(|e| CatalogError::Invalid {
            path: e.path().to_string(),
            message: e.into_inner().to_string(),
        })?;
        Catalog::from_file(&file)
    }

    /// Builds the catalog from its file form.
    pub fn from_file(file: &CatalogFile) -> Result<Catalog, CatalogError> {
        if file.currency != "USD" {
            return Err(CatalogError::Invalid {
                path: "currency".into(),
                message: format!("{:?} is not supported; prices must be in USD", file.currency),
            });
        }
        let mut models = Vec::with_capacity(file.models.len());
        for (i, m) in file.models.iter().enumerate() {
            let mut periods = Vec::new();
            for (j, p) in m.prices.iter().enumerate() {
                let path = format!("models[{i}] ({}/{}).prices[{j}]", m.provider, m.model);
                let date = |field: &str, v: &str| {
                    Date::parse(v).ok_or_else(|| CatalogError::Invalid {
                        path: format!("{path}.{field}"),
                        message: format!("{v:?} is not a date; expected YYYY-MM-DD"),
                    })
                };
                let from = date("effective_from", &p.effective_from)?;
                let to = p.effective_to.as_deref().map(|t| date("effective_to", t)).transpose()?;
                let unit = match p.unit.as_str() {
                    "per_million_tokens" => PriceUnit::PerMillionTokens,
                    "per_request" => PriceUnit::PerRequest,
                    "per_hour" => PriceUnit::PerHour,
                    other => {
                        return Err(CatalogError::Invalid {
                            path: format!("{path}.unit"),
                            message: format!("{other:?}; expected per_million_tokens, per_request or per_hour"),
                        })
                    }
                };
                let base = components(&path, &p.components)?;
                let mut tiers = Vec::new();
                for (k, t) in p.tiers.iter().enumerate() {
                    tiers.push((
                        t.above_input_tokens,
                        components(&format!("{path}.tiers[{k}]"), &t.components)?,
                    ));
                }
                tiers.sort_by_key(|(n, _)| *n);
                let mut service_tiers = BTreeMap::new();
                for (name, c) in &p.service_tiers {
                    service_tiers.insert(
                        name.to_ascii_lowercase(),
                        components(&format!("{path}.service_tiers.{name}"), c)?,
                    );
                }
                periods.push(Period {
                    from,
                    to,
                    source: p.source.clone(),
                    unit,
                    base,
                    tiers,
                    service_tiers,
                });
            }
            periods.sort_by_key(|p| p.from);
            models.push(PricedModel {
                provider: m.provider.trim().to_ascii_lowercase(),
                model: m.model.trim().to_ascii_lowercase(),
                aliases: m.aliases.iter().map(|a| a.trim().to_ascii_lowercase()).collect(),
                periods,
            });
        }
        Ok(Catalog {
            version: file.catalog_version.clone(),
            models,
        })
    }
}
