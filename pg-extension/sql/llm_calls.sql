-- llm_calls: one row per LLM call, agent or tool step, written by llmhub's PostgreSQL sink.
-- The columns are those of exporters/src/postgres/schema.rs (COLUMNS), in the same order; a test
-- in that module fails when the two differ. With TimescaleDB installed before this extension the
-- table becomes a hypertable (one-day chunks, see llm_to_hypertable); otherwise it is partitioned
-- natively by day (see llm_create_partitions).
DO $extension$
DECLARE
    timescale boolean := EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb');
BEGIN
    EXECUTE format($ddl$
    CREATE TABLE llm_calls (
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
    ) %s $ddl$, CASE WHEN timescale THEN '' ELSE 'PARTITION BY RANGE (time)' END);
END
$extension$;
