-- Logs (issue 7): seqs (`logs.id`) that are never reused, so a follower resuming after
-- the last seq it saw misses nothing even after the newest lines were deleted
-- (AUTOINCREMENT; SQLite cannot add it in place, so the table is rebuilt); an app-wide
-- newest-first index; and per-function message byte counts for size retention.

CREATE TABLE logs_v6 (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    invocation_id TEXT    NOT NULL,
    app           TEXT    NOT NULL,
    function      TEXT    NOT NULL,
    stream        TEXT    NOT NULL,
    ts            BIGINT  NOT NULL,
    message       TEXT    NOT NULL,
    trace_id      TEXT
);

INSERT INTO logs_v6 (id, invocation_id, app, function, stream, ts, message, trace_id)
    SELECT id, invocation_id, app, function, stream, ts, message, trace_id FROM logs;

DROP TABLE logs;
ALTER TABLE logs_v6 RENAME TO logs;

CREATE INDEX logs_by_function ON logs (app, function, ts, id);
CREATE INDEX logs_by_invocation ON logs (invocation_id);
CREATE INDEX logs_by_app ON logs (app, ts, id);

-- Bytes of stored messages per function (length of the UTF-8 text), kept by the
-- statements that insert and delete lines; an app's size is the sum of its rows.
CREATE TABLE log_usage (
    app      TEXT   NOT NULL,
    function TEXT   NOT NULL,
    bytes    BIGINT NOT NULL,
    PRIMARY KEY (app, function)
);

INSERT INTO log_usage (app, function, bytes)
    SELECT app, function, SUM(LENGTH(CAST(message AS BLOB))) FROM logs GROUP BY app, function;
