-- Secrets that must survive a restart, sealed (ChaCha20-Poly1305, key outside the database): today only rotated
-- OAuth refresh tokens (src/seal.rs). `name` is a key that reveals nothing (a hash); `sealed` is nonce || ciphertext.
CREATE TABLE sealed_secrets (
    name       TEXT    PRIMARY KEY,
    sealed     BLOB    NOT NULL,
    updated_ms INTEGER NOT NULL
);
