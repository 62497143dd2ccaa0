-- Per-app secrets, sealed by the engine with an AEAD (XChaCha20-Poly1305) whose
-- associated data binds each ciphertext to its app and name. The plain value is never
-- stored; `key_id` names (by a hash prefix) the key that sealed it. Deleted with their
-- app (children first, there are no cascades).
CREATE TABLE secrets (
    app        TEXT   NOT NULL REFERENCES apps (name),
    name       TEXT   NOT NULL,
    key_id     TEXT   NOT NULL,
    nonce      BLOB   NOT NULL,
    ciphertext BLOB   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (app, name)
);
