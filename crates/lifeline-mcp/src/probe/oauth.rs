//! The probe's OAuth 2.0 client: it logs in like a machine client of an MCP server and keeps the access token
//! across probes. One home for the client side of MCP authorization; the server side lives in the gateway.
//!
//! - Grants: client credentials (RFC 6749 §4.4) with `client_secret_basic`, `client_secret_post` (RFC 6749
//!   §2.3.1) or `private_key_jwt` (RFC 7523 §2.2; OpenID Connect Core §9), the client-credentials form the MCP
//!   extension `io.modelcontextprotocol/oauth-client-credentials` recommends; and the refresh-token grant
//!   (RFC 6749 §6) for a token an operator obtained once, keeping a rotated refresh token in memory.
//! - Discovery as a spec client does it (MCP 2025-11-25 and 2026-07-28 `basic/authorization`): the 401's
//!   `resource_metadata` (RFC 9728 §5.1), else the well-known URIs, path-inserted then root (RFC 9728 §3.1); the
//!   document's `resource` must be the target (RFC 9728 §3.3); then the first authorization server's RFC 8414
//!   metadata, else OpenID Connect Discovery, in the spec's priority order, with the `issuer` compared as a plain
//!   string (RFC 8414 §3.3, the value RFC 9207 §2.4 checks responses against). `resource` (RFC 8707 §2) is the
//!   target's URL. A configured token endpoint skips discovery.
//! - One [`OAuthClient`] is one credential; it caches a token per target (the `resource`), refreshed at its
//!   expiry minus a margin, and refreshed once at once when the server answers 401 to it. Token requests of one
//!   credential run one at a time (single flight: rotating refresh tokens are revoked as a family when two
//!   refreshes race, OAuth 2.0 Security BCP §4.14.2), and a probe that waited finds the fresh token in the cache.
//!   So a token request happens once per token lifetime, never once per probe.
//! - Step-up (2026-07-28 `basic/authorization` §Step-Up Authorization Flow): a client-credentials client "MAY …
//!   abort the request immediately"; the probe does, so a 403 `insufficient_scope` says the configured scope is
//!   not enough (`auth_failed`).
//!
//! The calls to the authorization server go through the prober's own HTTP client in its anonymous mode (none of
//! the probe's headers, the same `--ca-file` roots, bounded bodies, the probe's deadline) rather than reqwest: a
//! token request happens once per token lifetime, so a connection pool buys nothing, and the probe's deadline
//! must bound the login like every other step. Secret files are read when a token is requested, so a rotated
//! Kubernetes Secret is used without a restart.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use http::header::{HeaderMap, WWW_AUTHENTICATE};
use url::Url;

use super::auth::challenge_param;
use super::config::Secret;
use super::ctx::{ms, Ctx};
use super::report::{Failure, Phase};
use crate::verdict::Reason;

mod discovery;
mod grant;

/// Default refresh margin: a cached token is replaced this long before it expires (at most a tenth of its
/// lifetime, so a short-lived token is not refreshed on every probe, yet at least a second): 60 s.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Largest secret file read (client secret, private key, refresh token): 64 KiB.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Where a secret comes from: a value (the environment, a config file after `${ENV}` expansion) or a file that is
/// read each time the secret is needed, so a rotated Kubernetes Secret is picked up without a restart.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// The secret itself.
    Value(Secret),
    /// A file holding it; surrounding whitespace is trimmed; at most [`MAX_SECRET_FILE_BYTES`].
    File(PathBuf),
}

impl SecretSource {
    /// The secret. Errors (never containing the secret): the file cannot be read, is too large, empty, or not
    /// UTF-8.
    pub async fn read(&self) -> Result<Secret, String> {
        match self {
            SecretSource::Value(s) => Ok(s.clone()),
            SecretSource::File(path) => {
                let shown = path.display();
                let meta = tokio::fs::metadata(path)
                    .await
                    .map_err(|e| format!("cannot read {shown}: {e}"))?;
                if meta.len() > MAX_SECRET_FILE_BYTES {
                    return Err(format!(
                        "{shown} is larger than {MAX_SECRET_FILE_BYTES} bytes"
                    ));
                }
                let text = tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| format!("cannot read {shown}: {e}"))?;
                let text = text.trim();
                if text.is_empty() {
                    return Err(format!("{shown} is empty"));
                }
                Ok(Secret::new(text))
            }
        }
    }
}

/// How the client authenticates to the token endpoint (RFC 6749 §2.3; RFC 7591 §2
/// `token_endpoint_auth_method`).
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// `none`: a public client (only with the refresh-token grant); `client_id` goes in the body.
    None,
    /// `client_secret_basic`: HTTP Basic with the form-encoded id and secret (RFC 6749 §2.3.1).
    SecretBasic(SecretSource),
    /// `client_secret_post`: `client_id` and `client_secret` in the body (RFC 6749 §2.3.1).
    SecretPost(SecretSource),
    /// `private_key_jwt`: a JWT signed with the client's private key (RFC 7523 §2.2, §3; OpenID Connect Core §9):
    /// `iss` = `sub` = the client id, `aud` = the token endpoint URL, a minute's lifetime and a unique `jti`.
    /// The key is a PEM file (PKCS#8, or PKCS#1 RSA / SEC1 EC): RSA signs RS256, P-256 ES256, P-384 ES384,
    /// Ed25519 EdDSA.
    PrivateKeyJwt {
        /// The PEM private key.
        key: SecretSource,
        /// The `kid` header, when the authorization server holds several keys for the client.
        key_id: Option<String>,
    },
}

impl ClientAuth {
    /// The RFC 7591 name of the method (`client_secret_basic`, …).
    pub fn method_name(&self) -> &'static str {
        match self {
            ClientAuth::None => "none",
            ClientAuth::SecretBasic(_) => "client_secret_basic",
            ClientAuth::SecretPost(_) => "client_secret_post",
            ClientAuth::PrivateKeyJwt { .. } => "private_key_jwt",
        }
    }
}

/// One credential: how to obtain tokens for the targets probed with it.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// The registered `client_id`.
    pub client_id: String,
    /// How the client authenticates at the token endpoint.
    pub auth: ClientAuth,
    /// A refresh token obtained once (e.g. by an operator's interactive login): when set, tokens come from the
    /// refresh-token grant (RFC 6749 §6) instead of client credentials. A rotated refresh token returned by the
    /// authorization server replaces it in memory.
    pub refresh_token: Option<SecretSource>,
    /// The `scope` requested (space-separated). When `None`: the 401 challenge's `scope`, else the protected
    /// resource metadata's `scopes_supported` (2026-07-28 `basic/authorization` §Scope Selection Strategy), else
    /// none.
    pub scope: Option<String>,
    /// The token endpoint. When set, discovery is skipped and the first probe presents a token at once.
    pub token_url: Option<Url>,
    /// Replace a cached token this long before it expires (capped at a tenth of its lifetime, or a second,
    /// whichever is more, and at half of it). Default
    /// [`DEFAULT_REFRESH_MARGIN`].
    pub refresh_margin: Duration,
}

impl OAuthConfig {
    /// A client-credentials configuration with `client_secret_basic` and every default.
    pub fn client_secret(client_id: impl Into<String>, secret: SecretSource) -> Self {
        OAuthConfig {
            client_id: client_id.into(),
            auth: ClientAuth::SecretBasic(secret),
            refresh_token: None,
            scope: None,
            token_url: None,
            refresh_margin: DEFAULT_REFRESH_MARGIN,
        }
    }
}

/// Checks that `pem` is a private key `private_key_jwt` can sign with (RSA, P-256, P-384, Ed25519), for
/// configuration checks before any probe. The error never contains the key.
pub fn check_private_key(pem: &str) -> Result<(), String> {
    grant::assertion("lifeline", "https://as.invalid", pem, None).map(|_| ())
}

/// A boxed, sendable future (the [`RefreshTokenStore`] methods).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a rotated refresh token survives a restart (the monitor seals it into its database). Without one, a
/// rotated refresh token lives in memory only, and a restart falls back to the configured one, which the
/// rotation revoked. Keys are [`OAuthClient::refresh_store_key`]s: they change when the operator configures a new
/// refresh token, so a stale stored one is never preferred to it.
pub trait RefreshTokenStore: Send + Sync + fmt::Debug {
    /// The token saved under `key`, if any. Errors are logged; the configured token is used then.
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Secret>, String>>;
    /// Saves `token` under `key`, replacing what was there. Errors are logged; the token stays in memory.
    fn save<'a>(&'a self, key: &'a str, token: &'a Secret) -> BoxFuture<'a, Result<(), String>>;
}

/// Counters of one [`OAuthClient`], for tests, benchmarks and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OAuthStats {
    /// Token requests sent to the token endpoint (successful or not).
    pub token_requests: u64,
    /// Of those, the ones forced by a 401 to a cached token (the token died before its expiry).
    pub forced_refreshes: u64,
    /// Discoveries run (protected resource metadata and authorization server metadata fetched).
    pub discoveries: u64,
}

/// A credential with its token cache; share it (`Arc`) between every probe that uses the credential, through
/// [`crate::ProbeOptions::oauth`]. Tokens are cached per target (the `resource`), so one credential can serve
/// several targets; the cache holds one entry per target ever probed with it.
#[derive(Debug)]
pub struct OAuthClient {
    config: OAuthConfig,
    /// The single flight: held for the whole of a token request, so one credential refreshes once at a time.
    state: tokio::sync::Mutex<State>,
    token_requests: AtomicU64,
    forced_refreshes: AtomicU64,
    discoveries: AtomicU64,
    refresh_store: OnceLock<Arc<dyn RefreshTokenStore>>,
}

#[derive(Debug, Default)]
struct State {
    targets: HashMap<String, TargetState>,
    /// The refresh token in use, once the authorization server rotated the configured one (or the store had it).
    rotated_refresh_token: Option<Secret>,
    /// The store key of the configured refresh token, once it was read (and the store asked).
    store_key: Option<String>,
}

#[derive(Debug, Default)]
struct TargetState {
    token: Option<CachedToken>,
    /// The discovered token endpoint (unused when the config names one).
    endpoint: Option<discovery::Endpoint>,
    /// Set while the credential is refused (see [`Refusal`]).
    refusal: Option<Refusal>,
}

/// A credential refused for itself, not for a token's age: the authorization server answered the token request
/// with `auth_failed` (`invalid_client`, `invalid_grant`), or the server refused a token obtained because it had
/// refused the one before. No token is requested for this target before `until`: a refused credential costs the
/// authorization server one token request per pause, never one per probe (issue 13). Cleared by a token
/// obtained for its age, and by a change of the credential (a rotated Kubernetes Secret is tried at once).
#[derive(Debug, Clone)]
struct Refusal {
    until: Instant,
    /// The current pause: [`FIRST_PAUSE`], doubled at each further refusal up to [`MAX_PAUSE`].
    pause: Duration,
    /// What the refusal said (no secret in it), repeated while paused.
    message: String,
    /// [`OAuthClient::fingerprint`] of the refused credential: a changed secret file ends the pause at once.
    credential: [u8; 32],
}

/// The first pause after a credential was refused: 30 s.
pub const FIRST_PAUSE: Duration = Duration::from_secs(30);
/// The longest pause: 5 min (a fixed secret file is read again at most this late).
pub const MAX_PAUSE: Duration = Duration::from_secs(5 * 60);

impl TargetState {
    /// `auth_failed` without a token request while the credential's pause lasts.
    fn paused(&self, now: Instant) -> Result<(), Failure> {
        match &self.refusal {
            Some(r) if now < r.until => Err(Failure::new(
                Reason::AuthFailed,
                format!(
                    "{} (the credential was refused; no new token for {} s)",
                    r.message,
                    (r.until - now).as_secs().max(1)
                ),
            )
            .in_phase(Phase::Token)),
            _ => Ok(()),
        }
    }

    /// Starts or lengthens the pause after a refusal of `credential` saying `message`.
    fn refused(&mut self, now: Instant, message: &str, credential: [u8; 32]) {
        let pause = self
            .refusal
            .as_ref()
            .map_or(FIRST_PAUSE, |r| (r.pause * 2).min(MAX_PAUSE));
        self.refusal = Some(Refusal {
            until: now + pause,
            pause,
            message: message.to_owned(),
            credential,
        });
    }
}

#[derive(Debug)]
struct CachedToken {
    value: Secret,
    /// When to replace it: its expiry minus the margin; `None` when the authorization server gave no lifetime
    /// (then only a 401 replaces it).
    refresh_at: Option<Instant>,
    /// Obtained because the server refused the token before it (a forced refresh).
    forced: bool,
}

impl CachedToken {
    fn usable(&self, now: Instant) -> bool {
        self.refresh_at.is_none_or(|at| now < at)
    }
}

impl OAuthClient {
    /// A client for `config` with an empty cache.
    pub fn new(config: OAuthConfig) -> Self {
        OAuthClient {
            config,
            state: tokio::sync::Mutex::new(State::default()),
            token_requests: AtomicU64::new(0),
            forced_refreshes: AtomicU64::new(0),
            discoveries: AtomicU64::new(0),
            refresh_store: OnceLock::new(),
        }
    }

    /// Keeps rotated refresh tokens in `store` (and prefers the one stored for the configured token at the
    /// first refresh). Set once, before the first probe; false when a store was already set.
    pub fn set_refresh_store(&self, store: Arc<dyn RefreshTokenStore>) -> bool {
        self.refresh_store.set(store).is_ok()
    }

    /// The store key for `configured`, a refresh token as configured: `oauth-refresh:` and the hex SHA-256 of the
    /// client id and the token (it names the token without revealing it).
    pub fn refresh_store_key(&self, configured: &Secret) -> String {
        let mut h = Sha256::new();
        h.update(self.config.client_id.as_bytes());
        h.update(b"\n");
        h.update(configured.expose().as_bytes());
        format!("oauth-refresh:{}", hex::encode(h.finalize()))
    }

    /// The configuration.
    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    /// The counters so far.
    pub fn stats(&self) -> OAuthStats {
        OAuthStats {
            token_requests: self.token_requests.load(Ordering::Relaxed),
            forced_refreshes: self.forced_refreshes.load(Ordering::Relaxed),
            discoveries: self.discoveries.load(Ordering::Relaxed),
        }
    }

    /// The token to present to `target` before the server has said anything: the cached one while it is fresh,
    /// else a new one when the token endpoint is known (configured, or discovered by an earlier probe). `None`
    /// when discovery has to start from the server's 401 (the spec's first step: a request without a token).
    pub(crate) async fn token(
        &self,
        ctx: &mut Ctx<'_>,
        target: &Url,
    ) -> Result<Option<Secret>, Failure> {
        let resource = resource(target);
        let mut state = self.lock(ctx).await?;
        let entry = state.targets.entry(resource.to_string()).or_default();
        if let Some(t) = entry.token.as_ref().filter(|t| t.usable(Instant::now())) {
            return Ok(Some(t.value.clone()));
        }
        if self.config.token_url.is_none() && entry.endpoint.is_none() {
            return Ok(None);
        }
        self.forget_refusal_if_changed(entry).await;
        entry.paused(Instant::now())?;
        let fetched = self.fetch(ctx, &mut state, &resource, None).await;
        let entry = state.targets.entry(resource.to_string()).or_default();
        match &fetched {
            // Obtained for its age: whatever was refused before, this credential works at the AS.
            Ok(_) => entry.refusal = None,
            Err(f) if f.reason == Reason::AuthFailed => {
                entry.refused(Instant::now(), &f.message, self.fingerprint().await)
            }
            Err(_) => {}
        }
        fetched.map(Some)
    }

    /// The token to retry with after the server answered `status` with `headers` to a request that carried
    /// `sent` (or no token): the cache's when another probe replaced `sent` meanwhile, else a new one
    /// (discovering the authorization server from the challenge when needed). Counts a forced refresh when
    /// `sent` was the cached token.
    ///
    /// When the refused token was itself obtained by a forced refresh, the credential is what the server
    /// rejects (a revoked client, a wrong audience, a server trusting another issuer): a [`Refusal`] pause
    /// starts, during which the answer is `auth_failed` at once, without a token request.
    pub(crate) async fn after_challenge(
        &self,
        ctx: &mut Ctx<'_>,
        target: &Url,
        sent: Option<&Secret>,
        headers: &HeaderMap,
    ) -> Result<Secret, Failure> {
        let resource = resource(target);
        let challenge = headers
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut state = self.lock(ctx).await?;
        let entry = state.targets.entry(resource.to_string()).or_default();
        match (&entry.token, sent) {
            (Some(cached), Some(sent)) if cached.value.expose() != sent.expose() => {
                return Ok(cached.value.clone());
            }
            (Some(cached), None) if cached.usable(Instant::now()) => {
                return Ok(cached.value.clone());
            }
            (Some(_), Some(_)) => {
                let now = Instant::now();
                self.forget_refusal_if_changed(entry).await;
                if entry.token.as_ref().is_some_and(|t| t.forced) {
                    // Even a token obtained because the last one was refused is refused.
                    entry.paused(now)?;
                    let first = entry.refusal.is_none();
                    entry.refused(
                        now,
                        "the server refused a newly obtained token too",
                        self.fingerprint().await,
                    );
                    if first {
                        entry.paused(now)?;
                    }
                }
                self.forced_refreshes.fetch_add(1, Ordering::Relaxed);
                entry.token = None;
                let fetched = self
                    .fetch(ctx, &mut state, &resource, challenge.as_deref())
                    .await;
                let entry = state.targets.entry(resource.to_string()).or_default();
                match &fetched {
                    Ok(_) => {
                        if let Some(t) = entry.token.as_mut() {
                            t.forced = true;
                        }
                    }
                    Err(f) if f.reason == Reason::AuthFailed => {
                        entry.refused(now, &f.message, self.fingerprint().await)
                    }
                    Err(_) => {}
                }
                return fetched;
            }
            _ => {}
        }
        self.fetch(ctx, &mut state, &resource, challenge.as_deref())
            .await
    }

    async fn lock<'s>(
        &'s self,
        ctx: &Ctx<'_>,
    ) -> Result<tokio::sync::MutexGuard<'s, State>, Failure> {
        ctx.bounded(Phase::Token, None, async { Ok(self.state.lock().await) })
            .await
    }

    /// Discovers the token endpoint when needed, requests a token and caches it. Runs under the lock.
    async fn fetch(
        &self,
        ctx: &mut Ctx<'_>,
        state: &mut State,
        resource: &Url,
        challenge: Option<&str>,
    ) -> Result<Secret, Failure> {
        let started = Instant::now();
        let result = self.fetch_inner(ctx, state, resource, challenge).await;
        ctx.timings.add(Phase::Token, ms(started.elapsed()));
        ctx.token_fetched = true;
        result
    }

    async fn fetch_inner(
        &self,
        ctx: &mut Ctx<'_>,
        state: &mut State,
        resource: &Url,
        challenge: Option<&str>,
    ) -> Result<Secret, Failure> {
        let key = resource.to_string();
        let endpoint = match (
            &self.config.token_url,
            &state.targets.get(&key).and_then(|t| t.endpoint.clone()),
        ) {
            (Some(url), _) => discovery::Endpoint {
                token_url: url.clone(),
                issuer: None,
                scope_hint: None,
            },
            (None, Some(known)) => known.clone(),
            (None, None) => {
                self.discoveries.fetch_add(1, Ordering::Relaxed);
                let found = discovery::discover(ctx, resource, challenge).await?;
                state.targets.entry(key.clone()).or_default().endpoint = Some(found.clone());
                found
            }
        };
        // Scope: configured, else what the server's challenge asks for, else what discovery suggested.
        let scope = self
            .config
            .scope
            .clone()
            .or_else(|| challenge.and_then(|c| challenge_param(c, "scope")))
            .or_else(|| endpoint.scope_hint.clone());
        let refresh_token = match (&state.rotated_refresh_token, &self.config.refresh_token) {
            (Some(rotated), _) => Some(rotated.clone()),
            (None, Some(source)) => {
                let configured = source.read().await.map_err(|e| {
                    Failure::new(Reason::AuthFailed, format!("the refresh token: {e}"))
                        .in_phase(Phase::Token)
                })?;
                Some(self.stored_or(state, configured).await)
            }
            (None, None) => None,
        };
        self.token_requests.fetch_add(1, Ordering::Relaxed);
        let requested = Instant::now();
        let response = grant::request(
            ctx,
            &self.config,
            &endpoint,
            resource,
            scope.as_deref(),
            refresh_token.as_ref(),
        )
        .await;
        let response = match response {
            Ok(r) => r,
            Err(f) => {
                if f.reason == Reason::AuthServerError && self.config.token_url.is_none() {
                    // Rediscover next time: the endpoint may have moved.
                    if let Some(t) = state.targets.get_mut(&key) {
                        t.endpoint = None;
                    }
                }
                return Err(f);
            }
        };
        if let Some(rotated) = response.refresh_token {
            if self.config.refresh_token.is_some() {
                if let (Some(store), Some(key)) = (self.refresh_store.get(), &state.store_key) {
                    if let Err(e) = store.save(key, &rotated).await {
                        tracing::warn!(oauth.client_id = %self.config.client_id, error = %e,
                            "Cannot store the rotated refresh token; it is kept in memory.");
                    }
                }
                state.rotated_refresh_token = Some(rotated);
            }
        }
        let refresh_at = response.lifetime.map(|life| {
            // A tenth of the lifetime, but at least a second (`expires_in` and `exp` count whole seconds, so the
            // token may die up to a second earlier than `expires_in` says) and at most half of it.
            let margin = self
                .config
                .refresh_margin
                .min((life / 10).max(Duration::from_secs(1)))
                .min(life / 2);
            requested + life.saturating_sub(margin)
        });
        let value = response.access_token;
        state.targets.entry(key).or_default().token = Some(CachedToken {
            value: value.clone(),
            refresh_at,
            forced: false,
        });
        Ok(value)
    }
}

impl OAuthClient {
    /// Forgets `entry`'s refusal when the credential changed since (a rotated secret file is tried at once).
    /// Reads the credential only while a refusal stands: a working credential costs no extra file read.
    async fn forget_refusal_if_changed(&self, entry: &mut TargetState) {
        if let Some(r) = &entry.refusal {
            if self.fingerprint().await != r.credential {
                entry.refusal = None;
            }
        }
    }

    /// The SHA-256 of what this credential presents at the token endpoint, read now: the client secret or
    /// private key, and the configured refresh token (a read error counts as its message). Names the
    /// credential without keeping it.
    async fn fingerprint(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        let sources = [
            match &self.config.auth {
                ClientAuth::None => None,
                ClientAuth::SecretBasic(s) | ClientAuth::SecretPost(s) => Some(s),
                ClientAuth::PrivateKeyJwt { key, .. } => Some(key),
            },
            self.config.refresh_token.as_ref(),
        ];
        for source in sources.into_iter().flatten() {
            match source.read().await {
                Ok(secret) => h.update(secret.expose().as_bytes()),
                Err(e) => h.update(e.as_bytes()),
            }
            h.update(b"\0");
        }
        h.finalize().into()
    }

    /// The refresh token to use when none rotated in memory yet: the store's for `configured`, else
    /// `configured`. Asks the store once per client.
    async fn stored_or(&self, state: &mut State, configured: Secret) -> Secret {
        if state.store_key.is_some() {
            return configured;
        }
        let key = self.refresh_store_key(&configured);
        state.store_key = Some(key.clone());
        let Some(store) = self.refresh_store.get() else {
            return configured;
        };
        match store.load(&key).await {
            Ok(Some(stored)) => {
                state.rotated_refresh_token = Some(stored.clone());
                stored
            }
            Ok(None) => configured,
            Err(e) => {
                tracing::warn!(oauth.client_id = %self.config.client_id, error = %e,
                    "Cannot load the stored refresh token; using the configured one.");
                configured
            }
        }
    }
}

/// The RFC 8707 §2 resource indicator for `target`: the URL without fragment and query (a `resource` "SHOULD
/// NOT include a query component"; MCP 2026-07-28 `basic/authorization` §Canonical Server URI).
pub(crate) fn resource(target: &Url) -> Url {
    let mut r = target.clone();
    r.set_fragment(None);
    r.set_query(None);
    let _ = r.set_username("");
    let _ = r.set_password(None);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_drops_query_fragment_and_credentials() {
        let u = Url::parse("https://u:p@h.example/mcp?x=1#f").unwrap();
        assert_eq!(resource(&u).as_str(), "https://h.example/mcp");
    }

    #[tokio::test]
    async fn secret_files_are_trimmed_and_bounded() {
        let dir = std::env::temp_dir().join(format!("lifeline-oauth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = dir.join("secret");
        std::fs::write(&ok, "  s3cret\n").unwrap();
        let s = SecretSource::File(ok).read().await.unwrap();
        assert_eq!(s.expose(), "s3cret");
        let empty = dir.join("empty");
        std::fs::write(&empty, "\n").unwrap();
        assert!(SecretSource::File(empty)
            .read()
            .await
            .unwrap_err()
            .contains("empty"));
        let big = dir.join("big");
        std::fs::write(&big, vec![b'a'; 70 * 1024]).unwrap();
        assert!(SecretSource::File(big)
            .read()
            .await
            .unwrap_err()
            .contains("larger"));
        let missing = SecretSource::File(dir.join("missing"))
            .read()
            .await
            .unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn cached_tokens_expire_at_their_refresh_time() {
        let now = Instant::now();
        let t = CachedToken {
            value: Secret::new("t"),
            refresh_at: Some(now + Duration::from_secs(1)),
            forced: false,
        };
        assert!(t.usable(now));
        assert!(!t.usable(now + Duration::from_secs(2)));
        let forever = CachedToken {
            value: Secret::new("t"),
            refresh_at: None,
            forced: false,
        };
        assert!(forever.usable(now + Duration::from_secs(3600)));
    }

    #[test]
    fn a_refused_credential_pauses_token_requests_with_a_doubling_bound() {
        let now = Instant::now();
        let mut t = TargetState::default();
        assert!(t.paused(now).is_ok());
        t.refused(now, "invalid_client", [0; 32]);
        let f = t.paused(now).expect_err("paused");
        assert_eq!(f.reason, Reason::AuthFailed);
        assert!(f.message.contains("invalid_client"), "{}", f.message);
        assert!(t.paused(now + FIRST_PAUSE).is_ok(), "the pause ends");
        let mut pauses = Vec::new();
        for _ in 0..8 {
            t.refused(now, "again", [0; 32]);
            pauses.push(t.refusal.as_ref().map(|r| r.pause.as_secs()));
        }
        assert_eq!(pauses[..4], [Some(60), Some(120), Some(240), Some(300)]);
        assert_eq!(pauses.last(), Some(&Some(MAX_PAUSE.as_secs())));
    }
}
