-- Access keys of the Lambda-compatible API (docs/security.md, ADR 0015). The secret is
-- needed to verify SigV4 signatures, so it is kept sealed by the engine with the node's
-- secret key (XChaCha20-Poly1305, the key id as associated data); never in plain form.
-- Deleted with their app.
CREATE TABLE access_keys (
    id         TEXT   NOT NULL PRIMARY KEY,
    app        TEXT   NOT NULL REFERENCES apps (name),
    name       TEXT   NOT NULL,
    key_id     TEXT   NOT NULL,
    nonce      BLOB   NOT NULL,
    ciphertext BLOB   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX access_keys_app ON access_keys (app);
