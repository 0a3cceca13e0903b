//! Exact cost of a call: token buckets × per-token prices in decimal, per bucket and in total.
//!
//! Price selection within a period: the base prices; replaced, for a prompt larger than a tier's
//! threshold (all input tokens, cached or not), by the highest such tier's prices; replaced again by
//! the service tier's prices when the call names a tier the period prices (`batch`, `flex`,
//! `priority`). A component missing from a tier falls back to the base. Cache reads are charged at
//! the `cache_read` price, else the input price; cache writes at `cache_write_5m`, else input;
//! one-hour cache writes at `cache_write_1h`, else `cache_write_5m`, else input;
//! reasoning at `reasoning`, else output.

use crate::catalog::{Components, Period, PriceUnit};
use crate::date::Date;
use crate::matching::Matcher;
use llmhub_core::{CallCost, Decimal, LlmCall, PriceStatus, SpanRole, Usage};

/// The prices that apply to one call under one period.
pub fn applicable(period: &Period, usage: &Usage, service_tier: Option<&str>) -> Components {
    let input = usage.input_total();
    let mut c = period.base;
    if let Some((_, tier)) = period.tiers.iter().rev().find(|(above, _)| input > *above) {
        c = tier.over(&period.base);
    }
    if let Some(st) = service_tier.and_then(|t| period.service_tiers.get(t)) {
        c = st.over(&c);
    }
    c
}

/// Why a call could not be priced under a period that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unpriceable {
    /// A bucket has tokens but the period has no price for it.
    MissingComponent(&'static str),
    /// The model is priced per hour (self-hosted): calls are not priced one by one.
    PerHour,
}

/// Cost of `usage` under `period`, exact; `catalog_version` and `rule` are left empty for the
/// caller to fill.
pub fn cost(period: &Period, usage: &Usage, service_tier: Option<&str>) -> Result<CallCost, Unpriceable> {
    if period.unit == PriceUnit::PerHour {
        return Err(Unpriceable::PerHour);
    }
    let c = applicable(period, usage, service_tier);
    let charge = |tokens: u64, price: Option<Decimal>, name: &'static str| -> Result<Decimal, Unpriceable> {
        match (tokens, price) {
            (0, _) => Ok(Decimal::ZERO),
            (n, Some(p)) => Ok(Decimal::from(n) * p),
            (_, None) => Err(Unpriceable::MissingComponent(name)),
        }
    };
    let input_uncached = charge(usage.input_uncached, c.input, "input")?;
    let cache_read = charge(usage.cache_read, c.cache_read.or(c.input), "cache_read")?;
    let cache_write = charge(usage.cache_write, c.cache_write_5m.or(c.input), "cache_write")?;
    let cache_write_1h = charge(
        usage.cache_write_1h,
        c.cache_write_1h.or(c.cache_write_5m).or(c.input),
        "cache_write_1h",
    )?;
    let output = charge(usage.output, c.output, "output")?;
    let reasoning = charge(usage.reasoning, c.reasoning.or(c.output), "reasoning")?;
    let request = c.per_request.unwrap_or(Decimal::ZERO);
    let total = input_uncached + cache_read + cache_write + cache_write_1h + output + reasoning + request;
    Ok(CallCost {
        total,
        input_uncached,
        cache_read,
        cache_write,
        cache_write_1h,
        output,
        reasoning,
        request,
        catalog_version: String::new(),
        rule: String::new(),
    })
}

/// Prices a call in place: sets `price_status`, and `cost` when priced. Agent, tool and workflow
/// spans, and aggregate spans whose usage sums their children, are not priced.
pub fn price_call(matcher: &Matcher, call: &mut LlmCall) {
    call.cost = None;
    if call.role != SpanRole::ModelCall || !call.counts_usage {
        call.price_status = PriceStatus::NotPriced;
        return;
    }
    let Some(usage) = call.usage else {
        call.price_status = PriceStatus::NoUsage;
        return;
    };
    let model = call.response_model.as_deref().or(call.request_model.as_deref());
    // The response model names the snapshot that answered; fall back to the requested one.
    let found = model
        .and_then(|m| matcher.find(call.provider.as_deref(), m))
        .or_else(|| {
            call.request_model
                .as_deref()
                .and_then(|m| matcher.find(call.provider.as_deref(), m))
        });
    let Some(found) = found else {
        call.price_status = PriceStatus::UnknownModel;
        return;
    };
    let day = Date::from_unix_nanos(call.start_unix_nano);
    let Some(period) = found.model.period_at(day) else {
        call.price_status = PriceStatus::NoPriceAtDate;
        return;
    };
    match cost(period, &usage, call.service_tier.as_deref()) {
        Ok(mut c) => {
            c.catalog_version = if found.user {
                "user".to_owned()
            } else {
                matcher.catalog().version.clone()
            };
            c.rule = found.rule;
            call.cost = Some(c);
            call.price_status = PriceStatus::Priced;
        }
        Err(Unpriceable::PerHour) => call.price_status = PriceStatus::NotPriced,
        Err(Unpriceable::MissingComponent(_)) => call.price_status = PriceStatus::NoPriceAtDate,
    }
}
