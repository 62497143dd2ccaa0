-- Async invocations: the durable queue and each event's state, in one table.
--
-- `seq` gives FIFO order (an identity column on PostgreSQL). `due_at` is when a
-- queued/failed event may next start, or when a running event's lease ends (then
-- another worker may take it). Workers claim rows of one function at a time; on
-- PostgreSQL the same claim is `SELECT ... FOR UPDATE SKIP LOCKED`.
CREATE TABLE events (
    seq             INTEGER PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE,
    function_id     TEXT    NOT NULL,
    app             TEXT    NOT NULL,
    function        TEXT    NOT NULL,
    qualifier       TEXT    NOT NULL,
    trigger_kind    TEXT    NOT NULL,
    payload_kind    TEXT    NOT NULL,
    payload         BLOB    NOT NULL,
    idempotency_key TEXT,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    due_at          BIGINT  NOT NULL,
    lease_owner     TEXT,
    result          TEXT,
    error_code      TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);

-- What the dispatcher scans: events that may run, by function, oldest first.
CREATE INDEX events_pending ON events (function_id, status, seq);
CREATE INDEX events_due ON events (status, due_at);
CREATE INDEX events_idempotency ON events (function_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
