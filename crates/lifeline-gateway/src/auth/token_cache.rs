//! The one cache of verification answers, shared by JWT validation and introspection: keyed by the SHA-256 of
//! the bearer token (the token itself is never kept, so a heap dump holds no credential), each answer kept for
//! at most the cache's TTL and never past the token's own `exp` (RFC 7519 §4.1.4; RFC 7662 §4: "the
//! protected resource MAY cache the response … for no longer than the expiration of the token").
//!
//! Bounded: at most [`MAX_ENTRIES`] answers; when full, expired answers are dropped first, then everything (a
//! flood of distinct tokens costs re-verification, never memory).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

/// Most cached answers per cache: 10,000.
pub(crate) const MAX_ENTRIES: usize = 10_000;

/// The SHA-256 of a bearer token: the cache key.
pub(crate) type TokenHash = [u8; 32];

/// The cache key of `token`: its SHA-256.
pub(crate) fn token_hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Answers of type `V` by token hash (see the module docs).
#[derive(Debug)]
pub(crate) struct TokenCache<V> {
    ttl: Duration,
    entries: Mutex<HashMap<TokenHash, Entry<V>>>,
}

#[derive(Debug)]
struct Entry<V> {
    until: Instant,
    value: V,
}

impl<V: Clone> TokenCache<V> {
    /// A cache keeping answers for at most `ttl` (zero: caches nothing).
    pub(crate) fn new(ttl: Duration) -> TokenCache<V> {
        TokenCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The answer for `key` while it is fresh.
    pub(crate) fn get(&self, key: &TokenHash) -> Option<V> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(key) {
            Some(e) if Instant::now() < e.until => Some(e.value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `value` for the TTL, cut short by `exp` (seconds since the Unix epoch) when the token has one.
    pub(crate) fn put(&self, key: TokenHash, value: V, exp: Option<u64>) {
        let mut ttl = self.ttl;
        if let Some(exp) = exp {
            ttl = ttl.min(Duration::from_secs(exp.saturating_sub(unix_now())));
        }
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| now < e.until);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            key,
            Entry {
                until: now + ttl,
                value,
            },
        );
    }

    /// Forgets `key` (its answer no longer holds).
    pub(crate) fn remove(&self, key: &TokenHash) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_never_outlives_its_token_or_the_ttl() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let (a, b, c) = (token_hash("a"), token_hash("b"), token_hash("c"));
        cache.put(a, 1, Some(unix_now() + 3600));
        assert_eq!(cache.get(&a), Some(1));
        cache.put(b, 2, Some(unix_now().saturating_sub(1)));
        assert_eq!(cache.get(&b), None, "an expired token is not cached");
        cache.put(c, 3, None);
        assert_eq!(cache.get(&c), Some(3));
        cache.remove(&c);
        assert_eq!(cache.get(&c), None);
        let off = TokenCache::new(Duration::ZERO);
        off.put(a, 1, None);
        assert_eq!(off.get(&a), None, "a zero TTL caches nothing");
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = TokenCache::new(Duration::from_secs(60));
        for i in 0..=MAX_ENTRIES {
            cache.put(token_hash(&i.to_string()), i, None);
        }
        let len = cache.entries.lock().expect("lock").len();
        assert!(len <= MAX_ENTRIES, "{len} entries");
    }
}
