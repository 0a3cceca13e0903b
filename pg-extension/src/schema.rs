//! `llm_calls` and its management: the table the sink writes into (same columns as the sink's own,
//! `sql/llm_calls.sql`), indexes for the dashboards' queries, TimescaleDB hypertable or native daily
//! partitions, and tenant isolation with row-level security.
//!
//! Tenant isolation: a reader sees the rows whose `tenant` equals the connection's `llmhub.tenant`
//! setting, and only when that tenant was granted to the role (`llm_grant_reader`), so a role that
//! changes the setting cannot read another tenant's rows. Unset or not granted: no rows.

use pgrx::prelude::*;

extension_sql_file!("../sql/llm_calls.sql", name = "llm_calls_table");

extension_sql!(
    r#"
COMMENT ON TABLE llm_calls IS 'One row per LLM call, agent or tool step, written by llmhub. Costs are exact USD decimals; NULL cost means not priced (see price_status).';
SELECT pg_catalog.pg_extension_config_dump('llm_calls', '');

-- The dashboards filter by time, then by tenant, service, model or conversation.
CREATE INDEX llm_calls_time_idx ON llm_calls (time DESC);
CREATE INDEX llm_calls_tenant_time_idx ON llm_calls (tenant, time DESC);
CREATE INDEX llm_calls_service_time_idx ON llm_calls (service_name, time DESC);
CREATE INDEX llm_calls_model_time_idx ON llm_calls (model, time DESC);
CREATE INDEX llm_calls_conversation_idx ON llm_calls (conversation_id, time) WHERE conversation_id IS NOT NULL;

-- Which tenants a role may select with `SET llmhub.tenant`. '*' grants every tenant (an
-- application role that serves all tenants and sets the parameter per request).
CREATE TABLE llm_tenant_grants (
    role_name name NOT NULL,
    tenant text NOT NULL,
    PRIMARY KEY (role_name, tenant)
);
COMMENT ON TABLE llm_tenant_grants IS 'Tenants each role may read (llm_grant_reader); ''*'' is every tenant.';
SELECT pg_catalog.pg_extension_config_dump('llm_tenant_grants', '');
ALTER TABLE llm_tenant_grants ENABLE ROW LEVEL SECURITY;
-- A role sees its own grants (and those of roles it is a member of), nothing else.
CREATE POLICY llm_tenant_grants_own ON llm_tenant_grants FOR SELECT
    USING (role_name IN (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER')));
GRANT SELECT ON llm_tenant_grants TO PUBLIC;

CREATE FUNCTION llm_current_tenant() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    SELECT s.t FROM (SELECT nullif(pg_catalog.current_setting('llmhub.tenant', true), '') AS t) s
    WHERE EXISTS (SELECT 1 FROM @extschema@.llm_tenant_grants g WHERE g.tenant = s.t OR g.tenant = '*')
$fn$;
COMMENT ON FUNCTION llm_current_tenant() IS 'The connection''s llmhub.tenant when the current role may read it, else NULL.';

ALTER TABLE llm_calls ENABLE ROW LEVEL SECURITY;
-- (SELECT ...) makes the tenant an InitPlan: computed once per query, and the tenant index applies.
CREATE POLICY llm_calls_tenant_read ON llm_calls FOR SELECT
    USING (tenant = (SELECT @extschema@.llm_current_tenant()));
CREATE POLICY llm_calls_insert ON llm_calls FOR INSERT WITH CHECK (true);

CREATE FUNCTION llm_create_partitions(from_day date, to_day date) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $fn$
DECLARE
    d date;
    created integer := 0;
    nsp text;
    part text;
BEGIN
    IF from_day IS NULL THEN RAISE EXCEPTION 'from_day must not be NULL'; END IF;
    IF to_day IS NULL THEN RAISE EXCEPTION 'to_day must not be NULL'; END IF;
    IF to_day < from_day THEN
        RAISE EXCEPTION 'to_day (%) must not be before from_day (%)', to_day, from_day;
    END IF;
    IF to_day - from_day > 3660 THEN
        RAISE EXCEPTION 'to_day: at most 3661 days per call, got % to %', from_day, to_day;
    END IF;
    IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = 'llm_calls'::regclass) <> 'p' THEN
        RETURN 0; -- a hypertable (TimescaleDB makes its chunks) or a plain table
    END IF;
    SELECT n.nspname INTO nsp FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = 'llm_calls'::regclass;
    -- The same lock as llmhub's sink, so the two never race on one partition.
    PERFORM pg_catalog.pg_advisory_xact_lock(119212947830114);
    FOR d IN SELECT g::date FROM pg_catalog.generate_series(from_day::timestamp, to_day::timestamp, interval '1 day') g LOOP
        part := 'llm_calls_p' || pg_catalog.to_char(d, 'YYYYMMDD');
        IF pg_catalog.to_regclass(pg_catalog.quote_ident(nsp) || '.' || pg_catalog.quote_ident(part)) IS NULL THEN
            EXECUTE pg_catalog.format('CREATE TABLE %I.%I PARTITION OF %I.llm_calls FOR VALUES FROM (%L) TO (%L)',
                nsp, part, nsp, d::text || ' 00:00:00+00', (d + 1)::text || ' 00:00:00+00');
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$fn$;
-- Only the owner and the roles llm_grant_writer names may create partitions.
REVOKE EXECUTE ON FUNCTION llm_create_partitions(date, date) FROM PUBLIC;
COMMENT ON FUNCTION llm_create_partitions(date, date) IS 'Creates the missing daily (UTC) partitions of llm_calls for from_day..to_day; returns how many. 0 for a hypertable.';

CREATE FUNCTION llm_ensure_partitions(ahead_days integer DEFAULT 7) RETURNS integer
LANGUAGE plpgsql AS $fn$
BEGIN
    IF ahead_days IS NULL OR ahead_days < 0 OR ahead_days > 3660 THEN
        RAISE EXCEPTION 'ahead_days must be between 0 and 3660, got %', ahead_days;
    END IF;
    RETURN @extschema@.llm_create_partitions((pg_catalog.now() AT TIME ZONE 'UTC')::date,
                                             (pg_catalog.now() AT TIME ZONE 'UTC')::date + ahead_days);
END
$fn$;
COMMENT ON FUNCTION llm_ensure_partitions(integer) IS 'Creates the partitions for today (UTC) and ahead_days after it; run it daily (pg_cron) when nothing else writes. llmhub''s sink does it with every batch.';

CREATE FUNCTION llm_drop_partitions(older_than interval) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    cutoff date;
    dropped integer := 0;
    p record;
BEGIN
    IF older_than IS NULL OR older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must be a non-negative interval, got %', older_than;
    END IF;
    cutoff := ((pg_catalog.now() - older_than) AT TIME ZONE 'UTC')::date;
    FOR p IN
        SELECT c.oid::regclass AS rel, c.relname
          FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = '@extschema@.llm_calls'::regclass
           AND c.relname ~ '^llm_calls_p[0-9]{8}$'
    LOOP
        -- A partition holds one day: drop it once the whole day is older than the cutoff.
        IF pg_catalog.to_date(pg_catalog.substr(p.relname, 12), 'YYYYMMDD') + 1 <= cutoff THEN
            EXECUTE pg_catalog.format('DROP TABLE %s', p.rel);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END
$fn$;
COMMENT ON FUNCTION llm_drop_partitions(interval) IS 'Retention for native partitions: drops the daily partitions entirely older than now() - older_than; returns how many. (For a hypertable use TimescaleDB''s drop_chunks.)';

CREATE FUNCTION llm_to_hypertable(rel regclass DEFAULT '@extschema@.llm_calls', chunk_interval interval DEFAULT '1 day') RETURNS boolean
LANGUAGE plpgsql AS $fn$
DECLARE
    ts_schema text;
    kind "char";
BEGIN
    IF rel IS NULL THEN RAISE EXCEPTION 'rel must not be NULL'; END IF;
    IF chunk_interval IS NULL OR chunk_interval <= interval '0' THEN
        RAISE EXCEPTION 'chunk_interval must be a positive interval, got %', chunk_interval;
    END IF;
    SELECT n.nspname INTO ts_schema FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'timescaledb';
    IF ts_schema IS NULL THEN
        RAISE EXCEPTION 'llm_to_hypertable: TimescaleDB is not installed in this database'
            USING HINT = 'CREATE EXTENSION timescaledb first, or keep native partitions (llm_create_partitions).';
    END IF;
    IF EXISTS (SELECT 1 FROM timescaledb_information.hypertables h
                WHERE pg_catalog.format('%I.%I', h.hypertable_schema, h.hypertable_name)::regclass = rel) THEN
        RETURN false;
    END IF;
    SELECT c.relkind INTO kind FROM pg_catalog.pg_class c WHERE c.oid = rel;
    IF kind = 'p' THEN
        RAISE EXCEPTION 'rel: % is natively partitioned, and TimescaleDB cannot convert a partitioned table', rel
            USING HINT = 'Create a plain table with the same columns, call llm_to_hypertable on it, then move the rows with INSERT ... SELECT.';
    END IF;
    EXECUTE pg_catalog.format(
        'SELECT %I.create_hypertable(%L::regclass, ''time'', chunk_time_interval => %L::interval, migrate_data => true, create_default_indexes => false)',
        ts_schema, rel, chunk_interval);
    RETURN true;
END
$fn$;
COMMENT ON FUNCTION llm_to_hypertable(regclass, interval) IS 'Turns llm_calls (or another table with a time column) into a TimescaleDB hypertable, moving its rows; false when it already is one.';

-- TimescaleDB present when the extension is created: llm_calls was made a plain table; make it a hypertable.
DO $do$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'timescaledb') THEN
        PERFORM @extschema@.llm_to_hypertable('@extschema@.llm_calls');
    END IF;
END
$do$;

CREATE FUNCTION llm_grant_reader(role_name name, tenant text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE t text;
BEGIN
    IF role_name IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role_name: role % does not exist', role_name;
    END IF;
    IF tenant IS NULL OR tenant = '' THEN RAISE EXCEPTION 'tenant must be a tenant name or ''*'', got %', tenant; END IF;
    EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA @extschema@ TO %I', role_name);
    FOR t IN SELECT unnest(ARRAY['llm_calls', 'llm_rollup_1m', 'llm_rollup_1h', 'llm_rollup_1d', 'llm_rollup_top_traces_1h',
                                  'llm_rollup_top_conversations_1h', 'llm_rollup_agents_1h', 'llm_agent_runaways']) LOOP
        IF pg_catalog.to_regclass('@extschema@.' || t) IS NOT NULL THEN
            EXECUTE pg_catalog.format('GRANT SELECT ON @extschema@.%I TO %I', t, role_name);
        END IF;
    END LOOP;
    INSERT INTO @extschema@.llm_tenant_grants VALUES (role_name, tenant) ON CONFLICT DO NOTHING;
END
$fn$;
COMMENT ON FUNCTION llm_grant_reader(name, text) IS 'Lets role_name read the rows of tenant (''*'': every tenant) in llm_calls and the rollups, once its connection sets llmhub.tenant.';

CREATE FUNCTION llm_revoke_reader(role_name name, tenant text) RETURNS void
LANGUAGE sql AS $fn$
    DELETE FROM @extschema@.llm_tenant_grants g WHERE g.role_name = llm_revoke_reader.role_name AND g.tenant = llm_revoke_reader.tenant;
$fn$;

CREATE FUNCTION llm_grant_writer(role_name name) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    IF role_name IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role_name: role % does not exist', role_name;
    END IF;
    EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA @extschema@ TO %I', role_name);
    -- SELECT because the sink stages batches in a temporary table made LIKE llm_calls, which
    -- PostgreSQL allows only to roles that may select from it; row-level security still shows the
    -- role no rows (it has no tenant grant).
    EXECUTE pg_catalog.format('GRANT SELECT, INSERT ON @extschema@.llm_calls TO %I', role_name);
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @extschema@.llm_create_partitions(date, date) TO %I', role_name);
END
$fn$;
COMMENT ON FUNCTION llm_grant_writer(name) IS 'What llmhub''s sink needs: INSERT on llm_calls (and SELECT, under which row-level security shows it no rows), and creating partitions through llm_create_partitions. No UPDATE, DELETE or ownership.';
"#,
    name = "llm_calls_management",
    requires = ["llm_calls_table"]
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn count(sql: &str) -> i64 {
        Spi::get_one::<i64>(sql).expect("query runs").unwrap_or(-1)
    }

    #[pg_test]
    fn daily_utc_partitions_are_created_once_and_hold_their_day() {
        assert_eq!(
            count("SELECT llm_create_partitions('2026-01-30', '2026-02-02')::bigint"),
            4
        );
        assert_eq!(
            count("SELECT llm_create_partitions('2026-01-30', '2026-02-02')::bigint"),
            0
        );
        Spi::run(&crate::insert_calls_ending_sql(
            1,
            1,
            0,
            "'2026-01-31 23:59:59.999999+00'::timestamptz",
        ))
        .expect("insert");
        assert_eq!(count("SELECT count(*) FROM llm_calls_p20260131"), 1);
        assert_eq!(count("SELECT count(*) FROM llm_calls_p20260201"), 0);
        assert!(count("SELECT llm_ensure_partitions(2)::bigint") >= 3);
        assert_eq!(
            count("SELECT llm_drop_partitions(interval '0')::bigint"),
            4,
            "the 2026-01-30..02-02 days are past"
        );
    }

    #[pg_test(error = "to_day (2026-01-01) must not be before from_day (2026-02-01)")]
    fn reversed_partition_range_is_an_error_naming_it() {
        Spi::run("SELECT llm_create_partitions('2026-02-01', '2026-01-01')").unwrap();
    }

    #[pg_test]
    fn a_reader_sees_only_the_tenant_granted_and_selected() {
        Spi::run("SELECT llm_ensure_partitions(0); SELECT llm_create_partitions(current_date - 2, current_date)")
            .expect("partitions");
        Spi::run(&crate::insert_calls_sql(300, 2)).expect("insert");
        Spi::run(
            "CREATE ROLE llmhub_t_acme; SELECT llm_grant_reader('llmhub_t_acme', 'acme');
             CREATE ROLE llmhub_t_all; SELECT llm_grant_reader('llmhub_t_all', '*');
             CREATE ROLE llmhub_t_writer; SELECT llm_grant_writer('llmhub_t_writer');",
        )
        .expect("roles");
        let as_role = |role: &str, tenant: Option<&str>, table: &str| -> i64 {
            let set = match tenant {
                Some(t) => format!("SET LOCAL llmhub.tenant = '{t}';"),
                None => "RESET llmhub.tenant;".to_owned(),
            };
            Spi::run(&format!("{set} SET LOCAL ROLE {role};")).expect("set role");
            let n = count(&format!("SELECT count(*) FROM {table}"));
            Spi::run("RESET ROLE").expect("reset role");
            n
        };
        assert_eq!(as_role("llmhub_t_acme", Some("acme"), "llm_calls"), 100);
        assert_eq!(
            as_role("llmhub_t_acme", Some("globex"), "llm_calls"),
            0,
            "globex is not granted to it"
        );
        assert_eq!(
            as_role("llmhub_t_acme", None, "llm_calls"),
            0,
            "no tenant selected: nothing"
        );
        assert_eq!(as_role("llmhub_t_all", Some("globex"), "llm_calls"), 100);
        assert_eq!(as_role("llmhub_t_all", Some(""), "llm_calls"), 0);
        Spi::run("SELECT llm_refresh_rollups()").expect("refresh");
        assert_eq!(
            as_role("llmhub_t_acme", Some("acme"), "llm_rollup_1m"),
            count("SELECT count(*) FROM llm_rollup_1m WHERE tenant = 'acme'"),
            "the rollups follow the same policy"
        );
        assert!(count("SELECT count(*) FROM llm_rollup_1m WHERE tenant IS DISTINCT FROM 'acme'") > 0);
        // Every rollup table, and the analytics functions' output: a tenant's role reads its own.
        for t in [
            "llm_rollup_1h",
            "llm_rollup_1d",
            "llm_rollup_top_traces_1h",
            "llm_rollup_top_conversations_1h",
            "llm_rollup_agents_1h",
            "llm_agent_runaways",
        ] {
            assert_eq!(
                as_role("llmhub_t_acme", Some("acme"), t),
                count(&format!("SELECT count(*) FROM {t} WHERE tenant = 'acme'")),
                "{t}"
            );
        }
        assert!(count("SELECT count(*) FROM llm_rollup_top_traces_1h WHERE tenant IS DISTINCT FROM 'acme'") > 0);
        let as_role_text = |role: &str, tenant: &str, sql: &str| -> Option<String> {
            Spi::run(&format!("SET LOCAL llmhub.tenant = '{tenant}'; SET LOCAL ROLE {role};")).expect("set role");
            let out = Spi::get_one::<String>(sql).expect("query runs");
            Spi::run("RESET ROLE").expect("reset role");
            out
        };
        let budget = |tenant: &str| {
            format!(
                "SELECT concat_ws(' ', spent, daily_rate) FROM llm_budget(1000, date_trunc('month', now(), 'UTC'),
                        date_trunc('month', now(), 'UTC') + interval '1 month', tenant => {tenant})"
            )
        };
        let burn = |tenant: &str| {
            format!(
                "SELECT concat_ws(' ', long_errors, long_calls) FROM llm_multi_window_burn(0.99, tenant => {tenant})"
            )
        };
        for (as_acme, owner_acme, owner_all) in [
            (budget("NULL"), budget("'acme'"), budget("NULL")),
            (burn("NULL"), burn("'acme'"), burn("NULL")),
        ] {
            let mine = as_role_text("llmhub_t_acme", "acme", &as_acme);
            assert_eq!(mine, Spi::get_one::<String>(&owner_acme).expect("owner"), "{as_acme}");
            // (The budget of the first minute of a month is 0 for everyone.)
            assert!(
                as_acme.contains("llm_budget") || mine != Spi::get_one::<String>(&owner_all).expect("owner"),
                "{as_acme}: others' rows not in it"
            );
        }
        assert_eq!(
            count("SELECT count(*) FROM llm_calls"),
            300,
            "the owner sees everything"
        );
        let privileges = Spi::get_one::<String>(
            "SELECT concat_ws(',', has_table_privilege('llmhub_t_writer', 'llm_calls', 'INSERT'),
                                  has_table_privilege('llmhub_t_writer', 'llm_calls', 'SELECT'),
                                  has_table_privilege('llmhub_t_writer', 'llm_calls', 'UPDATE'),
                                  has_function_privilege('llmhub_t_writer', 'llm_create_partitions(date, date)', 'EXECUTE'))",
        )
        .unwrap();
        assert_eq!(privileges.as_deref(), Some("t,t,f,t"));
    }

    #[pg_test]
    fn only_writers_may_create_partitions() {
        Spi::run(
            "CREATE ROLE llmhub_t_reader2; CREATE ROLE llmhub_t_writer2; SELECT llm_grant_writer('llmhub_t_writer2')",
        )
        .unwrap();
        let can = |role: &str| {
            Spi::get_one::<bool>(&format!(
                "SELECT has_function_privilege('{role}', 'llm_create_partitions(date, date)', 'EXECUTE')"
            ))
            .unwrap()
        };
        assert_eq!(can("llmhub_t_reader2"), Some(false));
        assert_eq!(can("llmhub_t_writer2"), Some(true));
    }
}
