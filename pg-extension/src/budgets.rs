//! Stored monthly budgets: one per tenant, optionally narrowed to a service and a model, set by
//! the owner with `llm_set_budget` and evaluated all at once by `llm_budgets_status` (spent,
//! projection with its interval and the run-out time, from `llm_budget`). Readers see the
//! budgets of the tenants they may read, as they see the rollups.

use pgrx::prelude::*;

extension_sql!(
    r#"
CREATE TABLE llm_budgets (
    tenant text,
    service_name text,
    model text,
    monthly_usd numeric NOT NULL CONSTRAINT llm_budgets_positive CHECK (monthly_usd > 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT llm_budgets_scope UNIQUE NULLS NOT DISTINCT (tenant, service_name, model)
);
ALTER TABLE llm_budgets ENABLE ROW LEVEL SECURITY;
CREATE POLICY llm_budgets_read ON llm_budgets FOR SELECT
    USING ((SELECT @extschema@.llm_reads_every_tenant()) OR tenant = ANY ((SELECT @extschema@.llm_visible_tenants())::text[]));
INSERT INTO @extschema@.llm_reader_relations VALUES ('llm_budgets'::regclass, true);
SELECT pg_catalog.pg_extension_config_dump('llm_budgets', '');
COMMENT ON TABLE llm_budgets IS 'Monthly budgets (UTC calendar months) in USD, per tenant (NULL: all tenants together), optionally per service and model; set with llm_set_budget, evaluated by llm_budgets_status().';

CREATE FUNCTION llm_set_budget(monthly_usd numeric, tenant text DEFAULT NULL, service_name text DEFAULT NULL, model text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    IF monthly_usd IS NULL OR monthly_usd <= 0 THEN
        RAISE EXCEPTION 'monthly_usd must be a positive amount, got %', monthly_usd
            USING HINT = 'llm_drop_budget(tenant, service_name, model) removes a budget.';
    END IF;
    INSERT INTO @extschema@.llm_budgets AS b (tenant, service_name, model, monthly_usd)
    VALUES (llm_set_budget.tenant, llm_set_budget.service_name, llm_set_budget.model, llm_set_budget.monthly_usd)
    ON CONFLICT ON CONSTRAINT llm_budgets_scope DO UPDATE SET monthly_usd = excluded.monthly_usd, updated_at = now();
END
$fn$;
COMMENT ON FUNCTION llm_set_budget(numeric, text, text, text) IS 'Sets the monthly budget (USD) of a tenant (NULL: all tenants together), optionally of one service and model within it; replaces the one already set for the same scope.';

CREATE FUNCTION llm_drop_budget(tenant text DEFAULT NULL, service_name text DEFAULT NULL, model text DEFAULT NULL)
RETURNS boolean
LANGUAGE sql AS $fn$
    WITH d AS (DELETE FROM @extschema@.llm_budgets b
                WHERE b.tenant IS NOT DISTINCT FROM llm_drop_budget.tenant
                  AND b.service_name IS NOT DISTINCT FROM llm_drop_budget.service_name
                  AND b.model IS NOT DISTINCT FROM llm_drop_budget.model
               RETURNING 1)
    SELECT count(*) > 0 FROM d;
$fn$;
COMMENT ON FUNCTION llm_drop_budget(text, text, text) IS 'Removes the budget of exactly this scope; true if there was one.';
REVOKE EXECUTE ON FUNCTION llm_set_budget(numeric, text, text, text), llm_drop_budget(text, text, text) FROM PUBLIC;

CREATE FUNCTION llm_budgets_status(as_of timestamptz DEFAULT now(), level double precision DEFAULT 0.9)
RETURNS TABLE (tenant text, service_name text, model text, monthly_usd numeric, spent numeric,
               projected double precision, lower double precision, upper double precision, runout_at timestamptz,
               budget_used double precision, projected_use double precision, over_budget boolean)
LANGUAGE sql STABLE AS $fn$
    WITH m AS (SELECT date_trunc('month', as_of AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS s,
                      (date_trunc('month', as_of AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC' AS e)
    SELECT b.tenant, b.service_name, b.model, b.monthly_usd, p.spent, p.projected, p.lower, p.upper, p.runout_at,
           (p.spent / b.monthly_usd)::double precision, p.projected / b.monthly_usd::double precision,
           p.spent > b.monthly_usd
      FROM @extschema@.llm_budgets b, m,
           LATERAL @extschema@.llm_budget(b.monthly_usd, m.s, m.e, b.tenant, as_of, level, b.service_name, b.model) p
     ORDER BY b.tenant NULLS FIRST, b.service_name NULLS FIRST, b.model NULLS FIRST;
$fn$;
COMMENT ON FUNCTION llm_budgets_status(timestamptz, double precision) IS 'Every stored budget the caller may read, for the UTC month containing as_of: spent so far, the projected month-end spend with an interval at level, when the budget runs out, spent and projected as shares of the budget, and whether it is already exceeded (llm_budget for each).';
"#,
    name = "budgets",
    requires = ["analytics_sql", "llm_calls_management"]
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test(error = "monthly_usd must be a positive amount, got 0")]
    fn a_budget_of_zero_is_an_error_naming_it() {
        Spi::run("SELECT llm_set_budget(0, 'acme')").unwrap();
    }

    #[pg_test]
    fn stored_budgets_are_evaluated_on_their_own_scope() {
        // March 2026: two days of spend for acme (service api: 30 + 10 on model m1, 5 on m2 per
        // day), one for globex; as of the start of 3 March, two completed days of 31.
        Spi::run("SELECT llm_create_partitions('2026-03-01', '2026-03-03')").unwrap();
        Spi::run(
            "INSERT INTO llm_calls (time, end_time, trace_id, span_id, tenant, service_name, dialect, scope_name, role, operation, model,
                 finish_reasons, status, usage_reported, counts_usage, ttft_from_server, tpot_from_server, price_status, cost_usd)
             SELECT t, t + interval '1 second', decode(md5(t::text || n), 'hex'), decode(substr(md5(n || t::text), 1, 16), 'hex'),
                    tenant, 'api', 'otel_genai', 'test', 'model_call', 'chat', model, '{}'::text[], 'ok', true, true, false, false, 'priced', cost
               FROM (VALUES (1, 'acme', 'm1', 30.0), (2, 'acme', 'm1', 10.0), (3, 'acme', 'm2', 5.0), (4, 'globex', 'm1', 7.0)) v(n, tenant, model, cost),
                    (VALUES (timestamptz '2026-03-01 10:00+00'), (timestamptz '2026-03-02 10:00+00')) d(t);
             SELECT llm_refresh_rollups_range('2026-03-01', '2026-03-03');
             SELECT llm_set_budget(1000, 'acme');
             SELECT llm_set_budget(100, 'acme', 'api', 'm2');
             SELECT llm_set_budget(50, 'globex');
             SELECT llm_set_budget(60, 'globex');
             SELECT llm_set_budget(12, 'globex', 'api', 'm1');",
        )
        .unwrap();
        let rows = Spi::get_one::<String>(
            "SELECT string_agg(concat_ws(' ', tenant, coalesce(model, '-'), monthly_usd, spent, round(projected::numeric, 2),
                                         round(budget_used::numeric, 4), over_budget), '; ')
               FROM llm_budgets_status('2026-03-03 00:00+00')",
        )
        .unwrap();
        // acme: 45 a day, 90 so far, 31 days -> 1395; its m2 budget: 5 a day -> 155 of 100;
        // globex: 7 a day, the budget replaced by 60 -> 217; its m1 budget of 12 already spent.
        assert_eq!(
            rows.as_deref(),
            Some(
                "acme - 1000 90.0 1395.00 0.0900 f; acme m2 100 10.0 155.00 0.1000 f; \
                 globex - 60 14.0 217.00 0.2333 f; globex m1 12 14.0 217.00 1.1667 t"
            )
        );
        assert_eq!(
            Spi::get_one::<bool>("SELECT llm_drop_budget('acme', 'api', 'm2')").unwrap(),
            Some(true)
        );
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM llm_budgets_status('2026-03-03 00:00+00')").unwrap(),
            Some(3)
        );
    }
}
