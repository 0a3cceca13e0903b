-- llm_create_partitions: the one definition of llm_calls' daily partitions (names
-- llm_calls_pYYYYMMDD, bounds [day, day + 1) in UTC). The extension installs it from this file;
-- llmhub's sink, in a database without the extension, installs this same file in its own schema
-- (its migration 2, with @extschema@ replaced by that schema) and calls it for the days it
-- writes, so partitions have one owner whoever creates them. The advisory lock is the sink's
-- schema lock (a unit test in exporters/src/postgres/schema.rs checks the number).
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
