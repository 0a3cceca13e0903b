-- llm_calls: one row per LLM call, agent or tool step, written by llmhub's PostgreSQL sink.
-- The columns are those of exporters/src/postgres/schema.rs (COLUMNS), in the same order; a test
-- in that module fails when the two differ. With TimescaleDB installed before this extension the
-- table becomes a hypertable (one-day chunks, see llm_to_hypertable); otherwise it is partitioned
-- natively by day (see llm_create_partitions).
--
-- A database where llmhub's sink created llm_calls first (the quick start: `llmhub demo
-- --postgres`) keeps it: the extension adopts the table with its rows when its columns are these,
-- adds the check constraints the rollups rely on, and refuses (naming the difference) otherwise.
DO $extension$
DECLARE
    timescale boolean := EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb');
    existing regclass := to_regclass('llm_calls');
    columns text := $cols$
        time timestamptz NOT NULL,
        end_time timestamptz NOT NULL,
        trace_id bytea NOT NULL,
        span_id bytea NOT NULL,
        parent_span_id bytea,
        tenant text,
        service_name text NOT NULL,
        environment text,
        dialect text NOT NULL,
        scope_name text NOT NULL,
        role text NOT NULL,
        operation text NOT NULL,
        provider text,
        request_model text,
        response_model text,
        model text,
        response_id text,
        streaming boolean,
        finish_reasons text[] NOT NULL,
        status text NOT NULL,
        error_class text,
        error_type text,
        server_address text,
        server_port integer,
        usage_reported boolean NOT NULL,
        counts_usage boolean NOT NULL,
        input_uncached_tokens bigint,
        cache_read_tokens bigint,
        cache_write_tokens bigint,
        cache_write_1h_tokens bigint,
        output_tokens bigint,
        reasoning_tokens bigint,
        duration_s double precision,
        ttft_s double precision,
        tpot_s double precision,
        output_tokens_per_s double precision,
        ttft_from_server boolean NOT NULL,
        tpot_from_server boolean NOT NULL,
        sdk_reported_cost_usd double precision,
        service_tier text,
        price_status text NOT NULL,
        cost_usd numeric,
        cost_input_uncached_usd numeric,
        cost_cache_read_usd numeric,
        cost_cache_write_usd numeric,
        cost_cache_write_1h_usd numeric,
        cost_output_usd numeric,
        cost_reasoning_usd numeric,
        cost_request_usd numeric,
        catalog_version text,
        price_rule text,
        agent_id text,
        agent_name text,
        workflow_name text,
        conversation_id text,
        tool_name text,
        tool_call_id text,
        PRIMARY KEY (trace_id, span_id, time),
        -- What the rollups' summaries can hold: a row outside these is refused (llmhub's sink
        -- dead-letters it and keeps its neighbours) instead of failing every later refresh.
        -- ('NaN' compares above every number in PostgreSQL, so < 'Infinity' refuses it too.)
        CONSTRAINT llm_calls_timings_valid CHECK (
            (duration_s >= 0 AND duration_s < 'Infinity') IS NOT FALSE
            AND (ttft_s >= 0 AND ttft_s < 'Infinity') IS NOT FALSE
            AND (tpot_s >= 0 AND tpot_s < 'Infinity') IS NOT FALSE
            AND (output_tokens_per_s >= 0 AND output_tokens_per_s < 'Infinity') IS NOT FALSE),
        CONSTRAINT llm_calls_tokens_valid CHECK (
            least(input_uncached_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens,
                  output_tokens, reasoning_tokens) >= 0 IS NOT FALSE)
$cols$;
    differ text;
BEGIN
    IF existing IS NULL THEN
        EXECUTE format('CREATE TABLE llm_calls (%s) %s', columns, CASE WHEN timescale THEN '' ELSE 'PARTITION BY RANGE (time)' END);
        RETURN;
    END IF;
    -- Adopt the sink's table: the same columns (name, type, NOT NULL, in order) and key.
    EXECUTE format('CREATE TEMP TABLE llm_calls_reference (%s)', columns);
    SELECT string_agg(coalesce(w.d, '(none)') || ' where the extension has ' || coalesce(r.d, '(none)'), '; ' ORDER BY coalesce(r.n, w.n))
      INTO differ
      FROM (SELECT a.attnum AS n, a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END AS d
              FROM pg_attribute a WHERE a.attrelid = 'pg_temp.llm_calls_reference'::regclass AND a.attnum > 0 AND NOT a.attisdropped) r
      FULL JOIN (SELECT row_number() OVER (ORDER BY a.attnum) AS n,
                        a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END AS d
                   FROM pg_attribute a WHERE a.attrelid = existing AND a.attnum > 0 AND NOT a.attisdropped) w ON w.n = r.n
     WHERE r.d IS DISTINCT FROM w.d;
    DROP TABLE pg_temp.llm_calls_reference;
    IF differ IS NOT NULL THEN
        RAISE EXCEPTION 'llm_calls already exists and its columns are not the ones llm_analytics keeps: %', differ
            USING HINT = 'Rename it (ALTER TABLE llm_calls RENAME TO llm_calls_old), create the extension, and copy the rows over.';
    END IF;
    BEGIN
        ALTER TABLE llm_calls ADD CONSTRAINT llm_calls_timings_valid CHECK (
            (duration_s >= 0 AND duration_s < 'Infinity') IS NOT FALSE
            AND (ttft_s >= 0 AND ttft_s < 'Infinity') IS NOT FALSE
            AND (tpot_s >= 0 AND tpot_s < 'Infinity') IS NOT FALSE
            AND (output_tokens_per_s >= 0 AND output_tokens_per_s < 'Infinity') IS NOT FALSE);
        ALTER TABLE llm_calls ADD CONSTRAINT llm_calls_tokens_valid CHECK (
            least(input_uncached_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens,
                  output_tokens, reasoning_tokens) >= 0 IS NOT FALSE);
    EXCEPTION WHEN check_violation THEN
        RAISE EXCEPTION 'llm_calls has rows with a negative or non-finite timing or token count, which the rollups cannot hold'
            USING HINT = 'Find them with SELECT * FROM llm_calls WHERE NOT (duration_s >= 0 AND duration_s < ''Infinity'') OR least(input_uncached_tokens, output_tokens) < 0 (and the other timings and token columns); fix or delete them, then create the extension.';
    END;
    ALTER EXTENSION llm_analytics ADD TABLE llm_calls;
    -- The sink installed its copy of llm_create_partitions (sql/llm_create_partitions.sql) beside
    -- its table; the extension's own replaces it.
    DROP FUNCTION IF EXISTS llm_create_partitions(date, date);
END
$extension$;
