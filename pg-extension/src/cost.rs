//! Cost in SQL from the same pure pricing crate as the processor (`llmhub-pricing`) and the same
//! catalog (`prices/catalog.yaml`, embedded at build time): `llm_cost(...)` prices a call exactly as
//! the processor prices the record, to the last decimal.

use llmhub_core::{LlmCall, PriceStatus, Usage};
use llmhub_pricing::{price_call, Matcher};
use pgrx::prelude::*;
use pgrx::AnyNumeric;
use std::sync::OnceLock;

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

fn matcher() -> &'static Matcher {
    static MATCHER: OnceLock<Matcher> = OnceLock::new();
    MATCHER.get_or_init(|| match llmhub_pricing::embedded() {
        Ok(c) => Matcher::new(c, None, Default::default()),
        Err(e) => error!("the embedded price catalog does not load: {e}"),
    })
}

fn tokens(arg: &str, v: i64) -> u64 {
    u64::try_from(v).unwrap_or_else(|_| error!("{arg} must not be negative, got {v}"))
}

/// The version of the price catalog built into the extension.
#[pg_extern(immutable, parallel_safe)]
fn llm_price_catalog_version() -> String {
    matcher().catalog().version.clone()
}

/// Prices one call: USD as an exact `numeric`, or NULL when the catalog has no price for the model
/// at that time (never 0). Token counts are the disjoint buckets of `llm_calls`.
#[allow(clippy::too_many_arguments)]
#[pg_extern(stable, parallel_safe)]
fn llm_cost(
    provider: Option<&str>,
    model: &str,
    at: TimestampWithTimeZone,
    input_uncached: default!(i64, 0),
    cache_read: default!(i64, 0),
    cache_write: default!(i64, 0),
    cache_write_1h: default!(i64, 0),
    output: default!(i64, 0),
    reasoning: default!(i64, 0),
    service_tier: default!(Option<&str>, "NULL"),
) -> Option<AnyNumeric> {
    if !at.is_finite() {
        error!("at must be a finite time");
    }
    let micros: i64 = pg_sys::TimestampTz::from(at);
    let unix_ns = micros
        .checked_add(PG_EPOCH_US)
        .and_then(|us| us.checked_mul(1000))
        .and_then(|ns| u64::try_from(ns).ok())
        .unwrap_or_else(|| error!("at must be after 1970-01-01"));
    let mut call = LlmCall {
        start_unix_nano: unix_ns,
        end_unix_nano: unix_ns,
        provider: provider.map(str::to_owned),
        request_model: Some(model.to_owned()),
        service_tier: service_tier.map(str::to_owned),
        counts_usage: true,
        usage: Some(Usage {
            input_uncached: tokens("input_uncached", input_uncached),
            cache_read: tokens("cache_read", cache_read),
            cache_write: tokens("cache_write", cache_write),
            cache_write_1h: tokens("cache_write_1h", cache_write_1h),
            output: tokens("output", output),
            reasoning: tokens("reasoning", reasoning),
        }),
        ..LlmCall::default()
    };
    price_call(matcher(), &mut call);
    match (call.price_status, call.cost) {
        (PriceStatus::Priced, Some(c)) => Some(
            AnyNumeric::try_from(c.total.to_string().as_str())
                .unwrap_or_else(|e| error!("cost {} does not convert to numeric: {e}", c.total)),
        ),
        _ => None,
    }
}
