-- Invocation records in segments (ADR 0020): the records one batch writes for one
-- function become one row holding a JSON array of records, selected by its bounds; an
-- id index finds a record's segment. Each record is an array in this order: seq, id,
-- version, trigger, status, error_code, http_status, duration_us, cold_start,
-- started_at, memory_mb, egress_bytes, trace_id, init_duration_us, max_memory_mb,
-- log_lines (NULL: no platform lines), ended_at (with platform lines), and, when some
-- lines come before START, [lines before START, START's time] (absent here).

CREATE TABLE invocation_segments (
    seg         INTEGER PRIMARY KEY,
    app         TEXT    NOT NULL,
    function    TEXT    NOT NULL,
    -- The lowest seq a read shows of its records (a START line, or a record's seq)
    -- and the highest (its last record's seq); segments never overlap in seqs.
    first_seq   BIGINT  NOT NULL,
    last_seq    BIGINT  NOT NULL,
    min_started BIGINT  NOT NULL,
    max_started BIGINT  NOT NULL,
    -- The newest END of its records with platform lines; NULL when none has them.
    max_ended   BIGINT,
    records     TEXT    NOT NULL
);

CREATE TABLE invocation_ids (
    id  TEXT    PRIMARY KEY,
    seg INTEGER NOT NULL
) WITHOUT ROWID;

-- Records written before: one segment each (keyed by the record's seq), so their
-- seqs keep the blocks they had.
INSERT INTO invocation_segments
    (seg, app, function, first_seq, last_seq, min_started, max_started, max_ended, records)
SELECT seq, app, function,
       CASE WHEN log_lines IS NULL THEN seq ELSE seq - log_lines - 2 END,
       seq, started_at, started_at,
       CASE WHEN log_lines IS NULL THEN NULL ELSE ended_at END,
       json_array(json_array(seq, id, version, trigger_kind, status, error_code,
           http_status, duration_us, json(CASE WHEN cold_start THEN 'true' ELSE 'false' END),
           started_at, memory_mb, egress_bytes, trace_id, init_duration_us, max_memory_mb,
           log_lines, CASE WHEN log_lines IS NULL THEN NULL ELSE ended_at END))
FROM invocations;

INSERT INTO invocation_ids (id, seg) SELECT id, seq FROM invocations;

DROP TABLE invocations;

-- Newest-first record listings per function and per app.
CREATE INDEX segments_by_function ON invocation_segments (app, function, max_started);
CREATE INDEX segments_by_app ON invocation_segments (app, max_started);
-- Newest-first reads of platform lines.
CREATE INDEX segments_end_by_function ON invocation_segments (app, function, max_ended)
    WHERE max_ended IS NOT NULL;
CREATE INDEX segments_end_by_app ON invocation_segments (app, max_ended)
    WHERE max_ended IS NOT NULL;
-- Write-order reads (log tails).
CREATE INDEX segments_by_seq ON invocation_segments (app, last_seq);
-- Retention: the oldest segments first.
CREATE INDEX segments_by_oldest ON invocation_segments (app, min_started);
