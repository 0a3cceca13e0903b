//! The catalog shipped in `prices/catalog.yaml`: parses, passes the lint (every entry has a
//! source and a date, no overlapping periods, consistent units, unique names), covers the
//! providers users run, and resolves the names instrumentations really report.

use llmhub_core::Decimal;
use llmhub_pricing::catalog::MILLION;
use llmhub_pricing::date::Date;
use llmhub_pricing::{embedded, Matcher};
use std::collections::BTreeMap;
use std::str::FromStr;

#[test]
fn shipped_catalog_is_clean() {
    let c = embedded().unwrap_or_else(|e| panic!("{e}"));
    assert!(!c.version.is_empty());
    assert!(c.models.len() >= 50, "{} models", c.models.len());
    for m in &c.models {
        for p in &m.periods {
            assert!(
                p.source.starts_with("http") || p.source.contains('/'),
                "{}/{}: source {:?}",
                m.provider,
                m.model,
                p.source
            );
        }
    }
}

#[test]
fn shipped_catalog_covers_the_major_providers_and_hosts() {
    let c = embedded().expect("catalog");
    for provider in [
        "openai",
        "anthropic",
        "gcp.gemini",
        "mistral_ai",
        "deepseek",
        "x_ai",
        "cohere",
        "aws.bedrock",
        "azure.ai.openai",
    ] {
        assert!(c.models.iter().any(|m| m.provider == provider), "no {provider} model");
    }
    assert!(
        c.models.iter().any(|m| m.model.contains("llama")),
        "no Llama model on a host"
    );
    assert!(
        c.models
            .iter()
            .filter(|m| m.periods.iter().any(|p| p.to.is_some()))
            .count()
            >= 5,
        "superseded prices kept"
    );
}

fn per_million(d: Option<Decimal>) -> Option<Decimal> {
    d.map(|x| (x * MILLION).normalize())
}

#[test]
fn shipped_catalog_spot_checks_against_published_prices() {
    let m = Matcher::new(embedded().expect("catalog"), None, BTreeMap::new());
    let day = Date::parse("2026-11-24").expect("date");
    let check = |provider: &str, model: &str, input: &str, output: &str| {
        let found = m
            .find(Some(provider), model)
            .unwrap_or_else(|| panic!("{provider}/{model} not found"));
        let p = found
            .model
            .period_at(day)
            .unwrap_or_else(|| panic!("{provider}/{model}: no current price"));
        assert_eq!(
            per_million(p.base.input),
            Some(Decimal::from_str(input).expect("d")),
            "{provider}/{model} input"
        );
        assert_eq!(
            per_million(p.base.output),
            Some(Decimal::from_str(output).expect("d")),
            "{provider}/{model} output"
        );
    };
    // openai.com/api/pricing; docs.anthropic.com pricing.
    check("openai", "gpt-4o", "2.5", "10");
    check("openai", "gpt-4o-mini", "0.15", "0.6");
    check("anthropic", "claude-sonnet-4-5", "3", "15");
    check("anthropic", "claude-3-5-haiku-20241022", "0.8", "4");
    // Real names from instrumentations resolve.
    for (provider, name) in [
        (Some("openai"), "gpt-4o-2024-08-06"),
        (Some("aws.bedrock"), "us.anthropic.claude-3-7-sonnet-20250219-v1:0"),
        (None, "claude-sonnet-4-5-20250929"),
        (Some("gcp.gemini"), "models/gemini-2.5-flash"),
        (Some("azure.ai.openai"), "gpt-4o"),
    ] {
        assert!(m.find(provider, name).is_some(), "{provider:?} {name} does not resolve");
    }
}
