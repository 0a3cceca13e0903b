//! Worked examples from the providers' published price pages (prices in
//! `testdata/published_prices.yaml`, each with its source), checked to the exact decimal, and
//! property tests of the cost arithmetic.

use llmhub_core::usage::{to_buckets, InputConvention, RawUsage};
use llmhub_core::{Decimal, LlmCall, PriceStatus, SpanRole, Usage};
use llmhub_pricing::catalog::Catalog;
use llmhub_pricing::date::Date;
use llmhub_pricing::{cost, load, price_call, Matcher};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::str::FromStr;

fn catalog() -> Catalog {
    load(include_str!("../testdata/published_prices.yaml")).expect("test catalog is clean")
}

fn matcher() -> Matcher {
    Matcher::new(catalog(), None, BTreeMap::new())
}

fn at(day: &str) -> u64 {
    Date::parse(day).expect("date").days() as u64 * 86_400_000_000_000 + 12 * 3_600_000_000_000
}

fn call(provider: &str, model: &str, day: &str, usage: Usage) -> LlmCall {
    LlmCall {
        provider: Some(provider.to_owned()),
        request_model: Some(model.to_owned()),
        start_unix_nano: at(day),
        usage: Some(usage),
        counts_usage: true,
        ..Default::default()
    }
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal")
}

/// Prices `c` and returns (total, rule).
fn priced(m: &Matcher, mut c: LlmCall) -> (Decimal, String) {
    price_call(m, &mut c);
    assert_eq!(
        c.price_status,
        PriceStatus::Priced,
        "{:?} {:?}",
        c.request_model,
        c.price_status
    );
    let cost = c.cost.expect("cost");
    assert_eq!(
        cost.total,
        cost.input_uncached
            + cost.cache_read
            + cost.cache_write
            + cost.cache_write_1h
            + cost.output
            + cost.reasoning
            + cost.request
    );
    (cost.total, cost.rule)
}

#[test]
fn gpt_4o_cached_and_uncached_input() {
    // 2,000 uncached × $2.50/M + 8,000 cached × $1.25/M + 1,000 output × $10/M
    // = $0.005 + $0.010 + $0.010
    let u = Usage {
        input_uncached: 2_000,
        cache_read: 8_000,
        output: 1_000,
        ..Default::default()
    };
    let (total, rule) = priced(&matcher(), call("openai", "gpt-4o", "2025-06-01", u));
    assert_eq!(total, d("0.025"));
    assert_eq!(rule, "exact openai/gpt-4o");
    // The dated snapshot is an alias with the same price.
    let (total, rule) = priced(&matcher(), call("openai", "gpt-4o-2024-08-06", "2025-06-01", u));
    assert_eq!(total, d("0.025"));
    assert_eq!(rule, "exact openai/gpt-4o <- gpt-4o-2024-08-06");
}

#[test]
fn gpt_4o_price_change_takes_effect_at_midnight_utc() {
    let u = Usage {
        input_uncached: 1_000,
        output: 1_000,
        ..Default::default()
    };
    let mut before = call("openai", "gpt-4o", "2024-10-01", u);
    before.start_unix_nano = at("2024-10-02") - 12 * 3_600_000_000_000 - 1; // 23:59:59.999999999
    let mut after = call("openai", "gpt-4o", "2024-10-02", u);
    after.start_unix_nano = at("2024-10-02") - 12 * 3_600_000_000_000; // 00:00:00
                                                                       // Old: 1,000 × $5/M + 1,000 × $15/M; new: 1,000 × $2.50/M + 1,000 × $10/M.
    assert_eq!(priced(&matcher(), before).0, d("0.020"));
    assert_eq!(priced(&matcher(), after).0, d("0.0125"));
}

#[test]
fn batch_and_flex_service_tiers() {
    // gpt-4o batch: 100,000 × $1.25/M + 10,000 × $5/M = $0.125 + $0.05.
    let mut c = call(
        "openai",
        "gpt-4o",
        "2025-06-01",
        Usage {
            input_uncached: 100_000,
            output: 10_000,
            ..Default::default()
        },
    );
    c.service_tier = Some("batch".into());
    assert_eq!(priced(&matcher(), c).0, d("0.175"));
    // o4-mini flex, reasoning billed as output: 1,000 × $0.55/M + (1,000 + 4,000) × $2.20/M.
    let u = Usage {
        input_uncached: 1_000,
        output: 1_000,
        reasoning: 4_000,
        ..Default::default()
    };
    let mut c = call("openai", "o4-mini", "2025-06-01", u);
    c.service_tier = Some("flex".into());
    assert_eq!(priced(&matcher(), c).0, d("0.01155"));
    // An unknown tier ("default", "auto") uses the standard prices: $0.0011 + $0.0044 + $0.0176.
    let mut c = call("openai", "o4-mini", "2025-06-01", u);
    c.service_tier = Some("default".into());
    assert_eq!(priced(&matcher(), c).0, d("0.0231"));
}

#[test]
fn claude_cache_writes_five_minute_and_one_hour() {
    // 1,000 × $3 + 10,000 × $3.75 (5m write) + 2,000 × $6 (1h write) + 50,000 × $0.30 (read)
    // + 2,000 × $15, per million: $0.003 + $0.0375 + $0.012 + $0.015 + $0.030.
    let u = Usage {
        input_uncached: 1_000,
        cache_write: 10_000,
        cache_write_1h: 2_000,
        cache_read: 50_000,
        output: 2_000,
        ..Default::default()
    };
    let mut c = call("anthropic", "claude-sonnet-4-5-20250929", "2025-10-15", u);
    price_call(&matcher(), &mut c);
    let cost = c.cost.expect("priced");
    assert_eq!(cost.cache_write, d("0.0375"));
    assert_eq!(cost.cache_write_1h, d("0.012"));
    assert_eq!(cost.cache_read, d("0.015"));
    assert_eq!(cost.total, d("0.0975"));
    assert_eq!(cost.catalog_version, "test-1");
}

#[test]
fn long_context_tier_starts_above_200k_prompt_tokens() {
    let m = matcher();
    // Exactly 200,000 input tokens: standard price, 200,000 × $3/M.
    let at_limit = Usage {
        input_uncached: 200_000,
        ..Default::default()
    };
    assert_eq!(
        priced(&m, call("anthropic", "claude-sonnet-4-5", "2025-10-15", at_limit)).0,
        d("0.6")
    );
    // 200,001: every token at the long-context price, 200,001 × $6/M.
    let above = Usage {
        input_uncached: 200_001,
        ..Default::default()
    };
    assert_eq!(
        priced(&m, call("anthropic", "claude-sonnet-4-5", "2025-10-15", above)).0,
        d("1.200006")
    );
    // Cached tokens count toward the prompt size: 150,000 read + 60,000 uncached > 200,000.
    let mixed = Usage {
        input_uncached: 60_000,
        cache_read: 150_000,
        output: 1_000,
        ..Default::default()
    };
    // 60,000 × $6 + 150,000 × $0.60 + 1,000 × $22.50, per million.
    assert_eq!(
        priced(&m, call("anthropic", "claude-sonnet-4-5", "2025-10-15", mixed)).0,
        d("0.4725")
    );
    // Gemini 2.5 Pro above 200K: 300,000 × $2.50/M + 2,000 × $15/M.
    let big = Usage {
        input_uncached: 300_000,
        output: 2_000,
        ..Default::default()
    };
    assert_eq!(
        priced(&m, call("gcp.gemini", "gemini-2.5-pro", "2025-07-01", big)).0,
        d("0.78")
    );
}

#[test]
fn cached_tokens_without_a_cache_price_cost_the_input_price() {
    // Gemini 2.5 Pro lists no cache-read price here: 1,000 cached × $1.25/M.
    let u = Usage {
        cache_read: 1_000,
        ..Default::default()
    };
    assert_eq!(
        priced(&matcher(), call("gcp.gemini", "gemini-2.5-pro", "2025-07-01", u)).0,
        d("0.00125")
    );
}

#[test]
fn bedrock_ids_arns_and_region_prefixes_find_the_vendor_price() {
    let u = Usage {
        input_uncached: 10_000,
        output: 1_000,
        ..Default::default()
    };
    // 10,000 × $0.25/M + 1,000 × $1.25/M.
    for id in [
        "anthropic.claude-3-haiku-20240307-v1:0",
        "us.anthropic.claude-3-haiku-20240307-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.anthropic.claude-3-haiku-20240307-v1:0",
        "bedrock/anthropic.claude-3-haiku-20240307-v1:0",
    ] {
        let (total, rule) = priced(&matcher(), call("aws.bedrock", id, "2025-06-01", u));
        assert_eq!(total, d("0.00375"), "{id}");
        assert!(rule.starts_with("prefix anthropic/claude-3-haiku <- "), "{rule}");
    }
}

#[test]
fn gateway_prefixes_and_missing_provider() {
    let u = Usage {
        input_uncached: 1_000,
        ..Default::default()
    };
    let mut c = call("openai", "openai/gpt-4o", "2025-06-01", u);
    assert_eq!(priced(&matcher(), c.clone()).0, d("0.0025"));
    c.provider = None;
    c.request_model = Some("gpt-4o-2024-11-20".into());
    let (total, rule) = priced(&matcher(), c);
    assert_eq!(total, d("0.0025"));
    assert_eq!(rule, "family openai/gpt-4o <- gpt-4o-2024-11-20");
}

#[test]
fn embeddings_are_priced_on_input() {
    let u = Usage {
        input_uncached: 1_000_000,
        ..Default::default()
    };
    assert_eq!(
        priced(&matcher(), call("openai", "text-embedding-3-small", "2025-01-01", u)).0,
        d("0.02")
    );
}

#[test]
fn unknown_is_never_zero() {
    let m = matcher();
    let u = Usage {
        input_uncached: 10,
        output: 10,
        ..Default::default()
    };
    let mut c = call("openai", "gpt-9-ultra", "2025-06-01", u);
    price_call(&m, &mut c);
    assert_eq!((c.price_status, c.cost.is_none()), (PriceStatus::UnknownModel, true));
    let mut c = call("openai", "gpt-4o", "2023-01-01", u);
    price_call(&m, &mut c);
    assert_eq!((c.price_status, c.cost.is_none()), (PriceStatus::NoPriceAtDate, true));
    let mut c = call("openai", "gpt-4o", "2025-06-01", u);
    c.usage = None;
    price_call(&m, &mut c);
    assert_eq!((c.price_status, c.cost.is_none()), (PriceStatus::NoUsage, true));
    let mut c = call("openai", "gpt-4o", "2025-06-01", u);
    c.role = SpanRole::Agent;
    price_call(&m, &mut c);
    assert_eq!((c.price_status, c.cost.is_none()), (PriceStatus::NotPriced, true));
    // An embedding model asked for output tokens has no output price: not priced, not zero.
    let mut c = call("openai", "text-embedding-3-small", "2025-06-01", u);
    price_call(&m, &mut c);
    assert_eq!((c.price_status, c.cost.is_none()), (PriceStatus::NoPriceAtDate, true));
}

#[test]
fn user_models_and_azure_deployments() {
    let user = load(
        r#"
catalog_version: user
currency: USD
models:
  - provider: self-hosted
    model: acme-llama-ft
    prices:
      - { effective_from: "2025-01-01", source: "internal GPU cost model", unit: per_million_tokens, input: "0.10", output: "0.40" }
  - provider: openai
    model: gpt-4o
    prices:
      - { effective_from: "2024-01-01", source: "negotiated contract", unit: per_million_tokens, input: "2.00", output: "8.00" }
"#,
    )
    .expect("user catalog");
    let deployments = BTreeMap::from([("prod-gpt4o".to_owned(), "gpt-4o".to_owned())]);
    let m = Matcher::new(catalog(), Some(user), deployments);
    let u = Usage {
        input_uncached: 1_000_000,
        output: 1_000_000,
        ..Default::default()
    };
    // A private model, priced per token by the user.
    let (total, rule) = priced(&m, call("self-hosted", "acme-llama-ft", "2025-06-01", u));
    assert_eq!(
        (total, rule.as_str()),
        (d("0.50"), "user exact self-hosted/acme-llama-ft")
    );
    // The user's negotiated price wins over the catalog's.
    assert_eq!(priced(&m, call("openai", "gpt-4o", "2025-06-01", u)).0, d("10.00"));
    // An Azure deployment name maps to its model; Azure falls back to the OpenAI entry.
    let (total, rule) = priced(&m, call("azure.ai.openai", "prod-gpt4o", "2025-06-01", u));
    assert_eq!(total, d("10.00"));
    assert!(rule.contains("azure deployment prod-gpt4o"), "{rule}");
}

fn any_usage() -> impl Strategy<Value = Usage> {
    (
        0u64..5_000_000,
        0u64..5_000_000,
        0u64..1_000_000,
        0u64..1_000_000,
        0u64..2_000_000,
        0u64..2_000_000,
    )
        .prop_map(
            |(input_uncached, cache_read, cache_write, cache_write_1h, output, reasoning)| Usage {
                input_uncached,
                cache_read,
                cache_write,
                cache_write_1h,
                output,
                reasoning,
            },
        )
}

fn total_of(m: &Matcher, model: &str, u: Usage) -> Decimal {
    let mut c = call("anthropic", model, "2025-10-15", u);
    price_call(m, &mut c);
    c.cost.expect("priced").total
}

proptest! {
    /// The same call reported with inclusive input (OpenTelemetry) or exclusive input (Anthropic's
    /// raw usage) costs exactly the same.
    #[test]
    fn inclusive_and_exclusive_conventions_cost_the_same(
        uncached in 0u64..1_000_000, cr in 0u64..1_000_000, cw in 0u64..1_000_000, out in 0u64..100_000, r in 0u64..100_000
    ) {
        let m = matcher();
        let inclusive = RawUsage { input: Some(uncached + cr + cw), cache_read: Some(cr), cache_write: Some(cw), output: Some(out + r), reasoning: Some(r), ..Default::default() };
        let exclusive = RawUsage { input: Some(uncached), ..inclusive };
        let a = to_buckets(inclusive, InputConvention::Inclusive).expect("usage");
        let b = to_buckets(exclusive, InputConvention::Exclusive).expect("usage");
        prop_assert_eq!(total_of(&m, "claude-sonnet-4-5", a), total_of(&m, "claude-sonnet-4-5", b));
    }

    /// Cost never decreases when any token count grows (the long-context tier only raises prices).
    #[test]
    fn cost_is_monotone_in_every_bucket(u in any_usage(), bucket in 0usize..6, extra in 1u64..300_000) {
        let m = matcher();
        let mut v = u;
        match bucket {
            0 => v.input_uncached += extra,
            1 => v.cache_read += extra,
            2 => v.cache_write += extra,
            3 => v.cache_write_1h += extra,
            4 => v.output += extra,
            _ => v.reasoning += extra,
        }
        prop_assert!(total_of(&m, "claude-sonnet-4-5", v) >= total_of(&m, "claude-sonnet-4-5", u));
    }

    /// Each day picks the period whose [from, to) contains it.
    #[test]
    fn effective_dates_choose_the_covering_period(days in 0i64..900) {
        let c = catalog();
        let gpt = c.models.iter().find(|m| m.model == "gpt-4o").expect("gpt-4o");
        let day = Date::parse("2024-05-13").expect("date").days() + days;
        let nanos = day as u64 * 86_400_000_000_000;
        let p = gpt.period_at(Date::from_unix_nanos(nanos)).expect("covered after launch");
        let change = Date::parse("2024-10-02").expect("date").days();
        let expected = if day < change { "0.000005" } else { "0.0000025" };
        prop_assert_eq!(p.base.input, Some(d(expected)));
    }
}

#[test]
fn cost_function_is_exact_beyond_f64() {
    // 123,456,789 tokens at $0.075/M: an f64 computation gives 9.259259174999999.
    let c = catalog();
    let haiku = c.models.iter().find(|m| m.model == "claude-3-haiku").expect("entry");
    let mut p = haiku.periods[0].clone();
    p.base.input = Some(d("0.075") / llmhub_pricing::catalog::MILLION);
    let u = Usage {
        input_uncached: 123_456_789,
        ..Default::default()
    };
    assert_eq!(cost::cost(&p, &u, None).expect("priced").total, d("9.259259175"));
}

#[test]
fn batch_on_a_long_prompt_is_the_long_context_price_at_the_batch_discount() {
    // Sonnet 4.5 batch is half the standard price; above 200K the standard is $6 / $22.50, so batch
    // is $3 / $11.25: 250,000 × $3/M + 1,000 × $11.25/M.
    let mut c = call(
        "anthropic",
        "claude-sonnet-4-5",
        "2025-10-15",
        Usage {
            input_uncached: 250_000,
            output: 1_000,
            ..Default::default()
        },
    );
    c.service_tier = Some("batch".into());
    assert_eq!(priced(&matcher(), c).0, d("0.76125"));
    // Batch cache reads get the batch discount too: 1,000 × $1.50/M + 100,000 × ($0.30 × 0.5)/M.
    let mut c = call(
        "anthropic",
        "claude-sonnet-4-5",
        "2025-10-15",
        Usage {
            input_uncached: 1_000,
            cache_read: 100_000,
            ..Default::default()
        },
    );
    c.service_tier = Some("batch".into());
    assert_eq!(priced(&matcher(), c).0, d("0.0165"));
}

#[test]
fn hostile_and_unusual_names_never_panic_and_fall_back_predictably() {
    let m = matcher();
    let u = Usage {
        input_uncached: 1_000,
        ..Default::default()
    };
    for name in [
        "aé0123456789",
        "é-2024-08-06",
        "🙂",
        "",
        "-",
        "@",
        "arn:",
        "us.",
        "anthropic.-v",
    ] {
        let mut c = call("openai", name, "2025-06-01", u);
        price_call(&m, &mut c);
        assert_eq!(c.price_status, PriceStatus::UnknownModel, "{name:?}");
    }
    // A provider no catalog knows (a framework name) falls back to the vendor the model implies.
    let (total, rule) = priced(&m, call("langchain", "gpt-4o", "2025-06-01", u));
    assert_eq!((total, rule.as_str()), (d("0.0025"), "exact openai/gpt-4o"));
    // A snapshot dated before the family's first price is an older model: not priced as the family.
    let mut c = call("openai", "gpt-4o-2023-01-01", "2025-06-01", u);
    price_call(&m, &mut c);
    assert_eq!(c.price_status, PriceStatus::UnknownModel);
}

#[test]
fn user_models_match_by_name_whatever_provider_the_span_reports() {
    let user = load(
        "catalog_version: user\ncurrency: USD\nmodels:\n  - provider: self-hosted\n    model: acme-llama-ft\n    prices:\n      - { effective_from: \"2025-01-01\", source: \"internal\", unit: per_million_tokens, input: \"0.10\", output: \"0.40\" }\n",
    )
    .expect("user catalog");
    let m = Matcher::new(catalog(), Some(user), BTreeMap::new());
    // A vLLM server speaking the OpenAI API reports provider "openai".
    let u = Usage {
        input_uncached: 1_000_000,
        ..Default::default()
    };
    let (total, rule) = priced(&m, call("openai", "acme-llama-ft", "2025-06-01", u));
    assert_eq!(
        (total, rule.as_str()),
        (d("0.10"), "user exact self-hosted/acme-llama-ft")
    );
}
