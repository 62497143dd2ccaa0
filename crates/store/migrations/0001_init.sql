-- Arcus metadata schema, version 1.
--
-- Portable by design (a PostgreSQL port uses the same shape): plain types only,
-- timestamps are BIGINT unix microseconds (UTC), JSON documents are TEXT, version
-- numbers are BIGINT. The only SQLite-specific detail is `INTEGER PRIMARY KEY` for
-- the insertion-order columns `invocations.seq` and `logs.id` (they break timestamp
-- ties when listing newest first), which become identity columns
-- (`BIGINT GENERATED ALWAYS AS IDENTITY`) in PostgreSQL. Name ordering assumes a
-- byte-wise collation (use `COLLATE "C"` on PostgreSQL).

CREATE TABLE apps (
    name        TEXT   NOT NULL PRIMARY KEY,
    description TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE functions (
    id           TEXT   NOT NULL PRIMARY KEY,
    app          TEXT   NOT NULL REFERENCES apps (name),
    name         TEXT   NOT NULL,
    -- ExecConfig as JSON.
    config       TEXT   NOT NULL,
    -- FunctionMeta as JSON.
    meta         TEXT   NOT NULL,
    code_sha256  TEXT,
    code_size    BIGINT,
    -- The number the next published version gets; never decreases.
    next_version BIGINT NOT NULL DEFAULT 1,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (app, name)
);

CREATE TABLE versions (
    function_id TEXT   NOT NULL REFERENCES functions (id),
    version     BIGINT NOT NULL,
    description TEXT   NOT NULL,
    sha256      TEXT   NOT NULL,
    -- ExecConfig as JSON, snapshotted at publish time.
    config      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (function_id, version)
);

CREATE TABLE aliases (
    function_id    TEXT    NOT NULL REFERENCES functions (id),
    name           TEXT    NOT NULL,
    version        BIGINT  NOT NULL,
    canary_version BIGINT,
    canary_weight  INTEGER,
    updated_at     BIGINT  NOT NULL,
    PRIMARY KEY (function_id, name),
    FOREIGN KEY (function_id, version) REFERENCES versions (function_id, version),
    FOREIGN KEY (function_id, canary_version) REFERENCES versions (function_id, version)
);

-- Previous targets of an alias, a stack per alias: the row with the highest `seq`
-- is what a rollback restores.
CREATE TABLE alias_history (
    function_id    TEXT    NOT NULL,
    alias          TEXT    NOT NULL,
    seq            BIGINT  NOT NULL,
    version        BIGINT  NOT NULL,
    canary_version BIGINT,
    canary_weight  INTEGER,
    PRIMARY KEY (function_id, alias, seq),
    FOREIGN KEY (function_id, alias) REFERENCES aliases (function_id, name)
);

CREATE TABLE invocations (
    seq          INTEGER PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    app          TEXT    NOT NULL,
    function     TEXT    NOT NULL,
    version      BIGINT,
    trigger_kind TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    error_code   TEXT,
    http_status  INTEGER,
    duration_us  BIGINT  NOT NULL,
    cold_start   BOOLEAN NOT NULL,
    started_at   BIGINT  NOT NULL
);

CREATE INDEX invocations_by_function ON invocations (app, function, started_at, seq);

CREATE TABLE logs (
    id            INTEGER PRIMARY KEY,
    invocation_id TEXT    NOT NULL,
    app           TEXT    NOT NULL,
    function      TEXT    NOT NULL,
    stream        TEXT    NOT NULL,
    ts            BIGINT  NOT NULL,
    message       TEXT    NOT NULL
);

CREATE INDEX logs_by_function ON logs (app, function, ts, id);
CREATE INDEX logs_by_invocation ON logs (invocation_id);

CREATE TABLE settings (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
