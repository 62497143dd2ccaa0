-- Triggers: what invokes a function besides HTTP (cron, brokers, webhooks).
--
-- Function-level, not versioned; deleted with their function (the store deletes
-- children first, there are no cascades). `config` is the TriggerConfig as JSON,
-- tagged by `type`. It holds the trigger's secrets (broker passwords, webhook HMAC
-- secrets) and is stored as is until the secrets work of issue 8 encrypts it at rest;
-- the API never returns them.
CREATE TABLE triggers (
    id          TEXT    NOT NULL PRIMARY KEY,
    function_id TEXT    NOT NULL REFERENCES functions (id),
    name        TEXT    NOT NULL,
    qualifier   TEXT    NOT NULL,
    enabled     BOOLEAN NOT NULL,
    config      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    UNIQUE (function_id, name)
);

-- The last tick a cron trigger fired (unix microseconds). Advancing it is a
-- compare-and-set, so each tick fires once across restarts and nodes.
CREATE TABLE cron_state (
    trigger_id TEXT   NOT NULL PRIMARY KEY REFERENCES triggers (id),
    last_tick  BIGINT NOT NULL
);
