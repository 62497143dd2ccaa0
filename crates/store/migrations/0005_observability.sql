-- Observability (issue 7): trace ids and metering columns on records and logs, and the
-- rollups stats and usage are read from.

ALTER TABLE invocations ADD COLUMN memory_mb INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invocations ADD COLUMN egress_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE invocations ADD COLUMN trace_id TEXT;
ALTER TABLE logs ADD COLUMN trace_id TEXT;

-- Newest-first listing of a whole app.
CREATE INDEX invocations_by_app ON invocations (app, started_at, seq);

-- Per function and bucket (`res` 'm' = minute, 'h' = hour; `bucket` = its start,
-- unix seconds): counts, sums and a sparse duration histogram (JSON object of
-- bucket index -> count, see arcus_core::stats).
CREATE TABLE invocation_rollups (
    app          TEXT    NOT NULL,
    function     TEXT    NOT NULL,
    res          TEXT    NOT NULL,
    bucket       BIGINT  NOT NULL,
    calls        BIGINT  NOT NULL,
    errors       BIGINT  NOT NULL,
    cold_starts  BIGINT  NOT NULL,
    duration_us  BIGINT  NOT NULL,
    billed_ms    BIGINT  NOT NULL,
    mib_ms       BIGINT  NOT NULL,
    egress_bytes BIGINT  NOT NULL,
    error_codes  TEXT    NOT NULL,
    histogram    TEXT    NOT NULL,
    PRIMARY KEY (app, res, bucket, function)
);
