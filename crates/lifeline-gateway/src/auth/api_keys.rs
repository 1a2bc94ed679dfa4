//! Static API keys for machine clients (`api_keys_file`: `name sha256:HEX [scope ...]` a line). Only the
//! SHA-256 of each key is held; a presented key is hashed and compared with every entry in constant time
//! (`subtle`), so neither the time taken nor an early exit tells which entry came close.
//!
//! The file is re-read every `api_keys_reload_interval` (default 5 s) and swapped in when its keys changed,
//! without a restart. Polling, not a file watch: a Kubernetes Secret volume rotates by swapping the `..data`
//! symlink of the mounted directory, which a watch on the file itself never sees; re-reading the path follows
//! the new link. The read is bounded (1 MiB, 10,000 keys); a file that fails to parse keeps the previous keys
//! and is logged once per distinct content.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::token_cache::TokenHash;
use super::{Principal, Source};
use crate::config::auth::{parse_api_keys, MAX_AUTH_FILE_BYTES};
use crate::config::{ApiKey, ApiKeysConfig};
use crate::metrics::Metrics;

/// The current keys and where they come from.
#[derive(Debug)]
pub(crate) struct ApiKeys {
    file: PathBuf,
    keys: RwLock<Arc<Vec<ApiKey>>>,
}

impl ApiKeys {
    pub(crate) fn new(cfg: &ApiKeysConfig) -> ApiKeys {
        ApiKeys {
            file: cfg.file.clone(),
            keys: RwLock::new(Arc::new(cfg.keys.clone())),
        }
    }

    fn current(&self) -> Arc<Vec<ApiKey>> {
        Arc::clone(&self.keys.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The principal of the presented key whose SHA-256 is `hash` (`token_cache::token_hash`), if it is one of
    /// the keys: every stored hash compared in constant time.
    pub(crate) fn lookup(&self, hash: &TokenHash) -> Option<Principal> {
        let keys = self.current();
        let mut found: Option<&ApiKey> = None;
        // Every entry is compared, whatever matched before.
        for key in keys.iter() {
            if bool::from(key.sha256.ct_eq(hash)) {
                found = Some(key);
            }
        }
        found.map(|k| Principal {
            subject: k.name.clone(),
            scopes: k.scopes.clone(),
            source: Source::ApiKey,
        })
    }

    /// Re-reads the file every `every` until `stop`, swapping in changed keys.
    pub(crate) async fn reload_loop(
        self: Arc<Self>,
        every: Duration,
        stop: impl std::future::Future<Output = ()>,
        metrics: Arc<Metrics>,
    ) {
        tokio::pin!(stop);
        let mut last_bad: Option<[u8; 32]> = None;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = &mut stop => return,
            }
            match self.reload_once().await {
                Ok(Reloaded::Unchanged) => last_bad = None,
                Ok(Reloaded::Changed(n)) => {
                    last_bad = None;
                    metrics.api_keys_reload(true);
                    tracing::info!(file = %self.file.display(), keys = n, "API keys reloaded.");
                }
                Err((content, problem)) => {
                    if last_bad != Some(content) {
                        last_bad = Some(content);
                        metrics.api_keys_reload(false);
                        tracing::warn!(file = %self.file.display(), problem = %problem, "API key file not reloaded; the previous keys stay in force.");
                    }
                }
            }
        }
    }

    /// Reads and parses the file once. Errors: a hash of what was read (to log a bad content once) and why.
    async fn reload_once(&self) -> Result<Reloaded, ([u8; 32], String)> {
        let read = async {
            let len = tokio::fs::metadata(&self.file).await?.len();
            if len > MAX_AUTH_FILE_BYTES as u64 {
                return Err(std::io::Error::other(format!(
                    "larger than {MAX_AUTH_FILE_BYTES} bytes"
                )));
            }
            tokio::fs::read_to_string(&self.file).await
        };
        let text = read.await.map_err(|e| ([0; 32], e.to_string()))?;
        let content: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        let (keys, problems) = parse_api_keys(&text);
        if let Some((line, problem)) = problems.first() {
            return Err((content, format!("line {line}: {problem}")));
        }
        let mut current = self.keys.write().unwrap_or_else(|p| p.into_inner());
        if **current == keys {
            return Ok(Reloaded::Unchanged);
        }
        let n = keys.len();
        *current = Arc::new(keys);
        Ok(Reloaded::Changed(n))
    }
}

enum Reloaded {
    Unchanged,
    Changed(usize),
}

#[cfg(test)]
mod tests {
    use super::super::token_cache::token_hash;
    use super::*;

    fn key(name: &str, secret: &str, scopes: &[&str]) -> ApiKey {
        ApiKey {
            name: name.into(),
            sha256: Sha256::digest(secret.as_bytes()).into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn keys_are_found_by_hash_only() {
        let keys = ApiKeys::new(&ApiKeysConfig {
            file: PathBuf::from("/nonexistent"),
            keys: vec![key("ci", "k1", &["mcp:read"]), key("bot", "k2", &[])],
            reload_interval: Duration::from_secs(1),
        });
        let p = keys.lookup(&token_hash("k1")).expect("k1 is a key");
        assert_eq!(p.subject, "ci");
        assert_eq!(p.scopes, ["mcp:read"]);
        assert_eq!(
            keys.lookup(&token_hash("k2")).map(|p| p.subject).as_deref(),
            Some("bot")
        );
        assert!(keys.lookup(&token_hash("k3")).is_none());
        assert!(keys.lookup(&token_hash("")).is_none());
    }

    #[tokio::test]
    async fn a_changed_file_is_swapped_in_and_a_broken_one_keeps_the_old_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("keys");
        let line = |name: &str, secret: &str| {
            format!(
                "{name} sha256:{}\n",
                hex::encode(Sha256::digest(secret.as_bytes()))
            )
        };
        std::fs::write(&file, line("a", "k1")).expect("write");
        let keys = ApiKeys::new(&ApiKeysConfig {
            file: file.clone(),
            keys: vec![key("a", "k1", &[])],
            reload_interval: Duration::from_secs(1),
        });
        assert!(matches!(keys.reload_once().await, Ok(Reloaded::Unchanged)));
        std::fs::write(&file, line("b", "k2")).expect("write");
        assert!(matches!(keys.reload_once().await, Ok(Reloaded::Changed(1))));
        assert!(keys.lookup(&token_hash("k1")).is_none());
        assert!(keys.lookup(&token_hash("k2")).is_some());
        std::fs::write(&file, "b sha256:nothex\n").expect("write");
        assert!(keys.reload_once().await.is_err());
        assert!(
            keys.lookup(&token_hash("k2")).is_some(),
            "the previous keys stay"
        );
    }
}
