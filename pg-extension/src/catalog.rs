//! The price catalog as effective-dated tables: `llm_price_catalogs` keeps each loaded catalog
//! (its YAML, exactly what the processor reads) and which one is active; `llm_prices` lists every
//! model's prices per period, base and tiers, for people to query. Pricing itself always goes
//! through `llmhub-pricing` on the catalog's YAML, so SQL prices a call as the processor does.
//!
//! A catalog version's content never changes: loading a version again with other content is an
//! error. Each backend keeps the parsed catalogs it used, by version.

use llmhub_pricing::catalog::{Components, PriceUnit, MILLION};
use llmhub_pricing::{Catalog, Matcher};
use pgrx::prelude::*;
use pgrx::AnyNumeric;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

extension_sql!(
    r#"
CREATE TABLE llm_price_catalogs (
    version text PRIMARY KEY,
    source text NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    active boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX llm_price_catalogs_one_active ON llm_price_catalogs (active) WHERE active;
COMMENT ON TABLE llm_price_catalogs IS 'Every price catalog loaded with llm_price_catalog_load (YAML as llmhub reads it); the active one prices calls by default.';
SELECT pg_catalog.pg_extension_config_dump('llm_price_catalogs', '');

CREATE TABLE llm_prices (
    catalog_version text NOT NULL REFERENCES llm_price_catalogs (version) ON DELETE CASCADE,
    provider text NOT NULL,
    model text NOT NULL,
    aliases text[] NOT NULL,
    valid_from date NOT NULL,
    valid_to date,
    unit text NOT NULL,
    tier_kind text NOT NULL CHECK (tier_kind IN ('base', 'prompt_tokens_over', 'service_tier')),
    tier text,
    input_per_mtok numeric,
    output_per_mtok numeric,
    cache_read_per_mtok numeric,
    cache_write_5m_per_mtok numeric,
    cache_write_1h_per_mtok numeric,
    reasoning_per_mtok numeric,
    per_request numeric,
    source text NOT NULL
);
CREATE INDEX llm_prices_lookup ON llm_prices (catalog_version, provider, model, valid_from);
COMMENT ON TABLE llm_prices IS 'Prices of each catalog by model and effective period (valid_from inclusive, valid_to exclusive, UTC days), USD per million tokens. Tier rows hold only the components they change.';
SELECT pg_catalog.pg_extension_config_dump('llm_prices', '');
GRANT SELECT ON llm_price_catalogs, llm_prices TO PUBLIC;
"#,
    name = "price_catalog_tables"
);

extension_sql!(
    "SELECT llm_price_catalog_load();\n",
    name = "price_catalog_initial_load",
    requires = ["price_catalog_tables", llm_price_catalog_load]
);

/// The first column of the first row, None when there is no row or it is NULL; other errors abort
/// the statement with `what` in the message.
fn one<T: pgrx::FromDatum + pgrx::IntoDatum>(what: &str, query: &str, args: &[pgrx::datum::DatumWithOid]) -> Option<T> {
    match Spi::get_one_with_args::<T>(query, args) {
        Ok(v) => v,
        Err(pgrx::spi::SpiError::InvalidPosition) => None,
        Err(e) => error!("{what}: {e}"),
    }
}

thread_local! {
    static MATCHERS: RefCell<HashMap<String, Rc<Matcher>>> = RefCell::new(HashMap::new());
}

/// The matcher for catalog `version`, or for the active catalog when `version` is None.
pub fn matcher(version: Option<&str>) -> Rc<Matcher> {
    let version = match version {
        Some(v) => v.to_owned(),
        None => one::<String>(
            "reading llm_price_catalogs",
            "SELECT version FROM llm_price_catalogs WHERE active",
            &[],
        )
        .unwrap_or_else(|| error!("no active price catalog: load one with SELECT llm_price_catalog_load()")),
    };
    if let Some(m) = MATCHERS.with(|c| c.borrow().get(&version).cloned()) {
        return m;
    }
    let source = Spi::get_one_with_args::<String>(
        "SELECT source FROM llm_price_catalogs WHERE version = $1",
        &[version.as_str().into()],
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| error!("catalog_version: no price catalog {version:?} is loaded (see llm_price_catalogs)"));
    let catalog =
        llmhub_pricing::load(&source).unwrap_or_else(|e| error!("price catalog {version:?} does not load: {e}"));
    let m = Rc::new(Matcher::new(catalog, None, Default::default()));
    MATCHERS.with(|c| c.borrow_mut().insert(version, m.clone()));
    m
}

fn per_mtok(d: Option<rust_decimal::Decimal>) -> Option<AnyNumeric> {
    d.map(|d| numeric((d * MILLION).normalize()))
}

/// An exact decimal as `numeric`.
pub fn numeric(d: rust_decimal::Decimal) -> AnyNumeric {
    AnyNumeric::try_from(d.to_string().as_str()).unwrap_or_else(|e| error!("{d} does not convert to numeric: {e}"))
}

fn unit_name(u: PriceUnit) -> &'static str {
    match u {
        PriceUnit::PerMillionTokens => "per_million_tokens",
        PriceUnit::PerRequest => "per_request",
        PriceUnit::PerHour => "per_hour",
    }
}

/// Loads a price catalog (YAML in llmhub's catalog format; NULL loads the catalog built into this
/// extension) into `llm_price_catalogs` and `llm_prices`, makes it the active one when `activate`,
/// and returns its version.
#[pg_extern(volatile, parallel_unsafe)]
fn llm_price_catalog_load(source: default!(Option<&str>, "NULL"), activate: default!(bool, true)) -> String {
    let text = source.unwrap_or(llmhub_pricing::EMBEDDED_CATALOG);
    let catalog: Catalog =
        llmhub_pricing::load(text).unwrap_or_else(|e| error!("source: not a valid price catalog: {e}"));
    let version = catalog.version.clone();
    let existing = one::<String>(
        "reading llm_price_catalogs",
        "SELECT source FROM llm_price_catalogs WHERE version = $1",
        &[version.as_str().into()],
    );
    match existing {
        Some(s) if s == text => {}
        Some(_) => error!(
            "source: catalog version {version:?} is already loaded with other content; give the changed catalog its own catalog_version"
        ),
        None => {
            Spi::run_with_args(
                "INSERT INTO llm_price_catalogs (version, source) VALUES ($1, $2)",
                &[version.as_str().into(), text.into()],
            )
            .unwrap_or_else(|e| error!("writing llm_price_catalogs: {e}"));
            insert_prices(&catalog);
        }
    }
    if activate {
        Spi::run_with_args(
            "UPDATE llm_price_catalogs SET active = (version = $1) WHERE active OR version = $1",
            &[version.as_str().into()],
        )
        .unwrap_or_else(|e| error!("activating catalog {version:?}: {e}"));
    }
    version
}

fn insert_prices(catalog: &Catalog) {
    const INSERT: &str = "INSERT INTO llm_prices (catalog_version, provider, model, aliases, valid_from, valid_to, unit, tier_kind, tier,
         input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_5m_per_mtok, cache_write_1h_per_mtok, reasoning_per_mtok, per_request, source)
         VALUES ($1, $2, $3, $4, $5::date, $6::date, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";
    for m in &catalog.models {
        for p in &m.periods {
            let mut rows: Vec<(&str, Option<String>, &Components)> = vec![("base", None, &p.base)];
            rows.extend(
                p.tiers
                    .iter()
                    .map(|(over, c)| ("prompt_tokens_over", Some(over.to_string()), c)),
            );
            rows.extend(
                p.service_tiers
                    .iter()
                    .map(|(name, c)| ("service_tier", Some(name.clone()), c)),
            );
            for (kind, tier, c) in rows {
                let args: Vec<pgrx::datum::DatumWithOid> = vec![
                    catalog.version.as_str().into(),
                    m.provider.as_str().into(),
                    m.model.as_str().into(),
                    m.aliases.clone().into(),
                    p.from.to_string().into(),
                    p.to.map(|d| d.to_string()).into(),
                    unit_name(p.unit).into(),
                    kind.into(),
                    tier.into(),
                    per_mtok(c.input).into(),
                    per_mtok(c.output).into(),
                    per_mtok(c.cache_read).into(),
                    per_mtok(c.cache_write_5m).into(),
                    per_mtok(c.cache_write_1h).into(),
                    per_mtok(c.reasoning).into(),
                    c.per_request.map(|d| numeric(d.normalize())).into(),
                    p.source.as_str().into(),
                ];
                Spi::run_with_args(INSERT, &args).unwrap_or_else(|e| error!("writing llm_prices: {e}"));
            }
        }
    }
}
