//! `quantile_summary`: the mergeable quantile summary of `llmhub-sketch` as a SQL type (a domain
//! over `bytea` holding the summary's stable, versioned format), with the two-step aggregates
//! `quantile_summary_agg(value)` and `rollup(summary)` and their accessors.
//!
//! The aggregates are written by hand (`CREATE AGGREGATE` below) with an `internal` state and
//! combine, serialize and deserialize functions, so they run in parallel plans and inside
//! TimescaleDB continuous aggregates.

use llmhub_sketch::QuantileSketch;
use pgrx::callconv::{Arg, ArgAbi, BoxRet, FcInfo};
use pgrx::datum::Datum;
use pgrx::nullable::Nullable;
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin,
};
use pgrx::prelude::*;
use pgrx::{FromDatum, Internal, IntoDatum, PgMemoryContexts};

extension_sql!(
    r#"
-- The summary's bytes are its stable on-disk format (magic "LHQS", version 2; version 1 is still read); `=` compares them.
CREATE DOMAIN quantile_summary AS bytea;
COMMENT ON DOMAIN quantile_summary IS
  'Mergeable quantile summary (UDDSketch with binary buckets, relative error 0.389% until the buckets collapse). Build with quantile_summary_agg(value), merge with rollup(summary), read with approx_percentile(p, summary).';
"#,
    name = "quantile_summary_domain",
    bootstrap
);

/// A `quantile_summary` value: the encoded summary.
pub struct QuantileSummary(pub Vec<u8>);

impl FromDatum for QuantileSummary {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, typoid: pg_sys::Oid) -> Option<Self> {
        unsafe { Vec::<u8>::from_polymorphic_datum(datum, is_null, typoid).map(QuantileSummary) }
    }
}

impl IntoDatum for QuantileSummary {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        self.0.into_datum()
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::BYTEAOID
    }
}

unsafe impl<'fcx> ArgAbi<'fcx> for QuantileSummary {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        unsafe {
            arg.unbox_arg_using_from_datum()
                .unwrap_or_else(|| error!("argument {index} must not be null"))
        }
    }

    unsafe fn unbox_nullable_arg(arg: Arg<'_, 'fcx>) -> Nullable<Self> {
        unsafe { arg.unbox_arg_using_from_datum().into() }
    }
}

unsafe impl BoxRet for QuantileSummary {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
        match self.into_datum() {
            Some(datum) => unsafe { fcinfo.return_raw_datum(datum) },
            None => fcinfo.return_null(),
        }
    }
}

unsafe impl SqlTranslatable for QuantileSummary {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(QuantileSummary);
    const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal("quantile_summary"));
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> =
        Ok(ReturnsRef::One(SqlMappingRef::literal("quantile_summary")));
}

/// Decodes a summary argument, raising an error that names the argument.
fn decode(arg: &str, s: &QuantileSummary) -> QuantileSketch {
    match QuantileSketch::from_bytes(&s.0) {
        Ok(q) => q,
        Err(e) => error!("{arg}: {e}"),
    }
}

/// The aggregate's memory context (the state lives as long as the group).
unsafe fn agg_context(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::MemoryContext {
    let mut ctx = std::ptr::null_mut();
    if unsafe { pg_sys::AggCheckCallContext(fcinfo, &mut ctx) } == 0 || ctx.is_null() {
        error!("this function is an aggregate's support function and cannot be called directly");
    }
    ctx
}

/// Stores `sketch` as a new state in the aggregate context.
unsafe fn new_state(fcinfo: pg_sys::FunctionCallInfo, sketch: QuantileSketch) -> Internal {
    unsafe { PgMemoryContexts::For(agg_context(fcinfo)).switch_to(|_| Internal::new(sketch)) }
}

/// Transition of `quantile_summary_agg`: NULL values are skipped; NaN, infinite and negative ones
/// are an error naming the value (a summary holds latencies, token counts and rates).
///
/// Written against PostgreSQL's function-call interface directly rather than with `#[pg_extern]`
/// (it runs once per row). Measured, this gained little: the transition's share of a serial
/// backend's `perf` samples went from 11.9% to 11.1%, most of it the load of the bucket's counter.
/// Declared in SQL below (`quantile_summary_trans_sql`).
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn quantile_summary_trans_fast(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: PostgreSQL calls this with a valid fcinfo of two arguments (internal, float8), as
    // the SQL declaration says; the state, when not NULL, is the pointer `new_state` returned.
    unsafe {
        let fc = &mut *fcinfo;
        let [state, value] = fc.args.as_slice(2) else {
            unreachable!("declared with two arguments")
        };
        let (state, value) = (*state, *value);
        let mut sketch = if state.isnull {
            std::ptr::null_mut()
        } else {
            state.value.cast_mut_ptr::<QuantileSketch>()
        };
        if !value.isnull {
            let v = f64::from_bits(value.value.value() as u64);
            if sketch.is_null() && v.is_finite() && v >= 0.0 {
                let Some(datum) = new_state(fcinfo, QuantileSketch::default()).unwrap() else {
                    unreachable!("a new state is never NULL")
                };
                sketch = datum.cast_mut_ptr::<QuantileSketch>();
            }
            if !(v.is_finite() && v >= 0.0) {
                pgrx::error!(
                    "quantile_summary_agg: value must be a finite number >= 0, got {v} (a summary holds latencies, token counts and rates; leave other values out, e.g. FILTER (WHERE value >= 0))"
                );
            }
            if let Some(s) = sketch.as_mut() {
                // Checked above: `add` cannot refuse it.
                let _ = s.add(v);
            }
        }
        fc.isnull = sketch.is_null();
        pg_sys::Datum::from(sketch)
    }
}

/// `PG_FUNCTION_INFO_V1(quantile_summary_trans_fast)`.
#[unsafe(no_mangle)]
#[doc(hidden)]
pub extern "C" fn pg_finfo_quantile_summary_trans_fast() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

extension_sql!(
    r#"
CREATE FUNCTION quantile_summary_trans(state internal, value double precision) RETURNS internal
  IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'quantile_summary_trans_fast';
"#,
    name = "quantile_summary_trans_sql",
    requires = ["quantile_summary_domain"]
);

/// Transition of `rollup`: merges each summary into the state.
#[pg_extern(immutable, parallel_safe)]
fn quantile_summary_rollup_trans(
    state: Option<Internal>,
    summary: Option<QuantileSummary>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<(i32, u64)>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let mut state = state.unwrap_or_default();
    let Some(summary) = summary else { return state };
    unsafe {
        if !state.initialized() {
            return new_state(fcinfo, decode("summary", &summary));
        }
        if let Some(s) = state.get_mut::<QuantileSketch>() {
            // Merged straight from its bytes: no summary is built for each row.
            let merged = SCRATCH.with(|scratch| s.merge_bytes(&summary.0, &mut scratch.borrow_mut()));
            if let Err(e) = merged {
                error!("summary: {e}");
            }
        }
    }
    state
}

/// Combine function of both aggregates (parallel workers, partial aggregation).
#[pg_extern(immutable, parallel_safe)]
fn quantile_summary_combine(
    a: Option<Internal>,
    b: Option<Internal>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Option<Internal> {
    let a = a.filter(Internal::initialized);
    let b = b.filter(Internal::initialized);
    unsafe {
        match (a, b) {
            (None, None) => None,
            (Some(a), None) => Some(a),
            (None, Some(b)) => {
                // `b` may live in a shorter context: copy it into ours.
                let copy = b.get::<QuantileSketch>().cloned().unwrap_or_default();
                Some(new_state(fcinfo, copy))
            }
            (Some(mut a), Some(b)) => {
                if let (Some(x), Some(y)) = (a.get_mut::<QuantileSketch>(), b.get::<QuantileSketch>()) {
                    if let Err(e) = x.merge(y) {
                        error!("summary: {e}");
                    }
                }
                Some(a)
            }
        }
    }
}

/// Serialize function: the state in the summary's stable format.
#[pg_extern(immutable, parallel_safe, strict)]
fn quantile_summary_serialize(state: Internal) -> Vec<u8> {
    unsafe {
        state
            .get::<QuantileSketch>()
            .map(QuantileSketch::to_bytes)
            .unwrap_or_default()
    }
}

/// Deserialize function (`bytea, internal → internal`, as PostgreSQL requires).
#[pg_extern(immutable, parallel_safe, strict)]
fn quantile_summary_deserialize(bytes: Vec<u8>, _unused: Internal, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    let sketch = match QuantileSketch::from_bytes(&bytes) {
        Ok(s) => s,
        Err(e) => error!("partial aggregate state: {e}"),
    };
    unsafe { new_state(fcinfo, sketch) }
}

/// Final function of both aggregates: the summary, or NULL for a group without values.
#[pg_extern(immutable, parallel_safe)]
fn quantile_summary_final(state: Option<Internal>) -> Option<QuantileSummary> {
    let state = state?;
    unsafe { state.get::<QuantileSketch>().map(|s| QuantileSummary(s.to_bytes())) }
}

extension_sql!(
    r#"
CREATE AGGREGATE quantile_summary_agg(value double precision) (
    sfunc = quantile_summary_trans,
    stype = internal,
    finalfunc = quantile_summary_final,
    combinefunc = quantile_summary_combine,
    serialfunc = quantile_summary_serialize,
    deserialfunc = quantile_summary_deserialize,
    parallel = safe
);
COMMENT ON AGGREGATE quantile_summary_agg(double precision) IS
  'Quantile summary of the values (NULL values are skipped; NaN, infinite and negative ones are an error); NULL for a group without values.';

CREATE AGGREGATE rollup(summary quantile_summary) (
    sfunc = quantile_summary_rollup_trans,
    stype = internal,
    finalfunc = quantile_summary_final,
    combinefunc = quantile_summary_combine,
    serialfunc = quantile_summary_serialize,
    deserialfunc = quantile_summary_deserialize,
    parallel = safe
);
COMMENT ON AGGREGATE rollup(quantile_summary) IS
  'Merges quantile summaries (e.g. hourly into daily): the result equals one summary over all the values.';
"#,
    name = "quantile_summary_aggregates",
    requires = [
        "quantile_summary_trans_sql",
        quantile_summary_rollup_trans,
        quantile_summary_combine,
        quantile_summary_serialize,
        quantile_summary_deserialize,
        quantile_summary_final
    ]
);

/// The approximate `percentile` (0 to 1) of the values summarized, within the summary's error
/// bound (0.389% unless its buckets collapsed; see `error_bound`). NULL for an empty summary.
#[pg_extern(immutable, parallel_safe, strict)]
fn approx_percentile(percentile: f64, summary: QuantileSummary) -> Option<f64> {
    if !(0.0..=1.0).contains(&percentile) {
        error!("percentile must be between 0 and 1, got {percentile}");
    }
    decode("summary", &summary).quantile(percentile)
}

/// The share (0 to 1) of the values summarized that are at or below `value`: the inverse of
/// `approx_percentile`, for "share of calls under 2 s". Exact below the minimum and from the
/// maximum on; otherwise the exact share at a value within `error_bound` of `value`. NULL for an
/// empty summary.
#[pg_extern(immutable, parallel_safe, strict)]
fn approx_percentile_rank(value: f64, summary: QuantileSummary) -> Option<f64> {
    if value.is_nan() {
        error!("value must be a number, got NaN");
    }
    decode("summary", &summary).rank(value)
}

/// Number of values summarized.
#[pg_extern(immutable, parallel_safe, strict)]
fn num_vals(summary: QuantileSummary) -> i64 {
    i64::try_from(decode("summary", &summary).count()).unwrap_or(i64::MAX)
}

/// Mean of the values summarized (exact); NULL when empty.
#[pg_extern(immutable, parallel_safe, strict)]
fn mean(summary: QuantileSummary) -> Option<f64> {
    decode("summary", &summary).mean()
}

/// Smallest value summarized (exact); NULL when empty.
#[pg_extern(immutable, parallel_safe, strict)]
fn min_val(summary: QuantileSummary) -> Option<f64> {
    decode("summary", &summary).min()
}

/// Largest value summarized (exact); NULL when empty.
#[pg_extern(immutable, parallel_safe, strict)]
fn max_val(summary: QuantileSummary) -> Option<f64> {
    decode("summary", &summary).max()
}

/// The relative error bound that holds for this summary's percentiles.
#[pg_extern(immutable, parallel_safe, strict)]
fn error_bound(summary: QuantileSummary) -> f64 {
    decode("summary", &summary).error_bound()
}
