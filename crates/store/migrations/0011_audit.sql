-- The audit log: one row per control-plane change. Kept past the deletion of the app it
-- names (it is history); deleted by age by the retention task.
CREATE TABLE audit_log (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    at            INTEGER NOT NULL,           -- unix µs
    actor         TEXT NOT NULL,
    method        TEXT NOT NULL,
    route         TEXT NOT NULL,
    app           TEXT,
    function      TEXT,
    resource      TEXT,
    status        INTEGER NOT NULL,
    client_ip     TEXT,
    forwarded_for TEXT,
    request_id    TEXT NOT NULL,
    before        TEXT,                       -- JSON
    after         TEXT                        -- JSON
);
CREATE INDEX audit_log_at ON audit_log (at, seq);
CREATE INDEX audit_log_app_at ON audit_log (app, at, seq);
