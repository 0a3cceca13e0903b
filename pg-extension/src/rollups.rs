//! Rollups of `llm_calls` by minute, hour and day that need no TimescaleDB-licensed feature:
//! plain tables (`llm_rollup_1m`, `llm_rollup_1h`, `llm_rollup_1d`) kept current by
//! `llm_refresh_rollups()`, which rebuilds every bucket from the watermark minus a late window up
//! to the last complete minute. Buckets are rebuilt whole (delete, then insert), so a refresh is
//! idempotent; refreshes take an advisory lock, so concurrent ones queue instead of racing.
//!
//! Hours are merged from minutes and days from hours (`rollup` of the summaries), all in UTC.

use pgrx::prelude::*;

extension_sql!(
    r#"
DO $do$
DECLARE
    g text;
BEGIN
    FOREACH g IN ARRAY ARRAY['1m', '1h', '1d'] LOOP
        EXECUTE pg_catalog.format($ddl$
        CREATE TABLE %1$I (
            bucket timestamptz NOT NULL,
            tenant text,
            service_name text NOT NULL,
            environment text,
            provider text,
            model text,
            operation text NOT NULL,
            role text NOT NULL,
            calls bigint NOT NULL,
            errors bigint NOT NULL,
            no_usage bigint NOT NULL,
            unpriced bigint NOT NULL,
            input_uncached_tokens bigint NOT NULL,
            cache_read_tokens bigint NOT NULL,
            cache_write_tokens bigint NOT NULL,
            cache_write_1h_tokens bigint NOT NULL,
            output_tokens bigint NOT NULL,
            reasoning_tokens bigint NOT NULL,
            cost_usd numeric NOT NULL,
            duration_s_sum double precision NOT NULL,
            duration_s quantile_summary,
            ttft_s quantile_summary,
            output_tokens_per_s quantile_summary,
            tokens_per_call quantile_summary,
            UNIQUE NULLS NOT DISTINCT (bucket, tenant, service_name, environment, provider, model, operation, role)
        );
        CREATE INDEX %2$I ON %1$I (tenant, bucket);
        ALTER TABLE %1$I ENABLE ROW LEVEL SECURITY;
        CREATE POLICY %3$I ON %1$I FOR SELECT USING ((SELECT @extschema@.llm_reads_every_tenant()) OR tenant = ANY ((SELECT @extschema@.llm_visible_tenants())::text[]));
        INSERT INTO @extschema@.llm_reader_relations VALUES (%1$L::regclass, true);
        SELECT pg_catalog.pg_extension_config_dump(%1$L, '');
        $ddl$, 'llm_rollup_' || g, 'llm_rollup_' || g || '_tenant_idx', 'llm_rollup_' || g || '_tenant_read');
    END LOOP;
END
$do$;
COMMENT ON TABLE llm_rollup_1m IS 'llm_calls per minute (UTC) by tenant, service, environment, provider, model, operation and role (model_call, agent, tool, workflow); kept by llm_refresh_rollups().';
COMMENT ON TABLE llm_rollup_1h IS 'llm_rollup_1m merged by hour (UTC).';
COMMENT ON TABLE llm_rollup_1d IS 'llm_rollup_1h merged by day (UTC).';

-- Per hour (UTC) and tenant, the 100 costliest traces and conversations of that hour (cost of
-- their spans in the hour): a range's costliest ones without reading raw rows. Exact for traces
-- and conversations within one hour; one spanning hours is counted in each hour where it made
-- that hour's top 100. Keyed by tenant: two tenants' conversations with the same id stay apart,
-- and a trace crossing tenants has a row per tenant.
CREATE TABLE llm_rollup_top_traces_1h (
    bucket timestamptz NOT NULL,
    trace_id bytea NOT NULL,
    tenant text,
    service_name text NOT NULL,
    environment text,
    started timestamptz NOT NULL,
    spans bigint NOT NULL,
    cost_usd numeric NOT NULL,
    UNIQUE NULLS NOT DISTINCT (bucket, tenant, trace_id)
);
CREATE INDEX llm_rollup_top_traces_1h_cost ON llm_rollup_top_traces_1h (cost_usd DESC);
CREATE TABLE llm_rollup_top_conversations_1h (
    bucket timestamptz NOT NULL,
    conversation_id text NOT NULL,
    tenant text,
    service_name text NOT NULL,
    environment text,
    started timestamptz NOT NULL,
    calls bigint NOT NULL,
    cost_usd numeric NOT NULL,
    UNIQUE NULLS NOT DISTINCT (bucket, tenant, conversation_id)
);
CREATE INDEX llm_rollup_top_conversations_1h_cost ON llm_rollup_top_conversations_1h (cost_usd DESC);
-- Agent invocations per hour (UTC) of their start: how many model and tool calls each made.
CREATE TABLE llm_rollup_agents_1h (
    bucket timestamptz NOT NULL,
    tenant text,
    service_name text NOT NULL,
    environment text,
    agent_name text,
    invocations bigint NOT NULL,
    model_calls bigint NOT NULL,
    max_model_calls bigint NOT NULL,
    tool_calls bigint NOT NULL,
    max_tool_calls bigint NOT NULL,
    cost_usd numeric NOT NULL,
    UNIQUE NULLS NOT DISTINCT (bucket, tenant, service_name, environment, agent_name)
);
-- Calls per hour (UTC) by how they ended: status, error class (error_type) and the first choice's
-- finish reason, beside the usual dimensions.
CREATE TABLE llm_rollup_outcomes_1h (
    bucket timestamptz NOT NULL,
    tenant text,
    service_name text NOT NULL,
    environment text,
    provider text,
    model text,
    role text NOT NULL,
    status text NOT NULL,
    error_type text,
    finish_reason text,
    calls bigint NOT NULL,
    output_tokens bigint NOT NULL,
    cost_usd numeric NOT NULL,
    UNIQUE NULLS NOT DISTINCT (bucket, tenant, service_name, environment, provider, model, role, status, error_type, finish_reason)
);
-- Agent invocations that made more than 25 model and tool calls: runaway loops.
CREATE TABLE llm_agent_runaways (
    time timestamptz NOT NULL,
    trace_id bytea NOT NULL,
    span_id bytea NOT NULL,
    tenant text,
    service_name text NOT NULL,
    environment text,
    agent_name text,
    model_calls bigint NOT NULL,
    tool_calls bigint NOT NULL,
    cost_usd numeric NOT NULL,
    PRIMARY KEY (time, trace_id, span_id)
);
DO $do$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['llm_rollup_top_traces_1h', 'llm_rollup_top_conversations_1h', 'llm_rollup_agents_1h', 'llm_agent_runaways',
                             'llm_rollup_outcomes_1h'] LOOP
        EXECUTE pg_catalog.format($ddl$
            ALTER TABLE %1$I ENABLE ROW LEVEL SECURITY;
            CREATE POLICY %2$I ON %1$I FOR SELECT USING ((SELECT @extschema@.llm_reads_every_tenant()) OR tenant = ANY ((SELECT @extschema@.llm_visible_tenants())::text[]));
            INSERT INTO @extschema@.llm_reader_relations VALUES (%1$L::regclass, true);
            SELECT pg_catalog.pg_extension_config_dump(%1$L, '');
        $ddl$, t, t || '_tenant_read');
    END LOOP;
END
$do$;

CREATE TABLE llm_rollup_state (
    rollup text PRIMARY KEY,
    watermark timestamptz NOT NULL,
    refreshed_at timestamptz NOT NULL
);
COMMENT ON TABLE llm_rollup_state IS 'How far the rollups are complete: every bucket before watermark - late_window is final.';
SELECT pg_catalog.pg_extension_config_dump('llm_rollup_state', '');

-- Hours (UTC) that received rows since the last refresh, noted by whoever wrote them in the same
-- transaction (llmhub's sink does, for every batch): rows that arrive late, backfills of old days.
-- llm_refresh_rollups() takes them all and rebuilds those hours, so no row is left out of the
-- rollups whatever its time. Append-only (no key), so a writer never waits on a refresh.
CREATE TABLE llm_rollup_pending (
    hour timestamptz NOT NULL,
    noted_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE llm_rollup_pending IS 'Hours (UTC) written since the last llm_refresh_rollups(): the writer (llmhub''s sink) notes each batch''s hours in the batch''s own transaction; the refresh rebuilds them. Writers outside llmhub that write rows older than the refresh''s late window insert their hours here too.';
SELECT pg_catalog.pg_extension_config_dump('llm_rollup_pending', '');

CREATE FUNCTION llm_refresh_rollups_range(from_time timestamptz, to_time timestamptz)
RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    f1 timestamptz;
    t1 timestamptz;
    fh timestamptz;
    th timestamptz;
    fd timestamptz;
    td timestamptz;
    lo timestamptz;
    hi timestamptz;
    step text;
    src text;
    dst text;
    unit text;
    n bigint;
    horizon timestamptz;
BEGIN
    IF from_time IS NULL OR to_time IS NULL OR NOT isfinite(from_time) OR NOT isfinite(to_time) THEN
        RAISE EXCEPTION 'from_time and to_time must be finite times, got % and %', from_time, to_time;
    END IF;
    IF to_time <= from_time THEN
        RAISE EXCEPTION 'to_time (%) must be after from_time (%)', to_time, from_time;
    END IF;
    -- Under REPEATABLE READ or SERIALIZABLE the snapshot predates the lock, so a refresh queued
    -- behind another would not see its rows.
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'rollup refreshes must run at READ COMMITTED isolation, not %', pg_catalog.current_setting('transaction_isolation');
    END IF;
    PERFORM pg_catalog.pg_advisory_xact_lock(119212947830115);
    -- Whole buckets that touch [from_time, to_time).
    f1 := date_trunc('minute', from_time, 'UTC');
    t1 := date_trunc('minute', to_time - interval '1 microsecond', 'UTC') + interval '1 minute';
    fh := date_trunc('hour', f1, 'UTC');
    th := date_trunc('hour', t1 - interval '1 microsecond', 'UTC') + interval '1 hour';
    fd := date_trunc('day', fh, 'UTC');
    -- 24 hours, not '1 day': adding days to a timestamptz follows the session's time zone.
    td := date_trunc('day', th - interval '1 microsecond', 'UTC') + interval '24 hours';
    -- Where minutes may have expired (llm_rollup_retention), their hours are rebuilt whole from
    -- llm_calls, so an hour built from them is whole.
    SELECT pg_catalog.now() - x.keep INTO horizon FROM @extschema@.llm_rollup_retention x
     WHERE x.rollup = '@extschema@.llm_rollup_1m'::regclass;
    IF horizon IS NOT NULL THEN
        IF fh < horizon THEN
            f1 := fh;
        END IF;
        IF th - interval '1 hour' < horizon THEN
            t1 := greatest(t1, least(th, date_trunc('minute', pg_catalog.now(), 'UTC')));
        END IF;
    END IF;

    DELETE FROM @extschema@.llm_rollup_1m WHERE bucket >= f1 AND bucket < t1;
    INSERT INTO @extschema@.llm_rollup_1m
    SELECT date_trunc('minute', c.time, 'UTC'), c.tenant, c.service_name, c.environment, c.provider, c.model, c.operation, c.role,
           count(*),
           count(*) FILTER (WHERE c.status = 'error'),
           count(*) FILTER (WHERE c.role = 'model_call' AND c.counts_usage AND c.input_uncached_tokens IS NULL),
           count(*) FILTER (WHERE c.role = 'model_call' AND c.counts_usage AND c.input_uncached_tokens IS NOT NULL
                                  AND c.price_status <> 'priced'),
           coalesce(sum(c.input_uncached_tokens) FILTER (WHERE c.counts_usage), 0),
           coalesce(sum(c.cache_read_tokens) FILTER (WHERE c.counts_usage), 0),
           coalesce(sum(c.cache_write_tokens) FILTER (WHERE c.counts_usage), 0),
           coalesce(sum(c.cache_write_1h_tokens) FILTER (WHERE c.counts_usage), 0),
           coalesce(sum(c.output_tokens) FILTER (WHERE c.counts_usage), 0),
           coalesce(sum(c.reasoning_tokens) FILTER (WHERE c.counts_usage), 0),
           coalesce(sum(c.cost_usd), 0),
           coalesce(sum(c.duration_s), 0),
           @extschema@.quantile_summary_agg(c.duration_s),
           @extschema@.quantile_summary_agg(c.ttft_s),
           @extschema@.quantile_summary_agg(c.output_tokens_per_s),
           @extschema@.quantile_summary_agg((c.input_uncached_tokens + c.cache_read_tokens + c.cache_write_tokens
               + c.cache_write_1h_tokens + c.output_tokens + c.reasoning_tokens)::double precision)
               FILTER (WHERE c.counts_usage)
      FROM @extschema@.llm_calls c
     WHERE c.time >= f1 AND c.time < t1
     GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
    GET DIAGNOSTICS n = ROW_COUNT;

    -- Hours from minutes, then days from hours: sums add up, summaries merge.
    FOREACH step IN ARRAY ARRAY['llm_rollup_1m llm_rollup_1h hour', 'llm_rollup_1h llm_rollup_1d day'] LOOP
        src := split_part(step, ' ', 1);
        dst := split_part(step, ' ', 2);
        unit := split_part(step, ' ', 3);
        lo := CASE unit WHEN 'hour' THEN fh ELSE fd END;
        hi := CASE unit WHEN 'hour' THEN th ELSE td END;
        EXECUTE pg_catalog.format('DELETE FROM @extschema@.%I WHERE bucket >= $1 AND bucket < $2', dst) USING lo, hi;
        EXECUTE pg_catalog.format($q$
            INSERT INTO @extschema@.%I
            SELECT date_trunc(%L, r.bucket, 'UTC'), r.tenant, r.service_name, r.environment, r.provider, r.model, r.operation, r.role,
                   sum(r.calls), sum(r.errors), sum(r.no_usage), sum(r.unpriced),
                   sum(r.input_uncached_tokens), sum(r.cache_read_tokens), sum(r.cache_write_tokens),
                   sum(r.cache_write_1h_tokens), sum(r.output_tokens), sum(r.reasoning_tokens),
                   sum(r.cost_usd), sum(r.duration_s_sum),
                   @extschema@.rollup(r.duration_s), @extschema@.rollup(r.ttft_s),
                   @extschema@.rollup(r.output_tokens_per_s), @extschema@.rollup(r.tokens_per_call)
              FROM @extschema@.%I r
             WHERE r.bucket >= $1 AND r.bucket < $2
             GROUP BY 1, 2, 3, 4, 5, 6, 7, 8$q$, dst, unit, src) USING lo, hi;
    END LOOP;

    -- Costliest traces and conversations per hour and tenant, agent invocations: rebuilt by hour.
    DELETE FROM @extschema@.llm_rollup_top_traces_1h WHERE bucket >= fh AND bucket < th;
    INSERT INTO @extschema@.llm_rollup_top_traces_1h
    SELECT bucket, trace_id, tenant, service_name, environment, started, spans, cost
      FROM (SELECT date_trunc('hour', c.time, 'UTC') AS bucket, c.trace_id, c.tenant,
                   min(c.service_name) AS service_name, min(c.environment) AS environment, min(c.time) AS started,
                   count(*) AS spans, sum(c.cost_usd) AS cost,
                   row_number() OVER (PARTITION BY date_trunc('hour', c.time, 'UTC'), c.tenant
                                      ORDER BY sum(c.cost_usd) DESC NULLS LAST) AS rank
              FROM @extschema@.llm_calls c
             WHERE c.time >= fh AND c.time < th
             GROUP BY 1, 2, 3) t
     WHERE rank <= 100 AND cost IS NOT NULL;
    DELETE FROM @extschema@.llm_rollup_top_conversations_1h WHERE bucket >= fh AND bucket < th;
    INSERT INTO @extschema@.llm_rollup_top_conversations_1h
    SELECT bucket, conversation_id, tenant, service_name, environment, started, calls, cost
      FROM (SELECT date_trunc('hour', c.time, 'UTC') AS bucket, c.conversation_id, c.tenant,
                   min(c.service_name) AS service_name, min(c.environment) AS environment, min(c.time) AS started,
                   count(*) AS calls, sum(c.cost_usd) AS cost,
                   row_number() OVER (PARTITION BY date_trunc('hour', c.time, 'UTC'), c.tenant
                                      ORDER BY sum(c.cost_usd) DESC NULLS LAST) AS rank
              FROM @extschema@.llm_calls c
             WHERE c.time >= fh AND c.time < th AND c.conversation_id IS NOT NULL
             GROUP BY 1, 2, 3) t
     WHERE rank <= 100 AND cost IS NOT NULL;
    DELETE FROM @extschema@.llm_rollup_outcomes_1h WHERE bucket >= fh AND bucket < th;
    INSERT INTO @extschema@.llm_rollup_outcomes_1h
    SELECT date_trunc('hour', c.time, 'UTC'), c.tenant, c.service_name, c.environment, c.provider, c.model, c.role, c.status,
           c.error_type, c.finish_reasons[1], count(*),
           coalesce(sum(c.output_tokens) FILTER (WHERE c.counts_usage), 0), coalesce(sum(c.cost_usd), 0)
      FROM @extschema@.llm_calls c
     WHERE c.time >= fh AND c.time < th
     GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10;
    DELETE FROM @extschema@.llm_rollup_agents_1h WHERE bucket >= fh AND bucket < th;
    DELETE FROM @extschema@.llm_agent_runaways WHERE time >= fh AND time < th;
    -- An invocation's calls are its descendants through parent_span_id, stopping at nested agent
    -- invocations: a call belongs to its nearest agent, so nested and parallel agents are not
    -- counted twice. A span whose parent was never stored (dropped as a duplicate, or not a GenAI
    -- span: the application's own spans, a tool's HTTP hop) is an orphan: it is attached to the
    -- latest-started invocation of its trace whose time contains it, and the walk goes on from it.
    -- Candidate spans are those of the same traces within the invocations' time (a minute of
    -- clock skew between services allowed; at most a day past the range); UNION ends a cycle of
    -- bad parent links. create_agent spans are not invocations.
    WITH RECURSIVE agents AS MATERIALIZED (
        SELECT a.time, a.end_time, a.trace_id, a.span_id, a.tenant, a.service_name, a.environment, a.agent_name
          FROM @extschema@.llm_calls a
         WHERE a.role = 'agent' AND a.operation <> 'create_agent' AND a.time >= fh AND a.time < th
    ), candidates AS MATERIALIZED (
        SELECT c.time, c.trace_id, c.span_id, c.parent_span_id, c.role, c.cost_usd
          FROM @extschema@.llm_calls c
         WHERE c.time >= fh - interval '1 minute'
           AND c.time <= least((SELECT max(a.end_time) FROM agents a) + interval '1 minute', th + interval '24 hours')
           AND c.trace_id IN (SELECT a.trace_id FROM agents a)
    ), orphans AS (
        SELECT c.trace_id, x.root, c.span_id
          FROM candidates c
         CROSS JOIN LATERAL (
               SELECT a.span_id AS root FROM agents a
                WHERE a.trace_id = c.trace_id AND c.time >= a.time AND c.time <= a.end_time AND a.span_id <> c.span_id
                ORDER BY a.time DESC LIMIT 1) x
         WHERE c.role <> 'agent' AND c.parent_span_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM candidates p WHERE p.trace_id = c.trace_id AND p.span_id = c.parent_span_id)
           AND NOT EXISTS (SELECT 1 FROM @extschema@.llm_calls p WHERE p.trace_id = c.trace_id AND p.span_id = c.parent_span_id)
    ), tree AS (
        SELECT s.trace_id, s.root, s.span_id
          FROM (SELECT a.trace_id, a.span_id AS root, a.span_id FROM agents a
                UNION ALL
                SELECT o.trace_id, o.root, o.span_id FROM orphans o) s
        UNION
        SELECT t.trace_id, t.root, c.span_id
          FROM tree t JOIN candidates c ON c.trace_id = t.trace_id AND c.parent_span_id = t.span_id
         WHERE c.role <> 'agent'
    ), runs AS (
        SELECT a.time, a.trace_id, a.span_id, a.tenant, a.service_name, a.environment, a.agent_name,
               count(*) FILTER (WHERE c.role = 'model_call') AS model_calls,
               count(*) FILTER (WHERE c.role = 'tool') AS tool_calls,
               coalesce(sum(c.cost_usd), 0) AS cost_usd
          FROM agents a
          LEFT JOIN tree t ON t.trace_id = a.trace_id AND t.root = a.span_id AND t.span_id <> a.span_id
          LEFT JOIN candidates c ON c.trace_id = t.trace_id AND c.span_id = t.span_id
         GROUP BY a.time, a.trace_id, a.span_id, a.tenant, a.service_name, a.environment, a.agent_name
    ), runaways AS (
        INSERT INTO @extschema@.llm_agent_runaways
        SELECT r.time, r.trace_id, r.span_id, r.tenant, r.service_name, r.environment, r.agent_name,
               r.model_calls, r.tool_calls, r.cost_usd
          FROM runs r WHERE r.model_calls + r.tool_calls > 25
    )
    INSERT INTO @extschema@.llm_rollup_agents_1h
    SELECT date_trunc('hour', r.time, 'UTC'), r.tenant, r.service_name, r.environment, r.agent_name, count(*),
           sum(r.model_calls), max(r.model_calls), sum(r.tool_calls), max(r.tool_calls), sum(r.cost_usd)
      FROM runs r GROUP BY 1, 2, 3, 4, 5;
    RETURN n;
END
$fn$;
COMMENT ON FUNCTION llm_refresh_rollups_range(timestamptz, timestamptz) IS 'Rebuilds the minute, hour and day buckets touching [from_time, to_time) from llm_calls (hours from minutes, days from hours); returns the minute rows written.';

CREATE FUNCTION llm_refresh_rollups(late_window interval DEFAULT '1 hour')
RETURNS TABLE (from_time timestamptz, to_time timestamptz, minute_rows bigint, noted_hours bigint, expired_rows bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    wm timestamptz;
    f timestamptz;
    t timestamptz := date_trunc('minute', pg_catalog.now(), 'UTC');
    n bigint := 0;
    hours timestamptz[];
    r record;
BEGIN
    IF late_window IS NULL OR late_window < interval '0' THEN
        RAISE EXCEPTION 'late_window must be a non-negative interval, got %', late_window;
    END IF;
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'rollup refreshes must run at READ COMMITTED isolation, not %', pg_catalog.current_setting('transaction_isolation');
    END IF;
    -- Concurrent refreshes queue here; each then rebuilds whole buckets, so the result is the same.
    PERFORM pg_catalog.pg_advisory_xact_lock(119212947830115);
    SELECT s.watermark INTO wm FROM @extschema@.llm_rollup_state s WHERE s.rollup = 'llm_rollup';
    IF wm IS NULL THEN
        -- The first refresh: everything already there.
        SELECT least(min(c.time), t) INTO f FROM @extschema@.llm_calls c;
    ELSE
        f := least(wm - late_window, t);
    END IF;
    -- The hours noted by writers, taken now: a note committed later stays for the next refresh.
    -- Those inside [f, t) are rebuilt below anyway, those after t when the time comes.
    WITH taken AS (DELETE FROM @extschema@.llm_rollup_pending p RETURNING p.hour)
    SELECT coalesce(array_agg(DISTINCT date_trunc('hour', taken.hour, 'UTC') ORDER BY date_trunc('hour', taken.hour, 'UTC')), '{}')
      INTO hours FROM taken;
    noted_hours := 0;
    -- Hours starting before f, whole (the window below rebuilds only the minutes from f on), and
    -- consecutive ones as one range (gaps and islands).
    FOR r IN
        SELECT min(h) AS lo, max(h) + interval '1 hour' AS hi
          FROM (SELECT h, h - (row_number() OVER (ORDER BY h)) * interval '1 hour' AS island
                  FROM unnest(hours) h
                 WHERE f IS NULL OR h < f) x
         GROUP BY island ORDER BY 1
    LOOP
        PERFORM @extschema@.llm_refresh_rollups_range(r.lo, r.hi);
        noted_hours := noted_hours + extract(epoch FROM r.hi - r.lo)::bigint / 3600;
    END LOOP;
    IF f IS NOT NULL AND f < t THEN
        n := @extschema@.llm_refresh_rollups_range(f, t);
    END IF;
    IF f IS NOT NULL OR wm IS NOT NULL THEN
        INSERT INTO @extschema@.llm_rollup_state AS s (rollup, watermark, refreshed_at)
        VALUES ('llm_rollup', greatest(t, wm), pg_catalog.now())
        ON CONFLICT (rollup) DO UPDATE SET watermark = greatest(s.watermark, excluded.watermark), refreshed_at = excluded.refreshed_at;
    END IF;
    -- Retention (llm_set_rollup_retention): whole hours past each rollup's keep.
    SELECT coalesce(sum(x.deleted), 0) INTO expired_rows FROM @extschema@.llm_apply_rollup_retention(pg_catalog.now()) x;
    from_time := f;
    to_time := t;
    minute_rows := n;
    RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION llm_refresh_rollups(interval) IS 'Brings the rollups up to the last complete minute: rebuilds from watermark - late_window (on the first refresh, from the oldest row), and every older hour a writer noted in llm_rollup_pending (late rows, backfills); then deletes what is past each rollup''s retention (expired_rows). Idempotent; safe to run concurrently. Schedule it every minute (pg_cron, or TimescaleDB''s add_job).';
"#,
    name = "rollups",
    requires = ["llm_calls_management", "quantile_summary_aggregates"]
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    use crate::sql_text as text;

    /// Totals of a rollup table, as one comparable line.
    fn totals(table: &str) -> String {
        text(&format!(
            "SELECT concat_ws(' ', sum(calls), sum(errors), sum(input_uncached_tokens), sum(output_tokens), sum(cost_usd),
                    round(approx_percentile(0.5, rollup(duration_s))::numeric, 9), round(approx_percentile(0.99, rollup(duration_s))::numeric, 9),
                    num_vals(rollup(ttft_s)), num_vals(rollup(tokens_per_call)))
               FROM {table}"
        ))
        .unwrap()
    }

    #[pg_test]
    fn minute_hour_and_day_rollups_agree_with_the_raw_rows() {
        Spi::run("SELECT llm_create_partitions(current_date - 2, current_date)").expect("partitions");
        Spi::run(&crate::insert_calls_sql(20_000, 3)).expect("insert");
        let out = text("SELECT concat_ws(' ', minute_rows > 0, to_time = date_trunc('minute', now(), 'UTC')) FROM llm_refresh_rollups()");
        assert_eq!(out.as_deref(), Some("t t"));
        let raw = text(
            "SELECT concat_ws(' ', count(*), count(*) FILTER (WHERE status = 'error'), sum(input_uncached_tokens), sum(output_tokens), sum(cost_usd),
                    round(approx_percentile(0.5, quantile_summary_agg(duration_s))::numeric, 9), round(approx_percentile(0.99, quantile_summary_agg(duration_s))::numeric, 9),
                    count(ttft_s), count(*))
               FROM llm_calls",
        )
        .unwrap();
        assert_eq!(totals("llm_rollup_1m"), raw);
        assert_eq!(totals("llm_rollup_1h"), raw);
        assert_eq!(totals("llm_rollup_1d"), raw);
        // Per group too: every (hour, model) bucket has its rows' count and cost.
        let mismatched = text(
            "SELECT count(*)::text FROM (
               SELECT date_trunc('hour', time, 'UTC') b, tenant, model, count(*) n, sum(cost_usd) c FROM llm_calls GROUP BY 1, 2, 3) r
             FULL JOIN (SELECT bucket b, tenant, model, sum(calls) n, sum(cost_usd) c FROM llm_rollup_1h GROUP BY 1, 2, 3) h
               ON r.b = h.b AND r.tenant IS NOT DISTINCT FROM h.tenant AND r.model = h.model
             WHERE r.n IS DISTINCT FROM h.n OR r.c IS DISTINCT FROM h.c",
        );
        assert_eq!(mismatched.as_deref(), Some("0"));
        // Idempotent: a second refresh changes nothing.
        Spi::run("SELECT llm_refresh_rollups()").expect("refresh");
        assert_eq!(totals("llm_rollup_1h"), raw);
    }

    #[pg_test]
    fn late_rows_are_picked_up_within_the_window_or_when_noted() {
        Spi::run("SELECT llm_create_partitions(current_date - 2, current_date)").expect("partitions");
        Spi::run(&crate::insert_calls_sql(1_000, 1)).expect("insert");
        Spi::run("SELECT llm_refresh_rollups()").expect("refresh");
        let calls = || text("SELECT sum(calls)::text FROM llm_rollup_1d").unwrap();
        assert_eq!(calls(), "1000");
        // 30 minutes late: inside the default one-hour window.
        Spi::run(&crate::insert_calls_ending_sql(
            10_00001,
            10,
            0,
            "date_trunc('minute', now()) - interval '30 minutes'",
        ))
        .expect("late rows");
        Spi::run("SELECT llm_refresh_rollups()").expect("refresh");
        assert_eq!(calls(), "1010");
        // Three hours late, with the note of their hour the writer makes in the same transaction
        // (llmhub's sink does): rebuilt by the next refresh, which takes the note.
        Spi::run(&crate::insert_calls_ending_sql(
            20_00001,
            10,
            0,
            "date_trunc('minute', now()) - interval '3 hours'",
        ))
        .expect("late rows");
        Spi::run(
            "INSERT INTO llm_rollup_pending (hour) SELECT DISTINCT date_trunc('hour', time, 'UTC') FROM llm_calls
              WHERE time < date_trunc('minute', now()) - interval '2 hours'",
        )
        .expect("note");
        let noted = text("SELECT noted_hours::text FROM llm_refresh_rollups()").unwrap();
        assert_eq!(calls(), "1020");
        assert!(noted.parse::<i64>().unwrap() >= 1, "{noted}");
        assert_eq!(
            text("SELECT count(*)::text FROM llm_rollup_pending").as_deref(),
            Some("0")
        );
        // Three hours late without a note: outside the window, so not picked up...
        Spi::run(&crate::insert_calls_ending_sql(
            30_00001,
            10,
            0,
            "date_trunc('minute', now()) - interval '3 hours'",
        ))
        .expect("later rows");
        Spi::run("SELECT llm_refresh_rollups()").expect("refresh");
        assert_eq!(calls(), "1020");
        // ...until the range is rebuilt.
        Spi::run("SELECT llm_refresh_rollups_range(now() - interval '4 hours', now())").expect("range");
        assert_eq!(calls(), "1030");
    }

    #[pg_test(error = "late_window must be a non-negative interval, got -00:05:00")]
    fn a_negative_late_window_is_an_error_naming_it() {
        Spi::run("SELECT llm_refresh_rollups(interval '-5 minutes')").unwrap();
    }

    /// Buckets are UTC whatever the session's time zone, also across a daylight-saving change.
    #[pg_test]
    fn a_range_refresh_on_a_dst_day_in_another_time_zone_keeps_the_next_day_whole() {
        Spi::run("SELECT llm_create_partitions('2025-10-25', '2025-10-28')").expect("partitions");
        Spi::run(&crate::insert_calls_ending_sql(
            1,
            480,
            48,
            "'2025-10-27 23:59:00+00'::timestamptz",
        ))
        .expect("rows");
        Spi::run("SELECT llm_refresh_rollups_range('2025-10-25 00:00+00', '2025-10-28 00:00+00')").expect("refresh");
        let days = || {
            text(
                "SELECT string_agg(to_char(bucket AT TIME ZONE 'UTC', 'MM-DD') || '=' || calls, ' ' ORDER BY bucket)
                    FROM (SELECT bucket, sum(calls) calls FROM llm_rollup_1d GROUP BY 1) d",
            )
            .unwrap()
        };
        let before = days();
        Spi::run(
            "SET LOCAL TimeZone = 'Europe/Berlin';
             SELECT llm_refresh_rollups_range('2025-10-26 06:00+00', '2025-10-26 07:00+00');",
        )
        .expect("refresh in Berlin time");
        assert_eq!(days(), before);
        assert_eq!(before, "10-26=240 10-27=240", "48 hours, a call every 6 minutes");
    }

    #[pg_test]
    fn outcomes_count_calls_by_status_error_class_and_finish_reason() {
        Spi::run("SELECT llm_create_partitions('2026-11-01', '2026-11-03')").expect("partitions");
        Spi::run(
            "INSERT INTO llm_calls (time, end_time, trace_id, span_id, tenant, service_name, dialect, scope_name, role, operation, model,
                 finish_reasons, status, error_type, usage_reported, counts_usage, ttft_from_server, tpot_from_server, price_status,
                 output_tokens, cost_usd)
             SELECT '2026-11-02 10:00+00'::timestamptz + n * interval '1 minute', '2026-11-02 10:00:01+00'::timestamptz + n * interval '1 minute',
                    '\\xab'::bytea, decode(lpad(to_hex(n), 16, '0'), 'hex'), 'acme', 'api', 'otel_genai', 'test', 'model_call', 'chat', 'm',
                    reasons, status, err, true, true, false, false, 'priced', tokens, cost
               FROM (VALUES (1, '{stop}'::text[], 'ok', NULL, 100, 0.01), (2, '{stop,length}', 'ok', NULL, 50, 0.02),
                            (3, '{length}', 'ok', NULL, 4096, 0.5), (4, '{}', 'error', '429', 0, 0),
                            (5, '{}', 'error', 'timeout', 0, 0), (75, '{stop}', 'ok', NULL, 10, 0.001))
                    v(n, reasons, status, err, tokens, cost);
             SELECT llm_refresh_rollups_range('2026-11-02 00:00+00', '2026-11-03 00:00+00');",
        )
        .expect("calls");
        // The first choice's reason counts; the call at 11:15 is in the next hour.
        assert_eq!(
            text(
                "SELECT string_agg(concat_ws(' ', to_char(bucket AT TIME ZONE 'UTC', 'HH24'), status, coalesce(error_type, '-'),
                                            coalesce(finish_reason, '-'), calls, output_tokens, cost_usd), '; '
                                  ORDER BY bucket, status, error_type, finish_reason)
                   FROM llm_rollup_outcomes_1h"
            )
            .as_deref(),
            Some("10 error 429 - 1 0 0; 10 error timeout - 1 0 0; 10 ok - length 1 4096 0.5; 10 ok - stop 2 150 0.03; 11 ok - stop 1 10 0.001")
        );
    }

    #[pg_test]
    fn costliest_traces_and_agent_runs_agree_with_the_raw_rows() {
        Spi::run("SELECT llm_create_partitions('2026-11-01', '2026-11-03')").expect("partitions");
        Spi::run(&crate::insert_calls_ending_sql(
            1,
            3000,
            2,
            "'2026-11-02 11:59:00+00'::timestamptz",
        ))
        .expect("calls");
        // Trace aa: agent "looper" (span 1000, 10:00 to 10:05) calls 30 tools and 5 models: two
        // directly, one inside a tool, one inside a workflow step, one whose parent span was never
        // stored (an orphan inside looper's time only). Its nested agent "sub" makes 2 model
        // calls, and a parallel agent "sibling" of the same trace, inside looper's time, makes 1:
        // neither is looper's. A create_agent span ("factory") is no invocation. Trace bb: agent
        // "helper" with 2 model calls.
        // (span, parent, role, agent name, cost, start second, duration seconds)
        type Span = (
            u32,
            Option<u32>,
            &'static str,
            Option<&'static str>,
            Option<&'static str>,
            u32,
            u32,
        );
        let mut spans: Vec<Span> = vec![(1000, None, "agent", Some("looper"), None, 0, 300)];
        spans.extend((1..=30).map(|g| (1000 + g, Some(1000), "tool", None, None, g, 1)));
        spans.extend([
            (1031, Some(1000), "model_call", None, Some("0.5"), 31, 1),
            (1032, Some(1000), "model_call", None, Some("0.5"), 32, 1),
            (1033, Some(1001), "model_call", None, Some("0.5"), 33, 1),
            (1034, Some(1000), "workflow", None, None, 34, 5),
            (1035, Some(1034), "model_call", None, Some("0.5"), 35, 1),
            (1036, Some(1000), "agent", Some("sub"), None, 36, 10),
            (1037, Some(1036), "model_call", None, Some("0.25"), 37, 1),
            (1038, Some(1036), "model_call", None, Some("0.25"), 38, 1),
            (1039, None, "agent", Some("sibling"), None, 40, 10),
            (1040, Some(1039), "model_call", None, Some("0.125"), 41, 1),
            (1041, Some(1099), "model_call", None, Some("0.5"), 60, 1),
            (1042, Some(1000), "agent", Some("factory"), None, 61, 1),
        ]);
        let mut rows: Vec<String> = spans
            .iter()
            .map(|&(span, parent, role, agent, cost, at, dur)| {
                format!(
                    "('\\xaa', {span}, {parent}, '{role}', {agent}, {cost}, {at}, {dur})",
                    parent = parent.map_or("NULL".to_owned(), |p| p.to_string()),
                    agent = agent.map_or("NULL".to_owned(), |a| format!("'{a}'")),
                    cost = cost.unwrap_or("NULL"),
                )
            })
            .collect();
        rows.push("('\\xbb', 2000, NULL, 'agent', 'helper', NULL, 1800, 60)".to_owned());
        rows.push("('\\xbb', 2001, 2000, 'model_call', NULL, NULL, 1801, 1)".to_owned());
        rows.push("('\\xbb', 2002, 2000, 'model_call', NULL, NULL, 1802, 1)".to_owned());
        Spi::run(&format!(
            "INSERT INTO llm_calls (time, end_time, trace_id, span_id, parent_span_id, tenant, service_name, dialect, scope_name, role, operation,
                 finish_reasons, status, usage_reported, counts_usage, ttft_from_server, tpot_from_server, price_status, agent_name, cost_usd)
             SELECT '2026-11-02 10:00:00+00'::timestamptz + at * interval '1 second', '2026-11-02 10:00:00+00'::timestamptz + (at + dur) * interval '1 second',
                    trace::bytea, decode(lpad(to_hex(span), 16, '0'), 'hex'), decode(lpad(to_hex(parent), 16, '0'), 'hex'),
                    'acme', 'agent-runner', 'otel_genai', 'test', role,
                    CASE WHEN agent = 'factory' THEN 'create_agent' WHEN role = 'agent' THEN 'invoke_agent' WHEN role = 'tool' THEN 'execute_tool' WHEN role = 'workflow' THEN 'workflow' ELSE 'chat' END,
                    '{{}}'::text[], 'ok', false, true, false, false, 'not_priced', agent, cost
               FROM (VALUES {}) v(trace, span, parent, role, agent, cost, at, dur)",
            rows.join(", ")
        ))
        .expect("agent runs");
        // The same conversation id used by two tenants in one hour.
        Spi::run(
            "INSERT INTO llm_calls (time, end_time, trace_id, span_id, tenant, service_name, dialect, scope_name, role, operation,
                 finish_reasons, status, usage_reported, counts_usage, ttft_from_server, tpot_from_server, price_status, conversation_id, cost_usd)
             SELECT '2026-11-02 09:10:00+00'::timestamptz + g * interval '1 second', '2026-11-02 09:10:01+00'::timestamptz + g * interval '1 second',
                    '\\xcc'::bytea, decode(lpad(to_hex(3000 + g), 16, '0'), 'hex'), CASE WHEN g < 3 THEN 'acme' ELSE 'globex' END,
                    'chat-api', 'otel_genai', 'test', 'model_call', 'chat', '{}'::text[], 'ok', true, true, false, false, 'priced',
                    'shared-conversation', CASE WHEN g < 3 THEN 1 ELSE 10 END
               FROM generate_series(0, 4) g",
        )
        .expect("conversations");
        Spi::run("SELECT llm_refresh_rollups_range('2026-11-02 00:00+00', '2026-11-03 00:00+00')").expect("refresh");
        assert_eq!(
            text("SELECT string_agg(concat_ws(' ', agent_name, invocations, model_calls, max_model_calls, tool_calls, cost_usd), '; ' ORDER BY agent_name) FROM llm_rollup_agents_1h"),
            Some("helper 1 2 2 0 0; looper 1 5 5 30 2.5; sibling 1 1 1 0 0.125; sub 1 2 2 0 0.50".to_owned())
        );
        assert_eq!(
            text(
                "SELECT string_agg(concat_ws(' ', agent_name, model_calls + tool_calls), ',') FROM llm_agent_runaways"
            ),
            Some("looper 35".to_owned())
        );
        assert_eq!(
            text("SELECT string_agg(concat_ws(' ', tenant, calls, cost_usd), '; ' ORDER BY tenant) FROM llm_rollup_top_conversations_1h WHERE conversation_id = 'shared-conversation'"),
            Some("acme 3 3; globex 2 20".to_owned())
        );
        // Rollups keep the role: model calls, agent, tool and workflow steps apart.
        assert_eq!(
            text("SELECT string_agg(concat_ws(' ', role, n), '; ' ORDER BY role) FROM (SELECT role, sum(calls) n FROM llm_rollup_1h WHERE service_name = 'agent-runner' GROUP BY 1) r"),
            Some("agent 5; model_call 10; tool 30; workflow 1".to_owned())
        );
        // Each hour's and tenant's costliest trace is the raw rows' costliest.
        let mismatched = text(
            "SELECT count(*)::text FROM (
               SELECT DISTINCT ON (date_trunc('hour', time, 'UTC'), tenant) date_trunc('hour', time, 'UTC') b, tenant, trace_id, sum(cost_usd) OVER (PARTITION BY date_trunc('hour', time, 'UTC'), tenant, trace_id) c
                 FROM llm_calls WHERE cost_usd IS NOT NULL ORDER BY date_trunc('hour', time, 'UTC'), tenant, c DESC, trace_id) r
             WHERE NOT EXISTS (SELECT 1 FROM llm_rollup_top_traces_1h t WHERE t.bucket = r.b AND t.tenant IS NOT DISTINCT FROM r.tenant AND t.cost_usd = r.c)",
        );
        assert_eq!(mismatched.as_deref(), Some("0"));
        assert_eq!(
            text("SELECT (max(n) <= 100)::text FROM (SELECT count(*) n FROM llm_rollup_top_traces_1h GROUP BY bucket, tenant) x"),
            Some("true".to_owned())
        );
    }
}
