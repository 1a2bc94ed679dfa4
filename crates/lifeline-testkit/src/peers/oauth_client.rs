//! The real OAuth MCP clients of the auth tests, run to completion with a bound: the official Python SDK 2.x
//! (`tests/peers/clients/oauth_client.py`, its `ClientCredentialsOAuthProvider` / `PrivateKeyJWTOAuthProvider`) and
//! the official TypeScript SDK 1.32.2 (`tests/peers/clients/oauth_client.mjs`, its `ClientCredentialsProvider` /
//! `PrivateKeyJwtProvider` from `client/auth-extensions.js`).
//!
//! Each discovers the authorization server as its SDK does (the 401's `resource_metadata`, RFC 9728 metadata, RFC
//! 8414/OIDC metadata with the issuer check), gets a client-credentials token with `resource` (RFC 8707), lists the
//! tools, optionally calls one, and prints one JSON line, which [`OAuthClientRun`] holds.
//!
//! Scope: the two SDKs pick the requested scope differently. The Python SDK ignores the configured scope and takes
//! the 401's `scope`, else the protected resource metadata's `scopes_supported`, else the AS metadata's
//! `scopes_supported` (which for oidc-provider includes `openid`, which a client-credentials client is refused). The
//! TypeScript SDK sends only the configured scope ([`OAuthClient::scope`]).
//!
//! ```no_run
//! # async fn demo(url: &str) {
//! use lifeline_testkit::peers::oauth_client::OAuthClient;
//! let run = OAuthClient::python(url).secret("probe", "s3cret").call("echo", serde_json::json!({"message": "hi"})).run().await;
//! assert!(run.ok, "{run:?}");
//! # }
//! ```

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use super::oidc::ClientKey;
use super::{node22, peers_dir, peers_sources, venv_python};

/// The bound on one client run: 90 s (the scripts stop themselves after 60 s).
pub const CLIENT_PATIENCE: Duration = Duration::from_secs(90);

/// Which SDK's client runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sdk {
    /// `mcp` 2.3.0 (Python): both protocol eras ([`OAuthClient::mode`]).
    Python,
    /// `@modelcontextprotocol/sdk` 1.32.2 (TypeScript, Node 22): the handshake era only (2025-11-25).
    TypeScript,
}

/// The client's credential.
#[derive(Debug, Clone)]
pub enum Credential {
    /// No credential at all (`--no-auth`): the same client, expected to be refused.
    None,
    /// A client secret (RFC 6749 §2.3.1), sent with HTTP Basic or, with `post`, in the form body.
    Secret {
        /// The secret (handed to the script in a file, never on its command line).
        secret: String,
        /// `client_secret_post` instead of `client_secret_basic`.
        post: bool,
    },
    /// `private_key_jwt` (RFC 7523 §2.2) with this key (ES256).
    PrivateKey(ClientKey),
}

/// One run of a real OAuth client; build it, then [`OAuthClient::run`].
#[derive(Debug, Clone)]
pub struct OAuthClient {
    sdk: Sdk,
    url: String,
    client_id: Option<String>,
    credential: Credential,
    scope: Option<String>,
    issuer: Option<String>,
    mode: Option<String>,
    call: Option<(String, Value)>,
}

/// What a client run printed.
#[derive(Debug, Clone)]
pub struct OAuthClientRun {
    /// The client reported success (`"ok": true`) and exited 0.
    pub ok: bool,
    /// Its JSON line: `{"ok", "protocol_version", "tools", "call": {"name", "is_error", "text", "structured"},
    /// "tokens_obtained"}` or `{"ok": false, "error_type", "message", "tokens_obtained"}`; `Null` if it printed
    /// none.
    pub outcome: Value,
    /// Its stderr (SDK logs and warnings), for failure messages.
    pub stderr: String,
}

impl OAuthClientRun {
    /// The listed tool names.
    pub fn tools(&self) -> Vec<String> {
        self.outcome["tools"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The tool call's outcome: `{"name", "is_error", "text", "structured"}`, `Null` without a call.
    pub fn call(&self) -> &Value {
        &self.outcome["call"]
    }

    /// How many token responses the client's provider stored.
    pub fn tokens_obtained(&self) -> u64 {
        self.outcome["tokens_obtained"].as_u64().unwrap_or(0)
    }

    /// The error message of a failed run (empty on success).
    pub fn error(&self) -> String {
        self.outcome["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl OAuthClient {
    /// The Python SDK client for the MCP endpoint `url`, with no credential yet.
    pub fn python(url: &str) -> OAuthClient {
        OAuthClient::new(Sdk::Python, url)
    }

    /// The TypeScript SDK client for the MCP endpoint `url`, with no credential yet.
    pub fn typescript(url: &str) -> OAuthClient {
        OAuthClient::new(Sdk::TypeScript, url)
    }

    /// The `sdk` client for `url`, with no credential yet.
    pub fn new(sdk: Sdk, url: &str) -> OAuthClient {
        OAuthClient {
            sdk,
            url: url.to_owned(),
            client_id: None,
            credential: Credential::None,
            scope: None,
            issuer: None,
            mode: None,
            call: None,
        }
    }

    /// Logs in as `client_id` with `secret` (`client_secret_basic`).
    pub fn secret(mut self, client_id: &str, secret: &str) -> OAuthClient {
        self.client_id = Some(client_id.to_owned());
        self.credential = Credential::Secret {
            secret: secret.to_owned(),
            post: false,
        };
        self
    }

    /// Logs in as `client_id` with `secret` sent as `client_secret_post`.
    pub fn secret_post(mut self, client_id: &str, secret: &str) -> OAuthClient {
        self.client_id = Some(client_id.to_owned());
        self.credential = Credential::Secret {
            secret: secret.to_owned(),
            post: true,
        };
        self
    }

    /// Logs in as `client_id` with `private_key_jwt` signed by `key` (ES256).
    pub fn private_key(mut self, client_id: &str, key: &ClientKey) -> OAuthClient {
        self.client_id = Some(client_id.to_owned());
        self.credential = Credential::PrivateKey(key.clone());
        self
    }

    /// The scope to configure (the TypeScript SDK sends exactly this; the Python SDK chooses its own, see the
    /// module docs).
    pub fn scope(mut self, scope: &str) -> OAuthClient {
        self.scope = Some(scope.to_owned());
        self
    }

    /// Pins the authorization server's issuer (the SDKs' `issuer` / `expectedIssuer`: metadata naming another
    /// issuer stops the flow).
    pub fn issuer(mut self, issuer: &str) -> OAuthClient {
        self.issuer = Some(issuer.to_owned());
        self
    }

    /// The Python client's connect mode: `legacy` (default), `auto` or `2026-07-28`. Ignored by TypeScript.
    pub fn mode(mut self, mode: &str) -> OAuthClient {
        self.mode = Some(mode.to_owned());
        self
    }

    /// Calls `tool` with `arguments` after listing the tools.
    pub fn call(mut self, tool: &str, arguments: Value) -> OAuthClient {
        self.call = Some((tool.to_owned(), arguments));
        self
    }

    /// Runs the client to completion, bounded by [`CLIENT_PATIENCE`]. A refusal is a normal outcome (`ok:
    /// false`).
    ///
    /// # Panics
    /// If the peers are not installed, the secret or key file cannot be written, or the client does not finish
    /// within the bound.
    pub async fn run(&self) -> OAuthClientRun {
        let dir = tempfile::tempdir().expect("creating a temp dir for the client's credential");
        let mut cmd = match self.sdk {
            Sdk::Python => {
                let mut cmd = tokio::process::Command::new(venv_python("py2"));
                cmd.arg(peers_sources().join("clients/oauth_client.py"))
                    .env("PYTHONUNBUFFERED", "1")
                    .env("PYTHONDONTWRITEBYTECODE", "1");
                cmd
            }
            Sdk::TypeScript => {
                super::npm_package_dir("@modelcontextprotocol/sdk");
                let mut cmd = tokio::process::Command::new(node22());
                cmd.arg(peers_sources().join("clients/oauth_client.mjs"))
                    .env("LIFELINE_NPM_MODULES", peers_dir().join("npm/node_modules"));
                cmd
            }
        };
        cmd.arg(&self.url).args(["--timeout", "60"]);
        match &self.credential {
            Credential::None => {
                cmd.arg("--no-auth");
            }
            Credential::Secret { secret, post } => {
                let file = dir.path().join("secret");
                std::fs::write(&file, secret).expect("writing the client secret file");
                cmd.arg("--client-secret-file").arg(file);
                if *post {
                    cmd.args(["--auth-method", "client_secret_post"]);
                }
            }
            Credential::PrivateKey(key) => {
                let file = dir.path().join("key.pem");
                std::fs::write(&file, &key.private_pem).expect("writing the client key file");
                cmd.arg("--private-key-file")
                    .arg(file)
                    .args(["--key-alg", "ES256"]);
            }
        }
        if let Some(id) = &self.client_id {
            cmd.args(["--client-id", id]);
        }
        if let Some(scope) = &self.scope {
            cmd.args(["--scope", scope]);
        }
        if let Some(issuer) = &self.issuer {
            cmd.args(["--issuer", issuer]);
        }
        if let (Some(mode), Sdk::Python) = (&self.mode, self.sdk) {
            cmd.args(["--mode", mode]);
        }
        if let Some((tool, args)) = &self.call {
            cmd.args(["--call", tool, "--args", &args.to_string()]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let out = tokio::time::timeout(CLIENT_PATIENCE, cmd.output())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the {:?} OAuth client did not finish within {CLIENT_PATIENCE:?}",
                    self.sdk
                )
            })
            .unwrap_or_else(|e| panic!("the {:?} OAuth client did not start: {e}", self.sdk));
        let outcome = String::from_utf8_lossy(&out.stdout)
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<Value>(l).ok())
            .unwrap_or(Value::Null);
        OAuthClientRun {
            ok: out.status.success() && outcome["ok"] == true,
            outcome,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
