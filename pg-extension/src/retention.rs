//! Retention for the rollups that grow fastest: the minute rollup and the per-hour top-N, agent and
//! outcome tables. `llm_set_rollup_retention` stores how long each keeps its buckets;
//! `llm_apply_rollup_retention` (run by every `llm_refresh_rollups()`) deletes whole hours older
//! than that. The hourly and daily rollups are kept: days are rebuilt from hours, and both are
//! small. A refresh of hours whose minutes have expired rebuilds those hours' minutes whole from
//! `llm_calls`, so an expired minute never leaves a hole in a rebuilt hour.

use pgrx::prelude::*;

extension_sql!(
    r#"
CREATE TABLE llm_rollup_retention (
    rollup regclass PRIMARY KEY,
    keep interval NOT NULL CONSTRAINT llm_rollup_retention_keep CHECK (keep >= interval '1 hour')
);
COMMENT ON TABLE llm_rollup_retention IS 'How long each rollup keeps its buckets (llm_set_rollup_retention); rollups not listed keep everything.';
SELECT pg_catalog.pg_extension_config_dump('llm_rollup_retention', '');

-- The rollups retention may apply to, with the column that holds their time.
CREATE FUNCTION llm_rollup_retention_column(rollup regclass) RETURNS text
LANGUAGE sql STABLE AS $fn$
    SELECT CASE rollup
        WHEN '@extschema@.llm_rollup_1m'::regclass THEN 'bucket'
        WHEN '@extschema@.llm_rollup_top_traces_1h'::regclass THEN 'bucket'
        WHEN '@extschema@.llm_rollup_top_conversations_1h'::regclass THEN 'bucket'
        WHEN '@extschema@.llm_rollup_agents_1h'::regclass THEN 'bucket'
        WHEN '@extschema@.llm_agent_runaways'::regclass THEN 'time'
        WHEN '@extschema@.llm_rollup_outcomes_1h'::regclass THEN 'bucket'
    END
$fn$;

CREATE FUNCTION llm_set_rollup_retention(rollup regclass, keep interval) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    IF @extschema@.llm_rollup_retention_column(rollup) IS NULL THEN
        RAISE EXCEPTION 'rollup: % has no retention; it applies to llm_rollup_1m, llm_rollup_top_traces_1h, llm_rollup_top_conversations_1h, llm_rollup_agents_1h, llm_agent_runaways and llm_rollup_outcomes_1h', rollup
            USING HINT = 'llm_rollup_1h and llm_rollup_1d are kept: days are rebuilt from hours.';
    END IF;
    IF keep IS NULL THEN
        DELETE FROM @extschema@.llm_rollup_retention r WHERE r.rollup = llm_set_rollup_retention.rollup;
        RETURN;
    END IF;
    IF keep < interval '1 hour' THEN
        RAISE EXCEPTION 'keep must be at least 1 hour, got %', keep;
    END IF;
    INSERT INTO @extschema@.llm_rollup_retention AS r VALUES (rollup, keep)
    ON CONFLICT ON CONSTRAINT llm_rollup_retention_pkey DO UPDATE SET keep = excluded.keep;
END
$fn$;
COMMENT ON FUNCTION llm_set_rollup_retention(regclass, interval) IS 'Keeps rollup''s buckets for keep (at least 1 hour; NULL: keep everything). llm_refresh_rollups() deletes whole hours older than that. For llm_rollup_1m, keep at least the longest window of the SLO functions you use (they read minutes).';

CREATE FUNCTION llm_apply_rollup_retention(as_of timestamptz DEFAULT now())
RETURNS TABLE (rollup regclass, deleted bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT x.rollup, x.keep FROM @extschema@.llm_rollup_retention x ORDER BY x.rollup::text LOOP
        rollup := r.rollup;
        -- Whole hours only: an hour's minutes are all there or all gone.
        EXECUTE pg_catalog.format('DELETE FROM %s WHERE %I < $1', r.rollup, @extschema@.llm_rollup_retention_column(r.rollup))
          USING date_trunc('hour', as_of - r.keep, 'UTC');
        GET DIAGNOSTICS deleted = ROW_COUNT;
        RETURN NEXT;
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION llm_apply_rollup_retention(timestamptz) IS 'Deletes every bucket older than its rollup''s retention (whole hours before as_of - keep); run by llm_refresh_rollups().';
REVOKE EXECUTE ON FUNCTION llm_set_rollup_retention(regclass, interval), llm_apply_rollup_retention(timestamptz) FROM PUBLIC;
"#,
    name = "rollup_retention",
    requires = ["rollups"]
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    use crate::sql_text as text;

    #[pg_test(error = "keep must be at least 1 hour, got 00:10:00")]
    fn a_retention_under_an_hour_is_an_error_naming_it() {
        Spi::run("SELECT llm_set_rollup_retention('llm_rollup_1m', interval '10 minutes')").unwrap();
    }

    #[pg_test(
        error = "rollup: llm_rollup_1h has no retention; it applies to llm_rollup_1m, llm_rollup_top_traces_1h, llm_rollup_top_conversations_1h, llm_rollup_agents_1h, llm_agent_runaways and llm_rollup_outcomes_1h"
    )]
    fn the_hourly_rollup_has_no_retention() {
        Spi::run("SELECT llm_set_rollup_retention('llm_rollup_1h', interval '30 days')").unwrap();
    }

    #[pg_test]
    fn expired_minutes_go_and_a_rebuilt_hour_stays_whole() {
        // One call a minute for three hours, four days ago; minutes kept for two days.
        Spi::run("SELECT llm_create_partitions(current_date - 5, current_date)").unwrap();
        Spi::run(
            "INSERT INTO llm_calls (time, end_time, trace_id, span_id, tenant, service_name, dialect, scope_name, role, operation,
                 finish_reasons, status, usage_reported, counts_usage, ttft_from_server, tpot_from_server, price_status, cost_usd)
             SELECT h + g * interval '1 minute', h + g * interval '1 minute' + interval '1 second', decode(md5(g::text), 'hex'),
                    decode(substr(md5(g::text || 's'), 1, 16), 'hex'), 'acme', 'api', 'otel_genai', 'test', 'model_call', 'chat',
                    '{}'::text[], 'ok', true, true, false, false, 'priced', 0.01
               FROM (SELECT date_trunc('hour', now() - interval '4 days', 'UTC') AS h) x, generate_series(0, 179) g;
             SELECT llm_refresh_rollups_range(now() - interval '5 days', now());",
        )
        .unwrap();
        let minutes = "SELECT count(*)::text FROM llm_rollup_1m";
        let hours = "SELECT string_agg(calls::text, ' ' ORDER BY bucket) FROM llm_rollup_1h";
        assert_eq!(text(minutes).as_deref(), Some("180"));
        Spi::run("SELECT llm_set_rollup_retention('llm_rollup_1m', interval '2 days')").unwrap();
        assert_eq!(
            text("SELECT string_agg(concat_ws(' ', rollup, deleted), '; ') FROM llm_apply_rollup_retention()")
                .as_deref(),
            Some("llm_rollup_1m 180")
        );
        assert_eq!(text(minutes).as_deref(), Some("0"));
        assert_eq!(text(hours).as_deref(), Some("60 60 60"));
        // A refresh of part of the middle hour rebuilds its minutes whole: the hour keeps 60.
        Spi::run(
            "SELECT llm_refresh_rollups_range(date_trunc('hour', now() - interval '4 days', 'UTC') + interval '70 minutes',
                                              date_trunc('hour', now() - interval '4 days', 'UTC') + interval '80 minutes')",
        )
        .unwrap();
        assert_eq!(text(hours).as_deref(), Some("60 60 60"));
        assert_eq!(text(minutes).as_deref(), Some("60"));
        // NULL keeps everything again.
        Spi::run("SELECT llm_set_rollup_retention('llm_rollup_1m', NULL)").unwrap();
        assert_eq!(
            text("SELECT count(*)::text FROM llm_rollup_retention").as_deref(),
            Some("0")
        );
    }
}
