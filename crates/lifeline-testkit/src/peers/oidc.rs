//! A real OAuth 2.1 authorization server for the auth tests: `tests/peers/oidc_as.mjs`, which runs `oidc-provider`
//! 9.13.3 (a certified OpenID provider, npm) on Node 22 on 127.0.0.1 with a port the OS picks.
//!
//! What it serves is oidc-provider's own: OIDC discovery at `/.well-known/openid-configuration` (plus the same
//! document at the RFC 8414 `/.well-known/oauth-authorization-server`, which oidc-provider itself does not serve),
//! `/jwks`, `/token` (client credentials, RFC 6749 §4.4, and refresh tokens, §6; client authentication
//! `client_secret_basic`, `client_secret_post` or `private_key_jwt`, RFC 7523), `/token/introspection` (RFC 7662;
//! every configured client may introspect; oidc-provider refuses JWT access tokens there by design) and
//! `/token/revocation` (RFC 7009). Resource indicators (RFC 8707) pick the access token's audience, scope, format
//! (RS256 `at+jwt` JWT, RFC 9068, or opaque) and lifetime.
//!
//! Test-only admin routes under `/__admin/` of the same listener mint negative tokens with `jose` 6.2.19
//! ([`AuthServer::mint`]), rotate and drop signing keys, rotate a client secret, add resources, issue a refresh
//! token without a browser flow, and count what the AS served ([`AuthServer::stats`]); `tests/peers/oidc_as.mjs`
//! documents the wire format.
//!
//! ```no_run
//! # async fn demo() {
//! use lifeline_testkit::peers::oidc::{AuthServer, AuthServerConfig, ClientConfig, ResourceConfig};
//! let resource = "http://127.0.0.1:8080/mcp";
//! let auth = AuthServer::start(
//!     AuthServerConfig::default()
//!         .client(ClientConfig::basic("probe", "s3cret", "mcp:read"))
//!         .resource(ResourceConfig::jwt(resource, "mcp:read")),
//! )
//! .await;
//! let token = auth.client_credentials("probe", "s3cret", Some(resource), Some("mcp:read")).await.unwrap();
//! # }
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::raw_http::{self, RawResponse};
use super::{node22, path_arg, peers_dir, peers_sources};
use crate::process::ChildGuard;

/// The line prefix `oidc_as.mjs` prints once bound, followed by the port.
const ANNOUNCE: &str = "oidc-as: listening on http://127.0.0.1:";

/// Time limit for one request to the AS (token, introspection, admin): 10 s (generous for a loaded 2-core machine).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How a client authenticates at the token and introspection endpoints (RFC 6749 §2.3, RFC 7523 §2.2).
#[derive(Debug, Clone, PartialEq)]
pub enum ClientAuth {
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1). oidc-provider's default. Note that
    /// oidc-provider accepts `client_secret_post` for such a client too (and the reverse): see
    /// [`AuthStats::auth_methods`].
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body (RFC 6749 §2.3.1).
    ClientSecretPost,
    /// A JWT client assertion signed with the client's private key (RFC 7523 §2.2; `aud` = the issuer or the token
    /// endpoint). The AS knows the public key: a JWK such as [`ClientKey::public_jwk`].
    PrivateKeyJwt {
        /// The client's public JWK (RFC 7517), e.g. `{"kty":"EC","crv":"P-256","x":…,"y":…,"kid":…}`.
        public_jwk: Value,
    },
}

impl ClientAuth {
    /// The RFC 7591 `token_endpoint_auth_method` name.
    pub fn method(&self) -> &'static str {
        match self {
            ClientAuth::ClientSecretBasic => "client_secret_basic",
            ClientAuth::ClientSecretPost => "client_secret_post",
            ClientAuth::PrivateKeyJwt { .. } => "private_key_jwt",
        }
    }
}

/// One registered (static) client.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// `client_id`.
    pub client_id: String,
    /// The client secret; ignored for [`ClientAuth::PrivateKeyJwt`].
    pub secret: String,
    /// How it authenticates.
    pub auth: ClientAuth,
    /// The scopes it may request, space-separated (empty: any scope a resource knows).
    pub scope: String,
    /// When its secret expires, seconds since the Unix epoch (RFC 7591 `client_secret_expires_at`); after that the
    /// AS answers `invalid_client`. `None`: never.
    pub client_secret_expires_at: Option<u64>,
}

impl ClientConfig {
    /// A `client_secret_basic` client allowed `scope`.
    pub fn basic(client_id: &str, secret: &str, scope: &str) -> ClientConfig {
        ClientConfig {
            client_id: client_id.to_owned(),
            secret: secret.to_owned(),
            auth: ClientAuth::ClientSecretBasic,
            scope: scope.to_owned(),
            client_secret_expires_at: None,
        }
    }

    /// A `client_secret_post` client allowed `scope`.
    pub fn post(client_id: &str, secret: &str, scope: &str) -> ClientConfig {
        ClientConfig {
            auth: ClientAuth::ClientSecretPost,
            ..ClientConfig::basic(client_id, secret, scope)
        }
    }

    /// A `private_key_jwt` client with `public_jwk` (see [`ClientKey`]) allowed `scope`.
    pub fn private_key_jwt(client_id: &str, public_jwk: Value, scope: &str) -> ClientConfig {
        ClientConfig {
            auth: ClientAuth::PrivateKeyJwt { public_jwk },
            ..ClientConfig::basic(client_id, "", scope)
        }
    }

    /// The same client with a secret that expires at `unix_seconds`.
    pub fn expiring_at(mut self, unix_seconds: u64) -> ClientConfig {
        self.client_secret_expires_at = Some(unix_seconds);
        self
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "client_id": self.client_id,
            "token_endpoint_auth_method": self.auth.method(),
            "scope": self.scope,
        });
        match &self.auth {
            ClientAuth::PrivateKeyJwt { public_jwk } => {
                v["jwks"] = json!({ "keys": [public_jwk] });
            }
            _ => v["client_secret"] = json!(self.secret),
        }
        if let Some(at) = self.client_secret_expires_at {
            v["client_secret_expires_at"] = json!(at);
        }
        v
    }
}

/// The format of a resource's access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormat {
    /// An RS256-signed JWT (`typ: at+jwt`, RFC 9068) with `iss`, `aud` (the resource), `sub`, `client_id`, `scope`,
    /// `iat`, `exp`, `jti`.
    Jwt,
    /// An opaque reference token: only introspection (RFC 7662) says what it is.
    Opaque,
}

/// A protected resource (an RFC 8707 resource indicator) the AS issues tokens for.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceConfig {
    /// The resource URI, which is also the tokens' `aud`; `"*"` matches any `http(s)` resource on 127.0.0.1,
    /// `localhost` or `[::1]` (for a server whose port is not known before the AS starts), with `aud` = the
    /// requested URI.
    pub uri: String,
    /// The scopes it knows, space-separated; a token carries the requested ones among these.
    pub scope: String,
    /// Its access token format.
    pub format: TokenFormat,
    /// Access token lifetime (whole seconds; default 300 s).
    pub ttl: Duration,
    /// A fixed `aud` for its tokens instead of the resource URI, the way some identity providers name an API
    /// (e.g. `api://mcp`); `None` (default): `aud` = the resource URI.
    pub audience: Option<String>,
}

impl ResourceConfig {
    /// JWT access tokens for `uri` valid 300 s.
    pub fn jwt(uri: &str, scope: &str) -> ResourceConfig {
        ResourceConfig {
            uri: uri.to_owned(),
            scope: scope.to_owned(),
            format: TokenFormat::Jwt,
            ttl: Duration::from_secs(300),
            audience: None,
        }
    }

    /// Opaque access tokens for `uri` valid 300 s.
    pub fn opaque(uri: &str, scope: &str) -> ResourceConfig {
        ResourceConfig {
            format: TokenFormat::Opaque,
            ..ResourceConfig::jwt(uri, scope)
        }
    }

    /// JWT access tokens for any loopback resource URI (`uri: "*"`), `aud` = the requested URI.
    pub fn any_loopback(scope: &str) -> ResourceConfig {
        ResourceConfig::jwt("*", scope)
    }

    /// The same resource with tokens valid `ttl` (rounded down to whole seconds, at least 1 s).
    pub fn with_ttl(mut self, ttl: Duration) -> ResourceConfig {
        self.ttl = ttl;
        self
    }

    /// The same resource with tokens whose `aud` is `audience` instead of the resource URI.
    pub fn with_audience(mut self, audience: &str) -> ResourceConfig {
        self.audience = Some(audience.to_owned());
        self
    }

    fn to_json(&self) -> Value {
        json!({
            "audience": self.audience,
            "uri": self.uri,
            "scope": self.scope,
            "format": match self.format { TokenFormat::Jwt => "jwt", TokenFormat::Opaque => "opaque" },
            "ttl": self.ttl.as_secs().max(1),
        })
    }
}

/// What the AS is started with. `Default`: no clients, no resources, rotating refresh tokens valid one day.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthServerConfig {
    /// The registered clients. Any of them may call introspection; give the gateway a client of its own.
    pub clients: Vec<ClientConfig>,
    /// The resources tokens can be issued for.
    pub resources: Vec<ResourceConfig>,
    /// The resource used when a token request names none; `None`: such a token is opaque and has no audience.
    pub default_resource: Option<String>,
    /// Whether every refresh-token grant returns a new refresh token and consumes the old one (reuse of a consumed
    /// one revokes the whole grant). Default `true`.
    pub rotate_refresh_tokens: bool,
    /// Refresh token lifetime (default one day).
    pub refresh_token_ttl: Duration,
    /// A `Cache-Control` value for `/jwks` answers, e.g. `max-age=300` (RFC 9111 §5.2.2.1); `None` (default): none,
    /// as oidc-provider itself.
    pub jwks_cache_control: Option<String>,
}

impl Default for AuthServerConfig {
    fn default() -> AuthServerConfig {
        AuthServerConfig {
            clients: Vec::new(),
            resources: Vec::new(),
            default_resource: None,
            rotate_refresh_tokens: true,
            refresh_token_ttl: Duration::from_secs(86_400),
            jwks_cache_control: None,
        }
    }
}

impl AuthServerConfig {
    /// Adds a client.
    pub fn client(mut self, client: ClientConfig) -> AuthServerConfig {
        self.clients.push(client);
        self
    }

    /// Adds a resource.
    pub fn resource(mut self, resource: ResourceConfig) -> AuthServerConfig {
        self.resources.push(resource);
        self
    }

    fn to_json(&self) -> Value {
        json!({
            "clients": self.clients.iter().map(ClientConfig::to_json).collect::<Vec<_>>(),
            "resources": self.resources.iter().map(ResourceConfig::to_json).collect::<Vec<_>>(),
            "default_resource": self.default_resource,
            "rotate_refresh_tokens": self.rotate_refresh_tokens,
            "refresh_token_ttl": self.refresh_token_ttl.as_secs().max(1),
            "jwks_cache_control": self.jwks_cache_control,
        })
    }
}

/// How [`AuthServer::mint`] signs a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// RS256 with the AS's current signing key and its `kid`: a token the AS could have issued.
    Current,
    /// RS256 with a fresh key whose `kid` is not in the JWKS (a verifier's "unknown key" case).
    UnknownKid,
    /// RS256 with a fresh key not in the JWKS, but the current key's `kid` in the header (a bad signature).
    Foreign,
    /// HS256 keyed with the current public key's SPKI PEM bytes, current `kid` (the RS/HS algorithm confusion).
    Hs256WithPublicKey,
    /// `alg: none`, no signature, current `kid` (RFC 7519 §6 unsecured JWT).
    None,
}

impl Signing {
    fn wire(self) -> &'static str {
        match self {
            Signing::Current => "current",
            Signing::UnknownKid => "unknown_kid",
            Signing::Foreign => "foreign",
            Signing::Hs256WithPublicKey => "hs256_public_key",
            Signing::None => "none",
        }
    }
}

/// A successful token endpoint answer (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TokenResponse {
    /// The access token (a JWT or opaque, per the resource's [`TokenFormat`]).
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: Option<u64>,
    /// The granted scopes, space-separated.
    pub scope: Option<String>,
    /// A new refresh token (refresh grant with rotation).
    pub refresh_token: Option<String>,
}

/// What the AS served since start (or the last [`AuthServer::reset_stats`]). Admin routes are not counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AuthStats {
    /// Token endpoint requests per client id (failed ones included; `unknown` when none could be read).
    pub token_requests: BTreeMap<String, u64>,
    /// Token endpoint requests answered with an error (4xx/5xx), per client id.
    pub token_errors: BTreeMap<String, u64>,
    /// Token endpoint requests per `grant_type`.
    pub grants: BTreeMap<String, u64>,
    /// Token endpoint requests per client authentication presented: `client_secret_basic`, `client_secret_post`,
    /// `private_key_jwt` or `none` (oidc-provider accepts basic and post interchangeably for a client registered
    /// with either, so this is how a test tells which one a client used).
    pub auth_methods: BTreeMap<String, u64>,
    /// `GET /jwks` requests.
    pub jwks_fetches: u64,
    /// Introspection requests (RFC 7662).
    pub introspection_calls: u64,
    /// Discovery requests (`/.well-known/openid-configuration`, `/.well-known/oauth-authorization-server`).
    pub metadata_fetches: u64,
    /// Revocation requests (RFC 7009).
    pub revocation_calls: u64,
}

impl AuthStats {
    /// Token requests made by `client_id`.
    pub fn token_requests_of(&self, client_id: &str) -> u64 {
        self.token_requests.get(client_id).copied().unwrap_or(0)
    }
}

/// A running authorization server. Dropping it kills the process.
#[derive(Debug)]
pub struct AuthServer {
    issuer: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// The process; its output tail helps failure messages.
    pub guard: ChildGuard,
    clients: Vec<ClientConfig>,
}

impl AuthServer {
    /// Starts the AS with `config` (Node 22, `tests/peers/oidc_as.mjs`) on 127.0.0.1 port 0.
    ///
    /// # Panics
    /// If Node 22 or oidc-provider are not installed ("run scripts/install-peers.sh"), or the AS does not listen
    /// within [`super::STARTUP_PATIENCE`] (the message has its output).
    pub async fn start(config: AuthServerConfig) -> AuthServer {
        let modules = peers_dir().join("npm/node_modules");
        super::npm_package_dir("oidc-provider");
        super::npm_package_dir("jose");
        let mut cmd = Command::new(node22());
        cmd.arg(path_arg(&peers_sources().join("oidc_as.mjs")))
            .arg(config.to_json().to_string())
            .env("LIFELINE_NPM_MODULES", modules);
        let mut guard = ChildGuard::spawn("oidc-as", cmd).unwrap_or_else(|e| panic!("{e}"));
        let addr = super::announced_addr(&mut guard, ANNOUNCE)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        AuthServer {
            issuer: format!("http://{addr}"),
            addr,
            guard,
            clients: config.clients,
        }
    }

    /// The issuer identifier, `http://127.0.0.1:PORT` (no trailing slash; the `iss` of its tokens, RFC 8414 §2).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The token endpoint, `{issuer}/token`.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// The JWKS, `{issuer}/jwks` (RFC 7517 key set; current signing key first).
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    /// The introspection endpoint (RFC 7662), `{issuer}/token/introspection`.
    pub fn introspection_url(&self) -> String {
        format!("{}/token/introspection", self.issuer)
    }

    /// The revocation endpoint (RFC 7009), `{issuer}/token/revocation`.
    pub fn revocation_url(&self) -> String {
        format!("{}/token/revocation", self.issuer)
    }

    /// OIDC discovery, `{issuer}/.well-known/openid-configuration`.
    pub fn openid_configuration_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// RFC 8414 metadata, `{issuer}/.well-known/oauth-authorization-server` (the same document).
    pub fn oauth_metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-authorization-server", self.issuer)
    }

    /// A client-credentials token (RFC 6749 §4.4) from the real token endpoint, authenticating as the client was
    /// configured (`client_secret_basic` or `client_secret_post`) with `secret`. `resource` (RFC 8707) selects the
    /// audience; `scope` is space-separated.
    ///
    /// # Errors
    /// The status and body of any non-200 answer (`invalid_client`, `invalid_target`, `invalid_scope`, …), a
    /// transport error, or a `private_key_jwt` / unknown client (those cannot be served from a secret here).
    pub async fn client_credentials(
        &self,
        client_id: &str,
        secret: &str,
        resource: Option<&str>,
        scope: Option<&str>,
    ) -> Result<TokenResponse, String> {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend(resource.map(|r| ("resource", r)));
        form.extend(scope.map(|s| ("scope", s)));
        self.token_request(client_id, secret, form).await
    }

    /// A refresh-token grant (RFC 6749 §6) for a confidential client, optionally naming `resource` (RFC 8707 §2.2).
    ///
    /// # Errors
    /// As [`AuthServer::client_credentials`]; a reused rotated refresh token is `invalid_grant` (and revokes the
    /// grant).
    pub async fn refresh(
        &self,
        client_id: &str,
        secret: &str,
        refresh_token: &str,
        resource: Option<&str>,
    ) -> Result<TokenResponse, String> {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        form.extend(resource.map(|r| ("resource", r)));
        self.token_request(client_id, secret, form).await
    }

    /// Asks the introspection endpoint (RFC 7662 §2) about `token`, authenticating as `client_id` with `secret`
    /// (Basic). Returns the JSON answer, e.g. `{"active": true, "aud": …, "scope": …, "exp": …}`.
    ///
    /// # Errors
    /// The status and body of any non-200 answer (a JWT access token is refused with 400 `unsupported_token_type`).
    pub async fn introspect(
        &self,
        client_id: &str,
        secret: &str,
        token: &str,
    ) -> Result<Value, String> {
        let body = form_body(&[("token", token)]);
        let basic = basic_auth(client_id, secret);
        let resp = self
            .post(
                &self.introspection_url(),
                "application/x-www-form-urlencoded",
                &[("Authorization", &basic)],
                &body,
            )
            .await?;
        if resp.status != 200 {
            return Err(format!("introspection: {} {}", resp.status, resp.text()));
        }
        serde_json::from_slice(&resp.body)
            .map_err(|e| format!("introspection: {e}: {}", resp.text()))
    }

    /// A JWT signed as `signing` says, by jose inside the fixture, for negative tests. `claims` is a JSON object;
    /// `iss` (the issuer), `iat` (now), `exp` (now + 300 s) and `jti` are added when absent, and a claim set to
    /// `null` is left out (e.g. `{"exp": null}` for a token without expiry). The header is `typ: at+jwt` with the
    /// `kid` [`Signing`] describes.
    ///
    /// # Panics
    /// If `claims` is not an object or the admin route fails (the message has the AS's output).
    pub async fn mint(&self, claims: Value, signing: Signing) -> String {
        assert!(claims.is_object(), "mint: claims must be a JSON object");
        let v = self
            .admin(
                "mint",
                json!({ "claims": claims, "signing": signing.wire() }),
            )
            .await;
        v["token"]
            .as_str()
            .expect("mint answers a token")
            .to_owned()
    }

    /// Rotates the signing keys: a new RSA key goes first in the JWKS and signs every token from now on; the old
    /// ones stay published. Returns the `kid`s, current first.
    ///
    /// # Panics
    /// If the admin route fails.
    pub async fn rotate_keys(&self) -> Vec<String> {
        kids(self.admin("rotate-keys", json!({})).await)
    }

    /// Drops every key but the current one from the JWKS. Returns the remaining `kid`.
    ///
    /// # Panics
    /// If the admin route fails.
    pub async fn drop_old_keys(&self) -> Vec<String> {
        kids(self.admin("drop-old-keys", json!({})).await)
    }

    /// Rotates `client_id`'s secret to `secret`: the old one is refused (`invalid_client`) from now on.
    ///
    /// # Panics
    /// If there is no such client or the admin route fails.
    pub async fn set_client_secret(&self, client_id: &str, secret: &str) {
        self.admin(
            "client-secret",
            json!({ "client_id": client_id, "client_secret": secret }),
        )
        .await;
    }

    /// Like [`AuthServer::set_client_secret`] with a new `client_secret_expires_at` (seconds since the epoch, or
    /// `None` for never).
    ///
    /// # Panics
    /// As [`AuthServer::set_client_secret`].
    pub async fn set_client_secret_expiring(
        &self,
        client_id: &str,
        secret: &str,
        expires_at: Option<u64>,
    ) {
        self.admin(
            "client-secret",
            json!({ "client_id": client_id, "client_secret": secret,
                    "client_secret_expires_at": expires_at.unwrap_or(0) }),
        )
        .await;
    }

    /// Adds (or replaces, by URI) a resource, e.g. a gateway whose port was not known when the AS started.
    ///
    /// # Panics
    /// If the admin route fails.
    pub async fn add_resource(&self, resource: ResourceConfig) {
        self.admin("resources", resource.to_json()).await;
    }

    /// A refresh token for `client_id` as if a user (`user-of-<client_id>`) had logged in once through a browser
    /// (which this fixture has no flow for): a real oidc-provider grant and refresh token, for `resource` with
    /// `scope` (default: the client's scopes).
    ///
    /// # Panics
    /// If there is no such client, the resource is unknown, or the admin route fails.
    pub async fn issue_refresh_token(
        &self,
        client_id: &str,
        resource: Option<&str>,
        scope: Option<&str>,
    ) -> String {
        let v = self
            .admin(
                "refresh-token",
                json!({ "client_id": client_id, "resource": resource, "scope": scope }),
            )
            .await;
        v["refresh_token"]
            .as_str()
            .expect("refresh-token answers a token")
            .to_owned()
    }

    /// The counters since start or the last [`AuthServer::reset_stats`].
    ///
    /// # Panics
    /// If the admin route fails.
    pub async fn stats(&self) -> AuthStats {
        let v = self.admin_get("stats").await;
        serde_json::from_value(v).unwrap_or_else(|e| panic!("oidc-as stats: {e}"))
    }

    /// Zeroes the counters.
    ///
    /// # Panics
    /// If the admin route fails.
    pub async fn reset_stats(&self) {
        self.admin("stats/reset", json!({})).await;
    }

    /// Injects a fault at one exact path of the AS (e.g. `/token/introspection`, `/jwks`, `/token`): every request
    /// there first waits `delay` (at most 60 s), then, with `status`, gets that status (with `Retry-After: 1` and
    /// `{"error": "temporarily_unavailable"}`) instead of an answer. Requests are still counted in the stats.
    ///
    /// # Panics
    /// If the admin route fails.
    pub async fn set_fault(&self, path: &str, delay: Duration, status: Option<u16>) {
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.admin(
            "fault",
            json!({ "path": path, "delay_ms": delay_ms, "status": status }),
        )
        .await;
    }

    /// Removes the fault at `path` ([`AuthServer::set_fault`]).
    ///
    /// # Panics
    /// If the admin route fails.
    pub async fn clear_fault(&self, path: &str) {
        self.admin("fault", json!({ "path": path })).await;
    }

    /// The current JWKS (a counted JWKS fetch).
    ///
    /// # Panics
    /// If the request fails.
    pub async fn jwks(&self) -> Value {
        let resp = raw_http::request("GET", &self.jwks_url(), &[], None, REQUEST_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("GET {}: {e}", self.jwks_url()));
        serde_json::from_slice(&resp.body).unwrap_or_else(|e| panic!("jwks: {e}: {}", resp.text()))
    }

    async fn token_request(
        &self,
        client_id: &str,
        secret: &str,
        mut form: Vec<(&str, &str)>,
    ) -> Result<TokenResponse, String> {
        let client = self
            .clients
            .iter()
            .find(|c| c.client_id == client_id)
            .map(|c| c.auth.clone())
            .unwrap_or(ClientAuth::ClientSecretBasic);
        let basic = basic_auth(client_id, secret);
        let mut headers: Vec<(&str, &str)> = Vec::new();
        match client {
            ClientAuth::ClientSecretBasic => headers.push(("Authorization", &basic)),
            ClientAuth::ClientSecretPost => {
                form.push(("client_id", client_id));
                form.push(("client_secret", secret));
            }
            ClientAuth::PrivateKeyJwt { .. } => {
                return Err(format!(
                    "{client_id} is a private_key_jwt client: use a real client for it"
                ))
            }
        }
        let resp = self
            .post(
                &self.token_url(),
                "application/x-www-form-urlencoded",
                &headers,
                &form_body(&form),
            )
            .await?;
        if resp.status != 200 {
            return Err(format!("token: {} {}", resp.status, resp.text()));
        }
        serde_json::from_slice(&resp.body).map_err(|e| format!("token: {e}: {}", resp.text()))
    }

    async fn post(
        &self,
        url: &str,
        content_type: &str,
        extra: &[(&str, &str)],
        body: &str,
    ) -> Result<RawResponse, String> {
        let mut headers = vec![
            ("Content-Type", content_type),
            ("Accept", "application/json"),
        ];
        headers.extend_from_slice(extra);
        raw_http::request(
            "POST",
            url,
            &headers,
            Some(body.as_bytes()),
            REQUEST_TIMEOUT,
        )
        .await
        .map_err(|e| format!("POST {url}: {e}"))
    }

    async fn admin(&self, route: &str, body: Value) -> Value {
        let url = format!("{}/__admin/{route}", self.issuer);
        let resp = self
            .post(&url, "application/json", &[], &body.to_string())
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", self.guard.output_tail()));
        self.admin_answer(&url, &resp)
    }

    async fn admin_get(&self, route: &str) -> Value {
        let url = format!("{}/__admin/{route}", self.issuer);
        let resp = raw_http::request("GET", &url, &[], None, REQUEST_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}\n{}", self.guard.output_tail()));
        self.admin_answer(&url, &resp)
    }

    fn admin_answer(&self, url: &str, resp: &RawResponse) -> Value {
        assert_eq!(
            resp.status,
            200,
            "{url}: {}\n{}",
            resp.text(),
            self.guard.output_tail()
        );
        serde_json::from_slice(&resp.body).unwrap_or_else(|e| panic!("{url}: {e}: {}", resp.text()))
    }
}

fn kids(v: Value) -> Vec<String> {
    v["kids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `application/x-www-form-urlencoded` (the WHATWG serializer, as RFC 6749 Appendix B asks).
fn form_body(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_auth(client_id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(client_id), enc(secret)))
    )
}

/// A client's ECDSA P-256 key pair for `private_key_jwt` (RFC 7523), generated fresh with rcgen.
#[derive(Debug, Clone)]
pub struct ClientKey {
    /// The private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), for the client under test.
    pub private_pem: String,
    /// The public JWK for the AS: `{"kty":"EC","crv":"P-256","x","y","alg":"ES256","use":"sig","kid"}`.
    pub public_jwk: Value,
    /// The private JWK (the public one plus `d`), for clients that take a JWK (the TypeScript SDK).
    pub private_jwk: Value,
    /// The `kid` in both JWKs.
    pub kid: String,
}

impl ClientKey {
    /// Generates a key pair with `kid`.
    ///
    /// # Panics
    /// If rcgen or ring fail (they do not for P-256).
    pub fn generate(kid: &str) -> ClientKey {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .expect("generating a P-256 key");
        let raw = pair.public_key_raw();
        // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
        assert_eq!(raw.len(), 65, "P-256 public key is an uncompressed point");
        let der = pair.serialize_der();
        // PKCS#8 (RFC 5208) wrapping an ECPrivateKey (RFC 5915 §3): `version 1` (02 01 01) is followed by the
        // private scalar as a 32-byte OCTET STRING (04 20 …).
        let d = der
            .windows(5)
            .position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20])
            .and_then(|i| der.get(i + 5..i + 37))
            .expect("a P-256 PKCS#8 key carries the scalar as an OCTET STRING of 32 bytes");
        let public_jwk = json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&raw[33..65]),
            "alg": "ES256", "use": "sig", "kid": kid,
        });
        let mut private_jwk = public_jwk.clone();
        private_jwk["d"] = json!(URL_SAFE_NO_PAD.encode(d));
        ClientKey {
            private_pem: pair.serialize_pem(),
            public_jwk,
            private_jwk,
            kid: kid.to_owned(),
        }
    }
}

/// The claims of a JWT, decoded without any verification (for assertions on what the AS issued).
///
/// # Errors
/// A token that is not three dot-separated base64url parts with a JSON object in the middle.
pub fn jwt_claims(token: &str) -> Result<Value, String> {
    jwt_part(token, 1)
}

/// The protected header of a JWT, decoded without any verification.
///
/// # Errors
/// As [`jwt_claims`].
pub fn jwt_header(token: &str) -> Result<Value, String> {
    jwt_part(token, 0)
}

fn jwt_part(token: &str, index: usize) -> Result<Value, String> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(format!("a JWT has 3 parts, this has {}", parts.len()));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(parts[index])
        .map_err(|e| format!("JWT part {index}: {e}"))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| format!("JWT part {index}: {e}"))?;
    if v.is_object() {
        Ok(v)
    } else {
        Err(format!("JWT part {index} is not a JSON object"))
    }
}

/// How `tests/peers/py2_auth_server.py` checks bearer tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// RS256 JWTs against the issuer's JWKS (PyJWT's `PyJWKClient`, cached, refetched once on an unknown `kid`);
    /// `iss` exact, `aud` must contain the server's resource URL, `exp` required.
    Jwt,
    /// RFC 7662 introspection at the issuer, authenticating with HTTP Basic as this client; `active` required,
    /// `aud` as for [`TokenCheck::Jwt`]. Needs the resource's tokens to be [`TokenFormat::Opaque`] (oidc-provider
    /// refuses to introspect JWTs).
    Introspection {
        /// The introspecting client's id (any client of the AS).
        client_id: String,
        /// Its secret.
        client_secret: String,
    },
    /// No auth at all: the same server and tools answering every request, as a same-server unauthenticated
    /// baseline (the `probe_auth` benchmark).
    Off,
}

/// What [`super::Peer::python_auth`] starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyAuthConfig {
    /// The authorization server's issuer, e.g. [`AuthServer::issuer`]; named in the server's RFC 9728 metadata.
    pub issuer: String,
    /// How tokens are checked.
    pub check: TokenCheck,
    /// Transport mode ([`super::PyServer`]; 2026-07-28 requests are answered in every mode).
    pub mode: super::PyServer,
    /// Scopes every request needs (the SDK's `AuthSettings.required_scopes`: 403 `insufficient_scope` without
    /// them); also the metadata's `scopes_supported`, which is where the Python SDK client takes the scope it
    /// requests from.
    pub required_scopes: Vec<String>,
}

impl PyAuthConfig {
    /// JWT checking against `issuer`, stateful, requiring `mcp:read`.
    pub fn jwt(issuer: &str) -> PyAuthConfig {
        PyAuthConfig {
            issuer: issuer.to_owned(),
            check: TokenCheck::Jwt,
            mode: super::PyServer::Stateful,
            required_scopes: vec!["mcp:read".to_owned()],
        }
    }
}

/// The line `py2_auth_server.py` prints once bound.
const PY_AUTH_ANNOUNCE: &str = "py2-auth-server: listening on 127.0.0.1:";

impl super::Peer {
    /// Starts `tests/peers/py2_auth_server.py`: the mcp 2.3.0 SDK as an OAuth resource server (its `AuthSettings` and
    /// a `TokenVerifier`) with the tools `echo`, `add`, `search`, `fetch`, `whoami` (the caller's token, as
    /// `structuredContent`), `slow`, `fail`, several with `outputSchema`. URL: `http://127.0.0.1:PORT/mcp`, which
    /// is also its resource URI (RFC 8707 audience): give the AS a matching resource
    /// ([`ResourceConfig::any_loopback`], or [`AuthServer::add_resource`] once the URL is known). `GET
    /// /debug/verifications` → `{"verified": N, "refused": M}`.
    ///
    /// # Panics
    /// If the py2 venv is not installed, or the server does not listen within [`super::STARTUP_PATIENCE`].
    pub async fn python_auth(config: &PyAuthConfig) -> super::Peer {
        let mode = match config.mode {
            super::PyServer::Stateful => "stateful",
            super::PyServer::Stateless => "stateless",
            super::PyServer::Json => "json",
        };
        let mut cmd = Command::new(super::venv_python("py2"));
        cmd.arg(peers_sources().join("py2_auth_server.py"))
            .args(["--issuer", &config.issuer, "--mode", mode])
            .current_dir(peers_sources())
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        match &config.check {
            TokenCheck::Jwt => {
                cmd.args(["--verify", "jwt"]);
            }
            TokenCheck::Introspection {
                client_id,
                client_secret,
            } => {
                cmd.args(["--verify", "introspection"])
                    .args(["--introspection-client-id", client_id])
                    .args(["--introspection-client-secret", client_secret]);
            }
            TokenCheck::Off => {
                cmd.args(["--verify", "off"]);
            }
        }
        for scope in &config.required_scopes {
            cmd.args(["--required-scope", scope]);
        }
        super::start(
            format!("py2_auth_server ({mode})"),
            cmd,
            PY_AUTH_ANNOUNCE,
            "/mcp",
            super::PeerKind::PythonAuth(config.mode),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// How many bearer tokens `py2_auth_server.py` accepted and refused so far (`GET /debug/verifications`), or
    /// `None` for another peer or when the request fails.
    pub async fn verifications(&self) -> Option<(u64, u64)> {
        if !matches!(self.kind, super::PeerKind::PythonAuth(_)) {
            return None;
        }
        let url = format!("{}/debug/verifications", self.base);
        let resp = raw_http::request("GET", &url, &[], None, REQUEST_TIMEOUT)
            .await
            .ok()?;
        let v: Value = serde_json::from_slice(&resp.body).ok()?;
        Some((v["verified"].as_u64()?, v["refused"].as_u64()?))
    }
}
