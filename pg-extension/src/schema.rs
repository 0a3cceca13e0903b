//! `llm_calls` and its management: the table the sink writes into (same columns as the sink's own,
//! `sql/llm_calls.sql`), indexes for the dashboards' queries, TimescaleDB hypertable or native daily
//! partitions, and tenant isolation with row-level security.
//!
//! Tenant isolation: a reader sees the rows whose `tenant` equals the connection's `llmhub.tenant`
//! setting, and only when that tenant was granted to the role (`llm_grant_reader`), so a role that
//! changes the setting cannot read another tenant's rows. Unset or not granted: no rows.

use pgrx::prelude::*;

extension_sql_file!("../sql/llm_calls.sql", name = "llm_calls_table");
// The one definition of the daily partitions, shared with llmhub's sink (see the file).
extension_sql_file!(
    "../sql/llm_create_partitions.sql",
    name = "llm_create_partitions",
    requires = ["llm_calls_table"]
);

extension_sql!(
    r#"
COMMENT ON TABLE llm_calls IS 'One row per LLM call, agent or tool step, written by llmhub. Costs are exact USD decimals; NULL cost means not priced (see price_status).';
SELECT pg_catalog.pg_extension_config_dump('llm_calls', '');

-- The dashboards filter by time, then by tenant, service, model or conversation.
CREATE INDEX IF NOT EXISTS llm_calls_time_idx ON llm_calls (time DESC);
CREATE INDEX IF NOT EXISTS llm_calls_tenant_time_idx ON llm_calls (tenant, time DESC);
CREATE INDEX IF NOT EXISTS llm_calls_service_time_idx ON llm_calls (service_name, time DESC);
CREATE INDEX IF NOT EXISTS llm_calls_model_time_idx ON llm_calls (model, time DESC);
CREATE INDEX IF NOT EXISTS llm_calls_conversation_idx ON llm_calls (conversation_id, time) WHERE conversation_id IS NOT NULL;

-- Who reads which tenant. Three scopes (a reader can never widen its own):
--   tenant       the rows of one named tenant (a role may hold several);
--   application  the rows of the one tenant the connection selects with `SET llmhub.tenant`
--                (an application that serves every tenant and sets it per request);
--   operator     every tenant's rows (narrowed to one when the connection sets llmhub.tenant).
-- Rows without a tenant are an operator's only.
CREATE TABLE llm_tenant_grants (
    role_name name NOT NULL,
    scope text NOT NULL CHECK (scope IN ('tenant', 'application', 'operator')),
    tenant text CHECK ((scope = 'tenant') = (tenant IS NOT NULL)),
    UNIQUE NULLS NOT DISTINCT (role_name, scope, tenant)
);
COMMENT ON TABLE llm_tenant_grants IS 'Which tenants each role may read: a tenant (llm_grant_reader), the one its connection selects (llm_grant_application) or every tenant (llm_grant_operator).';
SELECT pg_catalog.pg_extension_config_dump('llm_tenant_grants', '');
ALTER TABLE llm_tenant_grants ENABLE ROW LEVEL SECURITY;
-- A role sees its own grants (and those of roles it is a member of), nothing else.
CREATE POLICY llm_tenant_grants_own ON llm_tenant_grants FOR SELECT
    USING (role_name IN (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER')));
GRANT SELECT ON llm_tenant_grants TO PUBLIC;

-- Security invoker on purpose: they read the calling role's grants (the table's policy shows each
-- role its own), wherever they are called from, views included.
CREATE FUNCTION llm_reads_every_tenant() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    SELECT nullif(pg_catalog.current_setting('llmhub.tenant', true), '') IS NULL
       AND EXISTS (SELECT 1 FROM @extschema@.llm_tenant_grants g WHERE g.scope = 'operator')
$fn$;
COMMENT ON FUNCTION llm_reads_every_tenant() IS 'True when the current role is an operator (llm_grant_operator) and its connection selects no tenant: it reads every row.';

CREATE FUNCTION llm_visible_tenants() RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    WITH sel AS (SELECT nullif(pg_catalog.current_setting('llmhub.tenant', true), '') AS t)
    SELECT coalesce(pg_catalog.array_agg(DISTINCT v.tenant), '{}') FROM (
        SELECT g.tenant FROM @extschema@.llm_tenant_grants g WHERE g.scope = 'tenant'
        UNION ALL
        SELECT sel.t FROM sel WHERE EXISTS (SELECT 1 FROM @extschema@.llm_tenant_grants g WHERE g.scope IN ('application', 'operator'))
    ) v, sel
    WHERE v.tenant IS NOT NULL AND (sel.t IS NULL OR v.tenant = sel.t)
$fn$;
COMMENT ON FUNCTION llm_visible_tenants() IS 'The tenants whose rows the current role reads now: its tenant grants, plus the tenant its connection selects (llmhub.tenant) when it is an application or operator role; a selected tenant narrows the set to it.';

CREATE FUNCTION llm_current_tenant() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    SELECT CASE WHEN pg_catalog.cardinality(t) = 1 THEN t[1] END FROM (SELECT @extschema@.llm_visible_tenants() t) s
$fn$;
COMMENT ON FUNCTION llm_current_tenant() IS 'The one tenant the current role reads now, else NULL (none, several, or every tenant).';

-- llm_calls has no row-level security (TimescaleDB refuses continuous aggregates over a hypertable
-- with it) and readers get no privilege on it, nor on its partitions and chunks (which inherit
-- the table's privileges when they are made): they read llm_calls_view.
CREATE VIEW llm_calls_view WITH (security_barrier) AS
    SELECT * FROM @extschema@.llm_calls c
     WHERE (SELECT @extschema@.llm_reads_every_tenant())
        OR c.tenant = ANY ((SELECT @extschema@.llm_visible_tenants())::text[]);
COMMENT ON VIEW llm_calls_view IS 'The rows of llm_calls the current role may read (llm_grant_reader, llm_grant_application, llm_grant_operator). Readers have no privilege on llm_calls itself.';

-- Relations readers reach besides llm_calls_view: the rollups (row-level security, plain tables)
-- and the views llm_expose made. Filled as they are created.
CREATE TABLE llm_reader_relations (rel regclass PRIMARY KEY, builtin boolean NOT NULL DEFAULT false);
SELECT pg_catalog.pg_extension_config_dump('llm_reader_relations', 'WHERE NOT builtin');
INSERT INTO llm_reader_relations VALUES ('llm_calls_view', true);

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

-- The tenant predicate readers' relations apply (the view above, the rollups' policies, and the
-- views llm_expose makes); both parts are one-time InitPlans, so the tenant index applies.
CREATE FUNCTION llm_expose(rel regclass, view_name name DEFAULT NULL) RETURNS regclass
LANGUAGE plpgsql AS $fn$
DECLARE
    v text;
    nsp text;
    r record;
BEGIN
    IF rel IS NULL THEN RAISE EXCEPTION 'rel must not be NULL'; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = rel AND a.attname = 'tenant' AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'rel: % has no tenant column', rel;
    END IF;
    SELECT n.nspname, c.relname INTO nsp, v FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel;
    v := coalesce(view_name, v || '_view');
    EXECUTE pg_catalog.format(
        'CREATE VIEW %I.%I WITH (security_barrier) AS SELECT * FROM %s t WHERE (SELECT @extschema@.llm_reads_every_tenant()) OR t.tenant = ANY ((SELECT @extschema@.llm_visible_tenants())::text[])',
        nsp, v, rel);
    INSERT INTO @extschema@.llm_reader_relations VALUES (pg_catalog.format('%I.%I', nsp, v)::regclass);
    FOR r IN SELECT DISTINCT g.role_name FROM @extschema@.llm_tenant_grants g LOOP
        EXECUTE pg_catalog.format('GRANT SELECT ON %I.%I TO %I', nsp, v, r.role_name);
    END LOOP;
    RETURN pg_catalog.format('%I.%I', nsp, v)::regclass;
END
$fn$;
REVOKE EXECUTE ON FUNCTION llm_expose(regclass, name) FROM PUBLIC;
COMMENT ON FUNCTION llm_expose(regclass, name) IS 'Makes a relation with a tenant column (a continuous aggregate, a materialized view, a table of your own) readable by llm_analytics readers through a security-barrier view (rel || ''_view'' by default) that shows each its tenants'' rows; grant readers nothing on rel itself.';

-- Grants a role the reader's privileges: the schema, llm_calls_view, the rollups and exposed views.
CREATE FUNCTION llm_grant_reading(role_name name, scope text, tenant text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE r regclass;
BEGIN
    IF role_name IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles x WHERE x.rolname = role_name) THEN
        RAISE EXCEPTION 'role_name: role % does not exist', role_name;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles x WHERE x.rolname = role_name AND (x.rolsuper OR x.rolbypassrls)) THEN
        RAISE EXCEPTION 'role_name: % is a superuser or bypasses row-level security, so it reads every row whatever it is granted', role_name
            USING HINT = 'Make a role of its own for reading: CREATE ROLE ... LOGIN;';
    END IF;
    -- The lock partitions are made under: a GRANT on llm_calls beside a partition being attached
    -- to it deadlocks otherwise.
    PERFORM pg_catalog.pg_advisory_xact_lock(119212947830114);
    EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA @extschema@ TO %I', role_name);
    FOR r IN SELECT l.rel FROM @extschema@.llm_reader_relations l LOOP
        EXECUTE pg_catalog.format('GRANT SELECT ON %s TO %I', r, role_name);
    END LOOP;
    INSERT INTO @extschema@.llm_tenant_grants VALUES (role_name, scope, tenant) ON CONFLICT DO NOTHING;
END
$fn$;
REVOKE EXECUTE ON FUNCTION llm_grant_reading(name, text, text) FROM PUBLIC;

CREATE FUNCTION llm_grant_reader(role_name name, tenant text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    IF tenant IS NULL OR tenant = '' THEN RAISE EXCEPTION 'tenant must be a tenant name, got %', tenant; END IF;
    IF tenant = '*' THEN
        RAISE EXCEPTION 'tenant: ''*'' is not a tenant'
            USING HINT = 'llm_grant_application(role) for a role that selects its tenant per request with llmhub.tenant; llm_grant_operator(role) for one that reads every tenant.';
    END IF;
    PERFORM @extschema@.llm_grant_reading(role_name, 'tenant', tenant);
END
$fn$;
COMMENT ON FUNCTION llm_grant_reader(name, text) IS 'Lets role_name read the rows of tenant (llm_calls_view, the rollups, exposed views); a role may hold several tenants. No privilege on llm_calls itself.';

CREATE FUNCTION llm_grant_application(role_name name) RETURNS void
LANGUAGE sql AS $fn$
    SELECT @extschema@.llm_grant_reading(role_name, 'application', NULL);
$fn$;
COMMENT ON FUNCTION llm_grant_application(name) IS 'Lets role_name read the rows of the one tenant its connection selects with SET llmhub.tenant (an application serving every tenant, setting it per request); nothing while it selects none.';

CREATE FUNCTION llm_grant_operator(role_name name) RETURNS void
LANGUAGE sql AS $fn$
    SELECT @extschema@.llm_grant_reading(role_name, 'operator', NULL);
$fn$;
COMMENT ON FUNCTION llm_grant_operator(name) IS 'Lets role_name read every tenant''s rows (and rows without a tenant); narrowed to one tenant while its connection sets llmhub.tenant.';

CREATE FUNCTION llm_revoke_reader(role_name name, tenant text DEFAULT NULL) RETURNS void
LANGUAGE sql AS $fn$
    DELETE FROM @extschema@.llm_tenant_grants g
     WHERE g.role_name = llm_revoke_reader.role_name
       AND (llm_revoke_reader.tenant IS NULL OR g.tenant = llm_revoke_reader.tenant);
$fn$;
COMMENT ON FUNCTION llm_revoke_reader(name, text) IS 'Takes back one tenant of role_name, or (tenant NULL) every scope it holds. Grants are kept by role name: revoke them before dropping a role whose name may be reused.';

CREATE FUNCTION llm_grant_writer(role_name name) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    IF role_name IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role_name: role % does not exist', role_name;
    END IF;
    PERFORM pg_catalog.pg_advisory_xact_lock(119212947830114);
    EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA @extschema@ TO %I', role_name);
    EXECUTE pg_catalog.format('GRANT INSERT ON @extschema@.llm_calls TO %I', role_name);
    -- The key columns only: INSERT ... ON CONFLICT (trace_id, span_id, time) needs to see them.
    EXECUTE pg_catalog.format('GRANT SELECT (trace_id, span_id, time) ON @extschema@.llm_calls TO %I', role_name);
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @extschema@.llm_create_partitions(date, date) TO %I', role_name);
    -- The hours each batch wrote, for llm_refresh_rollups (the table is the rollups').
    EXECUTE pg_catalog.format('GRANT INSERT ON @extschema@.llm_rollup_pending TO %I', role_name);
END
$fn$;
REVOKE EXECUTE ON FUNCTION llm_grant_reader(name, text), llm_grant_application(name), llm_grant_operator(name),
    llm_revoke_reader(name, text), llm_grant_writer(name) FROM PUBLIC;
COMMENT ON FUNCTION llm_grant_writer(name) IS 'What llmhub''s sink needs: INSERT on llm_calls, SELECT of its key columns (trace_id, span_id, time) for retries, partitions through llm_create_partitions, and INSERT on llm_rollup_pending to note the hours it wrote. No other column, no UPDATE, DELETE or ownership.';
"#,
    name = "llm_calls_management",
    requires = ["llm_calls_table", "llm_create_partitions"]
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

    /// Runs `sql` as `role` with `llmhub.tenant` set to `tenant` (None: unset); the first column
    /// of its one row as text, or "denied" when PostgreSQL refuses it for lack of privilege.
    fn as_role(role: &str, tenant: Option<&str>, sql: &str) -> String {
        let set = match tenant {
            Some(t) => format!("SET LOCAL llmhub.tenant = '{t}';"),
            None => "SET LOCAL llmhub.tenant = '';".to_owned(),
        };
        Spi::run(&format!(
            "CREATE OR REPLACE FUNCTION pg_temp.try_as(q text) RETURNS text LANGUAGE plpgsql AS $f$
             DECLARE r text;
             BEGIN EXECUTE q INTO r; RETURN coalesce(r, 'null');
             EXCEPTION WHEN insufficient_privilege THEN RETURN 'denied'; END $f$;
             {set} SET LOCAL ROLE {role};"
        ))
        .expect("set role");
        let out = Spi::get_one_with_args::<String>("SELECT pg_temp.try_as($1)", &[sql.into()])
            .expect("query runs")
            .unwrap_or_default();
        Spi::run("RESET ROLE").expect("reset role");
        out
    }

    #[pg_test]
    fn each_scope_reads_its_tenants_and_nothing_reads_llm_calls_itself() {
        Spi::run("SELECT llm_ensure_partitions(0); SELECT llm_create_partitions(current_date - 2, current_date)")
            .expect("partitions");
        // 100 rows each of acme, globex and no tenant.
        Spi::run(&crate::insert_calls_sql(300, 2)).expect("insert");
        Spi::run(
            "CREATE ROLE llmhub_t_acme; SELECT llm_grant_reader('llmhub_t_acme', 'acme');
             CREATE ROLE llmhub_t_app; SELECT llm_grant_application('llmhub_t_app');
             CREATE ROLE llmhub_t_op; SELECT llm_grant_operator('llmhub_t_op');
             CREATE ROLE llmhub_t_writer; SELECT llm_grant_writer('llmhub_t_writer');",
        )
        .expect("roles");
        let n =
            |role: &str, tenant: Option<&str>, rel: &str| as_role(role, tenant, &format!("SELECT count(*) FROM {rel}"));
        // (count(*) needs only some column: the writer has the key columns, so values are tried.)
        let values = |role: &str, rel: &str| as_role(role, None, &format!("SELECT count(tenant) FROM {rel}"));
        for role in ["llmhub_t_acme", "llmhub_t_app", "llmhub_t_op", "llmhub_t_writer"] {
            assert_eq!(values(role, "llm_calls"), "denied", "{role}: llm_calls itself");
            let part = Spi::get_one::<String>(
                "SELECT min(c.oid::regclass::text) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'llm_calls'::regclass",
            )
            .unwrap()
            .expect("a partition");
            assert_eq!(values(role, &part), "denied", "{role}: partition {part}");
        }
        // A tenant role: its tenant, with or without selecting it; selecting another narrows to nothing.
        assert_eq!(n("llmhub_t_acme", None, "llm_calls_view"), "100");
        assert_eq!(n("llmhub_t_acme", Some("acme"), "llm_calls_view"), "100");
        assert_eq!(
            n("llmhub_t_acme", Some("globex"), "llm_calls_view"),
            "0",
            "never widened"
        );
        // An application role: the tenant its connection selects, nothing without one.
        assert_eq!(n("llmhub_t_app", None, "llm_calls_view"), "0");
        assert_eq!(n("llmhub_t_app", Some("globex"), "llm_calls_view"), "100");
        // An operator: every row, rows without a tenant included; one tenant when it selects one.
        assert_eq!(n("llmhub_t_op", None, "llm_calls_view"), "300");
        assert_eq!(n("llmhub_t_op", Some("acme"), "llm_calls_view"), "100");
        // The writer reads no row.
        assert_eq!(n("llmhub_t_writer", None, "llm_calls_view"), "denied");
        Spi::run("SELECT llm_refresh_rollups()").expect("refresh");
        for t in [
            "llm_rollup_1m",
            "llm_rollup_1h",
            "llm_rollup_1d",
            "llm_rollup_top_traces_1h",
            "llm_rollup_top_conversations_1h",
            "llm_rollup_agents_1h",
            "llm_agent_runaways",
        ] {
            let owner = |w: &str| count(&format!("SELECT count(*) FROM {t} WHERE {w}")).to_string();
            assert_eq!(n("llmhub_t_acme", None, t), owner("tenant = 'acme'"), "{t}");
            assert_eq!(n("llmhub_t_app", Some("globex"), t), owner("tenant = 'globex'"), "{t}");
            assert_eq!(n("llmhub_t_op", None, t), owner("true"), "{t}");
            assert_eq!(n("llmhub_t_writer", None, t), "denied", "{t}");
        }
        assert!(count("SELECT count(*) FROM llm_rollup_top_traces_1h WHERE tenant IS DISTINCT FROM 'acme'") > 0);
        // The analytics functions read through the same rules: acme's budget and burn rate are
        // what the owner computes for acme, whatever tenant the call names.
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
        let owner = |sql: String| Spi::get_one::<String>(&sql).unwrap().unwrap_or_default();
        for q in [budget as fn(&str) -> String, burn] {
            assert_eq!(
                as_role("llmhub_t_acme", None, &q("NULL")),
                owner(q("'acme'")),
                "{}",
                q("NULL")
            );
            // Naming globex gives acme's role what a tenant without rows gives.
            assert_eq!(
                as_role("llmhub_t_acme", None, &q("'globex'")),
                owner(q("'nobody'")),
                "{}",
                q("'globex'")
            );
        }
        assert_ne!(
            owner(burn("'globex'")),
            owner(burn("'nobody'")),
            "globex has calls to hide"
        );
        assert_eq!(
            count("SELECT count(*) FROM llm_calls"),
            300,
            "the owner sees everything"
        );
        let privileges = Spi::get_one::<String>(
            "SELECT concat_ws(',', has_table_privilege('llmhub_t_writer', 'llm_calls', 'INSERT'),
                                  has_table_privilege('llmhub_t_writer', 'llm_calls', 'SELECT'),
                                  has_column_privilege('llmhub_t_writer', 'llm_calls', 'span_id', 'SELECT'),
                                  has_column_privilege('llmhub_t_writer', 'llm_calls', 'tenant', 'SELECT'),
                                  has_table_privilege('llmhub_t_writer', 'llm_calls', 'UPDATE'),
                                  has_function_privilege('llmhub_t_writer', 'llm_create_partitions(date, date)', 'EXECUTE'))",
        )
        .unwrap();
        assert_eq!(privileges.as_deref(), Some("t,f,t,f,f,t"));
    }

    #[pg_test(error = "tenant: '*' is not a tenant")]
    fn star_is_not_a_tenant() {
        Spi::run("CREATE ROLE llmhub_t_star; SELECT llm_grant_reader('llmhub_t_star', '*')").unwrap();
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
