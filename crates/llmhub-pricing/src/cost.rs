//! Exact cost of a call: token buckets × per-token prices in decimal, per bucket and in total.
//!
//! Price selection within a period: the base prices; replaced, for a prompt larger than a tier's
//! threshold (all input tokens, cached or not), by the highest such tier's prices (a component
//! missing from a tier falls back to the base). When the call names a service tier the period prices
//! (`batch`, `flex`, `priority`), its prices apply as written to a standard-size prompt; for a long
//! prompt, and for components the service tier does not list, its ratio to the base price (input
//! side, output side) scales the price chosen so far — so batch on a long prompt is the long-context
//! price at the batch discount, and batch cache reads get the batch discount too. Cache reads are charged at
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
    let tier = period
        .tiers
        .iter()
        .rev()
        .find(|(above, _)| input > *above)
        .map(|(_, t)| t.over(&period.base));
    let current = tier.unwrap_or(period.base);
    let Some(st) = service_tier.and_then(|t| period.service_tiers.get(t)) else {
        return current;
    };
    // A service tier is a discount or surcharge on the standard price. Its own prices apply as
    // written to a standard-size prompt; for a long prompt, and for a component it does not list,
    // its ratio to the base price (input side, output side) scales the price chosen so far.
    let ratio = |tier_price: Option<Decimal>, base_price: Option<Decimal>| match (tier_price, base_price) {
        (Some(t), Some(b)) if !b.is_zero() => t.checked_div(b),
        _ => None,
    };
    let r_in = ratio(st.input, period.base.input);
    let r_out = ratio(st.output, period.base.output);
    let pick = |explicit: Option<Decimal>, cur: Option<Decimal>, r: Option<Decimal>| match (tier.is_some(), explicit) {
        (false, Some(e)) => Some(e),
        _ => match (cur, r) {
            (Some(c), Some(r)) => c.checked_mul(r).or(explicit).or(Some(c)),
            (c, _) => explicit.or(c),
        },
    };
    Components {
        input: pick(st.input, current.input, r_in),
        output: pick(st.output, current.output, r_out),
        cache_read: pick(st.cache_read, current.cache_read, r_in),
        cache_write_5m: pick(st.cache_write_5m, current.cache_write_5m, r_in),
        cache_write_1h: pick(st.cache_write_1h, current.cache_write_1h, r_in),
        reasoning: pick(st.reasoning, current.reasoning, r_out),
        per_request: st.per_request.or(current.per_request),
    }
}

/// Why a call could not be priced under a period that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unpriceable {
    /// A bucket has tokens but the period has no price for it.
    MissingComponent(&'static str),
    /// The model is priced per hour (self-hosted): calls are not priced one by one.
    PerHour,
    /// The amount does not fit a decimal (absurd prices from a user catalog).
    Overflow,
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
            (n, Some(p)) => Decimal::from(n).checked_mul(p).ok_or(Unpriceable::Overflow),
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
    let total = [cache_read, cache_write, cache_write_1h, output, reasoning, request]
        .into_iter()
        .try_fold(input_uncached, |acc, x| acc.checked_add(x))
        .ok_or(Unpriceable::Overflow)?;
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
        Err(Unpriceable::MissingComponent(_) | Unpriceable::Overflow) => call.price_status = PriceStatus::NoPriceAtDate,
    }
}
