-- Scoped API tokens (docs/security.md, ADR 0013). The secret is never stored: only the
-- hex sha256 of the secret part of `arcus_<id>_<secret>`.
CREATE TABLE tokens (
    id            TEXT   NOT NULL PRIMARY KEY,
    name          TEXT   NOT NULL,
    -- JSON array of scope strings (`admin`, `app:<app>:manage`, ...).
    scopes        TEXT   NOT NULL,
    secret_sha256 TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    last_used_at  BIGINT
);

-- The apps a token has a scope in: counts tokens per app, and revokes a token when one
-- of its apps is deleted (so a new app of the same name inherits no tokens).
CREATE TABLE token_apps (
    app      TEXT NOT NULL,
    token_id TEXT NOT NULL REFERENCES tokens (id),
    PRIMARY KEY (app, token_id)
);
CREATE INDEX token_apps_token ON token_apps (token_id);
