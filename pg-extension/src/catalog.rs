//! The price catalog as effective-dated tables: `llm_price_catalogs` keeps each loaded catalog
//! (its YAML, exactly what the processor reads), `llm_price_catalog_activations` which one is
//! active (the latest activation; the built-in catalog when there is none), and `llm_prices` lists
//! every model's prices per period, base and tiers, for people to query. Pricing itself always goes
//! through `llmhub-pricing` on the catalog's YAML, so SQL prices a call as the processor does.
//!
//! A catalog version's content never changes: loading a version again with other content is an
//! error, and `source` cannot be updated. Each backend keeps the parsed catalogs it used, by
//! version, and checks once per transaction that the row it parsed is still the one stored.
//!
//! The built-in catalog is inserted by `CREATE EXTENSION` (`builtin`), so `pg_dump` leaves its rows
//! out of the dump (they come back with the extension); everything users load is dumped.

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
    loaded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    builtin boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE llm_price_catalogs IS 'Every price catalog loaded with llm_price_catalog_load (YAML as llmhub reads it); builtin: the one shipped with the extension.';
SELECT pg_catalog.pg_extension_config_dump('llm_price_catalogs', 'WHERE NOT builtin');
CREATE FUNCTION llm_price_catalogs_immutable() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'a loaded price catalog does not change: load the changed one under its own catalog_version';
END
$fn$;
CREATE TRIGGER llm_price_catalogs_immutable BEFORE UPDATE OF version, source ON llm_price_catalogs
    FOR EACH ROW EXECUTE FUNCTION llm_price_catalogs_immutable();

CREATE TABLE llm_price_catalog_activations (
    activated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    version text NOT NULL REFERENCES llm_price_catalogs (version) ON DELETE CASCADE
);
COMMENT ON TABLE llm_price_catalog_activations IS 'Which catalog prices calls by default: the latest activation, or the built-in catalog when there is none.';
SELECT pg_catalog.pg_extension_config_dump('llm_price_catalog_activations', '');

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
SELECT pg_catalog.pg_extension_config_dump('llm_prices',
    'WHERE catalog_version NOT IN (SELECT version FROM llm_price_catalogs WHERE builtin)');
GRANT SELECT ON llm_price_catalogs, llm_price_catalog_activations, llm_prices TO PUBLIC;

CREATE FUNCTION llm_active_price_catalog() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    SELECT coalesce(
        (SELECT a.version FROM @extschema@.llm_price_catalog_activations a ORDER BY a.activated_at DESC LIMIT 1),
        (SELECT c.version FROM @extschema@.llm_price_catalogs c WHERE c.builtin ORDER BY c.loaded_at DESC LIMIT 1))
$fn$;
COMMENT ON FUNCTION llm_active_price_catalog() IS 'The version of the catalog that prices calls by default.';
"#,
    name = "price_catalog_tables"
);

extension_sql!(
    "SELECT llm_price_catalog_load(activate => false);\nUPDATE llm_price_catalogs SET builtin = true;\n",
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

/// The extension's schema, quoted: SPI queries name it, so they work under any `search_path`.
fn ext_schema() -> &'static str {
    thread_local! {
        static SCHEMA: &'static str = Box::leak(
            one::<String>(
                "finding the extension's schema",
                "SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e
                   JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'llm_analytics'",
                &[],
            )
            .unwrap_or_else(|| "public".to_owned())
            .into_boxed_str(),
        );
    }
    SCHEMA.with(|s| *s)
}

/// A parsed catalog, the `loaded_at` of the row it came from, and the transaction that last
/// checked that row (by start time).
struct Cached {
    loaded_at: i64,
    checked_in: i64,
    matcher: Rc<Matcher>,
}

thread_local! {
    static MATCHERS: RefCell<HashMap<String, Cached>> = RefCell::new(HashMap::new());
}

fn transaction_start() -> i64 {
    // SAFETY: reads the start timestamp of the current transaction; no arguments, no side effects.
    unsafe { pg_sys::GetCurrentTransactionStartTimestamp() }
}

/// The matcher for catalog `version`, or for the active catalog when `version` is None.
pub fn matcher(version: Option<&str>) -> Rc<Matcher> {
    let schema = ext_schema();
    let version = match version {
        Some(v) => v.to_owned(),
        None => one::<String>(
            "reading the active price catalog",
            &format!("SELECT {schema}.llm_active_price_catalog()"),
            &[],
        )
        .unwrap_or_else(|| error!("no active price catalog: load one with SELECT llm_price_catalog_load()")),
    };
    let now = transaction_start();
    if let Some(m) = MATCHERS.with(|c| {
        c.borrow()
            .get(&version)
            .filter(|e| e.checked_in == now)
            .map(|e| e.matcher.clone())
    }) {
        return m;
    }
    // Once per transaction: is the row we parsed still the stored one?
    let loaded_at = one::<TimestampWithTimeZone>(
        "reading llm_price_catalogs",
        &format!("SELECT loaded_at FROM {schema}.llm_price_catalogs WHERE version = $1"),
        &[version.as_str().into()],
    )
    .map(pg_sys::TimestampTz::from)
    .unwrap_or_else(|| error!("catalog_version: no price catalog {version:?} is loaded (see llm_price_catalogs)"));
    let reuse = MATCHERS.with(|c| {
        let mut c = c.borrow_mut();
        let e = c.get_mut(&version).filter(|e| e.loaded_at == loaded_at)?;
        e.checked_in = now;
        Some(e.matcher.clone())
    });
    if let Some(m) = reuse {
        return m;
    }
    let source = one::<String>(
        "reading llm_price_catalogs",
        &format!("SELECT source FROM {schema}.llm_price_catalogs WHERE version = $1"),
        &[version.as_str().into()],
    )
    .unwrap_or_else(|| error!("catalog_version: no price catalog {version:?} is loaded (see llm_price_catalogs)"));
    let catalog =
        llmhub_pricing::load(&source).unwrap_or_else(|e| error!("price catalog {version:?} does not load: {e}"));
    let m = Rc::new(Matcher::new(catalog, None, Default::default()));
    MATCHERS.with(|c| {
        c.borrow_mut().insert(
            version,
            Cached {
                loaded_at,
                checked_in: now,
                matcher: m.clone(),
            },
        )
    });
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
    let schema = ext_schema();
    let existing = one::<String>(
        "reading llm_price_catalogs",
        &format!("SELECT source FROM {schema}.llm_price_catalogs WHERE version = $1"),
        &[version.as_str().into()],
    );
    match existing {
        Some(s) if s == text => {}
        Some(_) => error!(
            "source: catalog version {version:?} is already loaded with other content; give the changed catalog its own catalog_version"
        ),
        None => {
            Spi::run_with_args(
                &format!("INSERT INTO {schema}.llm_price_catalogs (version, source) VALUES ($1, $2)"),
                &[version.as_str().into(), text.into()],
            )
            .unwrap_or_else(|e| error!("writing llm_price_catalogs: {e}"));
            insert_prices(schema, &catalog);
        }
    }
    if activate {
        Spi::run_with_args(
            &format!("INSERT INTO {schema}.llm_price_catalog_activations (version) VALUES ($1)"),
            &[version.as_str().into()],
        )
        .unwrap_or_else(|e| error!("activating catalog {version:?}: {e}"));
    }
    version
}

fn insert_prices(schema: &str, catalog: &Catalog) {
    let insert = format!(
        "INSERT INTO {schema}.llm_prices (catalog_version, provider, model, aliases, valid_from, valid_to, unit, tier_kind, tier,
         input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_5m_per_mtok, cache_write_1h_per_mtok, reasoning_per_mtok, per_request, source)
         VALUES ($1, $2, $3, $4, $5::date, $6::date, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    );
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
                Spi::run_with_args(&insert, &args).unwrap_or_else(|e| error!("writing llm_prices: {e}"));
            }
        }
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    use crate::sql_text as text;

    #[pg_test]
    fn activation_switches_back_and_forth_and_builtin_rows_are_marked() {
        let builtin = llmhub_pricing::embedded().unwrap().version;
        assert_eq!(
            text("SELECT string_agg(version, ',') FROM llm_price_catalogs WHERE builtin"),
            Some(builtin.clone())
        );
        let custom = llmhub_pricing::EMBEDDED_CATALOG.replacen(
            llmhub_pricing::EMBEDDED_CATALOG
                .lines()
                .find(|l| l.starts_with("catalog_version:"))
                .unwrap(),
            "catalog_version: \"custom.1\"",
            1,
        );
        Spi::run_with_args("SELECT llm_price_catalog_load($1)", &[custom.into()]).unwrap();
        assert_eq!(text("SELECT llm_price_catalog_version()").as_deref(), Some("custom.1"));
        assert_eq!(text("SELECT llm_price_catalog_load()"), Some(builtin.clone()));
        assert_eq!(text("SELECT llm_active_price_catalog()"), Some(builtin.clone()));
        assert_eq!(text("SELECT llm_price_catalog_version()"), Some(builtin));
        assert_eq!(
            text("SELECT string_agg(version, ',') FROM llm_price_catalogs WHERE NOT builtin"),
            Some("custom.1".to_owned()),
            "what pg_dump keeps"
        );
    }

    #[pg_test(error = "a loaded price catalog does not change: load the changed one under its own catalog_version")]
    fn a_loaded_catalog_cannot_be_edited() {
        Spi::run("UPDATE llm_price_catalogs SET source = source || ' '").unwrap();
    }
}
