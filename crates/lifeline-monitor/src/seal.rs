//! Sealed secrets: the one kind of secret the monitor stores, a rotated OAuth refresh token that must survive a
//! restart (a rotation revokes the configured one, so without it a restart would leave the probe locked out).
//!
//! Sealed with ChaCha20-Poly1305 (RFC 8439, `ring::aead`) under a 256-bit key that lives outside the database
//! and the data directory (`LIFELINE_SECRET_KEY` or `--secret-key-file`, read by the binary): a stolen database
//! file holds nothing usable. Each value gets a fresh random 96-bit nonce; its row name is the AEAD's associated
//! data, so a sealed value cannot be moved to another row. Stored as nonce || ciphertext || tag in
//! `sealed_secrets` (migration 0002). Only the lease holder probes, so one replica writes at a time.

use std::fmt;
use std::sync::Arc;

use lifeline_mcp::probe::oauth::BoxFuture;
use lifeline_mcp::probe::{RefreshTokenStore, Secret};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use crate::store::Store;

/// The sealing key: 32 bytes. `Debug` never shows it.
#[derive(Clone)]
pub struct SealKey([u8; 32]);

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

impl SealKey {
    /// Parses a key written as 64 hex digits or as standard base64 of 32 bytes (`openssl rand -base64 32`),
    /// surrounding whitespace trimmed. The error never contains the text.
    pub fn parse(text: &str) -> Result<SealKey, String> {
        use base64::Engine as _;
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| "not hex".to_owned())?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| "not 64 hex digits or base64".to_owned())?
        };
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "the key has {} bytes; it must have 32 (openssl rand -base64 32)",
                b.len()
            )
        })?;
        Ok(SealKey(key))
    }

    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(
            UnboundKey::new(&CHACHA20_POLY1305, &self.0)
                .expect("a 32-byte key is a valid ChaCha20 key"),
        )
    }

    /// Seals `plain` for the row `name`: nonce || ciphertext || tag. Errors only when the system RNG fails.
    pub fn seal(&self, name: &str, plain: &[u8]) -> Result<Vec<u8>, String> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| "the system random number generator failed".to_owned())?;
        let mut out = plain.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut out,
            )
            .map_err(|_| "sealing failed".to_owned())?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&out);
        Ok(sealed)
    }

    /// Opens what [`SealKey::seal`] sealed for `name`. Errors: too short, another key, another row, tampered.
    pub fn open(&self, name: &str, sealed: &[u8]) -> Result<Vec<u8>, String> {
        if sealed.len() < NONCE_LEN {
            return Err("the sealed value is too short".to_owned());
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "bad nonce".to_owned())?;
        let mut buf = rest.to_vec();
        let plain = self
            .aead()
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut buf)
            .map_err(|_| {
                "the sealed value does not open with this key (another key, or tampered)".to_owned()
            })?;
        Ok(plain.to_vec())
    }
}

/// The [`RefreshTokenStore`] over the monitor's database, sealing with a [`SealKey`].
#[derive(Debug, Clone)]
pub struct SealedRefreshTokens {
    store: Store,
    key: Arc<SealKey>,
}

impl SealedRefreshTokens {
    /// A store of refresh tokens in `store`'s `sealed_secrets`, sealed with `key`.
    pub fn new(store: Store, key: Arc<SealKey>) -> Self {
        SealedRefreshTokens { store, key }
    }
}

impl RefreshTokenStore for SealedRefreshTokens {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Secret>, String>> {
        Box::pin(async move {
            let Some(sealed) = self
                .store
                .sealed_get(key)
                .await
                .map_err(|e| e.to_string())?
            else {
                return Ok(None);
            };
            let plain = self.key.open(key, &sealed)?;
            String::from_utf8(plain)
                .map(|t| Some(Secret::new(t)))
                .map_err(|_| "the sealed refresh token is not UTF-8".to_owned())
        })
    }

    fn save<'a>(&'a self, key: &'a str, token: &'a Secret) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let sealed = self.key.seal(key, token.expose().as_bytes())?;
            self.store
                .sealed_put(key, &sealed, chrono::Utc::now().timestamp_millis())
                .await
                .map_err(|e| e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_from_hex_or_base64_and_never_show() {
        let hex_key = "00".repeat(32);
        assert!(SealKey::parse(&hex_key).is_ok());
        assert!(SealKey::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").is_ok());
        let short = SealKey::parse("AAAA").unwrap_err();
        assert!(short.contains("3 bytes"), "{short}");
        assert!(SealKey::parse("not a key!").is_err());
        assert_eq!(
            format!("{:?}", SealKey::parse(&hex_key).unwrap()),
            "SealKey(<redacted>)"
        );
    }

    #[test]
    fn sealed_values_open_only_with_the_key_and_row() {
        let key = SealKey([7; 32]);
        let sealed = key.seal("row-a", b"refresh-token").unwrap();
        assert!(!sealed.windows(13).any(|w| w == b"refresh-token"));
        assert_eq!(key.open("row-a", &sealed).unwrap(), b"refresh-token");
        assert_ne!(
            key.seal("row-a", b"refresh-token").unwrap(),
            sealed,
            "a fresh nonce each time"
        );
        assert!(key.open("row-b", &sealed).is_err(), "bound to its row");
        assert!(
            SealKey([8; 32]).open("row-a", &sealed).is_err(),
            "bound to its key"
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key.open("row-a", &tampered).is_err());
        assert!(key.open("row-a", &sealed[..5]).is_err());
    }

    #[tokio::test]
    async fn refresh_tokens_round_trip_through_the_database() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let sealed = SealedRefreshTokens::new(store.clone(), Arc::new(SealKey([1; 32])));
        assert_eq!(sealed.load("k").await.unwrap(), None);
        sealed.save("k", &Secret::new("rt-1")).await.unwrap();
        sealed.save("k", &Secret::new("rt-2")).await.unwrap();
        assert_eq!(sealed.load("k").await.unwrap().unwrap().expose(), "rt-2");
        let raw = store.sealed_get("k").await.unwrap().unwrap();
        assert!(!raw.windows(4).any(|w| w == b"rt-2"), "stored sealed");
        let other = SealedRefreshTokens::new(store, Arc::new(SealKey([2; 32])));
        assert!(other.load("k").await.is_err(), "another key cannot open it");
    }
}
